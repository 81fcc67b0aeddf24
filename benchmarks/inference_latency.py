"""Phase III latency: per-utterance prediction time and real-time factor of a checkpoint.

Not a test: it measures and writes results. Example::

    python benchmarks/inference_latency.py --ckpt runs/ravdess/checkpoints/best.ckpt
    python benchmarks/inference_latency.py --ckpt best.ckpt --inputs my_clips/ -n 20 --threads 1

For each of N files (default: 100 spread over ../shared/data/ravdess) it times
``EmotionModel.predict_files([file])`` (decode, resample, trim, MFCC + deltas, network, least
angle), one utterance at a time, after one warm-up call. It reports latency (mean, p50, p95, max)
and the real-time factor (processing time / audio duration), both with model loading excluded
and with it included (loading amortised over the N files; plus the cold start: loading + the
first utterance), and the throughput of one batched ``predict_files`` call over all N files.
Results go to JSON (``--out``) and a markdown table on stdout, with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from lightning_ser.inference import find_audio, load_checkpoint  # noqa: E402

DEFAULT_INPUTS = [str(ROOT.parent / "shared" / "data" / "ravdess")]
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "inference_latency.json"


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (q in [0, 100]) of a non-empty list."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """Mean, p50, p95 and max in milliseconds."""
    return {
        "mean_ms": 1000 * statistics.fmean(seconds),
        "p50_ms": 1000 * percentile(seconds, 50),
        "p95_ms": 1000 * percentile(seconds, 95),
        "max_ms": 1000 * max(seconds),
    }


def machine(device: str) -> dict[str, Any]:
    """Where the numbers come from."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def pick_files(inputs: list[str], n: int, seed: int) -> list[Path]:
    """N files spread over the inputs (a seeded sample, kept in path order)."""
    files = find_audio(inputs)
    if not files:
        raise SystemExit(f"no audio files in {', '.join(inputs)}")
    if len(files) <= n:
        return files
    chosen = random.Random(seed).sample(range(len(files)), n)
    return [files[i] for i in sorted(chosen)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time loading, per-utterance prediction and one batched prediction; return the results."""
    if args.threads:
        torch.set_num_threads(args.threads)
    files = pick_files(args.inputs, args.num, args.seed)

    start = time.perf_counter()
    model = load_checkpoint(args.ckpt, device=args.device)
    _sync(args.device)
    load_s = time.perf_counter() - start

    start = time.perf_counter()  # cold: first utterance right after loading (also the warm-up)
    model.predict_files(files[:1])
    _sync(args.device)
    cold_first_s = time.perf_counter() - start

    latencies: list[float] = []
    durations: list[float] = []
    errors: list[str] = []
    for path in files:
        start = time.perf_counter()
        (pred,) = model.predict_files([path])
        _sync(args.device)
        elapsed = time.perf_counter() - start
        if pred.status != "ok":
            errors.append(f"{path}: {pred.error}")
            continue
        latencies.append(elapsed)
        durations.append(pred.duration_s or 0.0)
    if not latencies:
        raise SystemExit("no file could be processed: " + "; ".join(errors[:3]))

    start = time.perf_counter()
    batched = model.predict_files(files)
    _sync(args.device)
    batched_s = time.perf_counter() - start
    batched_audio = sum(p.duration_s or 0.0 for p in batched if p.status == "ok")

    audio_s, busy_s = sum(durations), sum(latencies)
    excluded = latency_stats(latencies)
    included = latency_stats([t + load_s / len(latencies) for t in latencies])
    return {
        "benchmark": "inference_latency",
        "checkpoint": str(args.ckpt),
        "model": {
            k: model.hparams.get(k) for k in ("backbone", "layers", "channels", "embedding_dim")
        },
        "machine": machine(args.device),
        "files": len(files),
        "ok": len(latencies),
        "errors": errors,
        "audio_s_total": audio_s,
        "audio_s_mean": audio_s / len(durations),
        "load_s": load_s,
        "cold_start_s": load_s + cold_first_s,
        "per_utterance": {
            "loading_excluded": {**excluded, "rtf": busy_s / audio_s},
            "loading_included": {**included, "rtf": (busy_s + load_s) / audio_s},
        },
        "batched": {
            "seconds": batched_s,
            "utterances_per_s": len(batched) / batched_s,
            "rtf": batched_s / batched_audio if batched_audio else None,
            "rtf_with_loading": (batched_s + load_s) / batched_audio if batched_audio else None,
        },
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def markdown(result: dict[str, Any]) -> str:
    """The results as a markdown table plus a line about the machine."""
    m = result["machine"]
    lines = [
        f"Inference latency: {result['ok']}/{result['files']} files, "
        f"mean audio {result['audio_s_mean']:.2f} s, model load {1000 * result['load_s']:.1f} ms, "
        f"cold start (load + first file) {1000 * result['cold_start_s']:.1f} ms",
        "",
        "| loading | mean ms | p50 ms | p95 ms | max ms | RTF |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, row in result["per_utterance"].items():
        lines.append(
            f"| {key.replace('loading_', '')} | {row['mean_ms']:.1f} | {row['p50_ms']:.1f} | "
            f"{row['p95_ms']:.1f} | {row['max_ms']:.1f} | {row['rtf']:.4f} |"
        )
    b = result["batched"]
    rtf = "n/a" if b["rtf"] is None else f"{b['rtf']:.4f}"
    lines += [
        "",
        f"Batched predict_files over all files: {b['seconds']:.2f} s, "
        f"{b['utterances_per_s']:.1f} utterances/s, RTF {rtf}",
        f"Machine: {m['processor']}, {m['cpu_count']} CPUs ({m['cpus_usable']} usable), "
        f"torch {m['torch']} with {m['torch_threads']} threads, device {m['device']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="checkpoint written by `lightning fit`")
    parser.add_argument("--inputs", nargs="+", default=DEFAULT_INPUTS, help="files or folders")
    parser.add_argument("-n", "--num", type=int, default=100, help="files to time (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the file sample")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="JSON file to write (its table beside, .md)"
    )
    args = parser.parse_args(argv)
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result) + "\n")
    print(markdown(result))
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")
    return result


if __name__ == "__main__":
    main()
