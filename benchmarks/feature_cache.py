"""Feature-cache benchmark: this project's cache build and reload vs the common librosa pipeline.

    python benchmarks/feature_cache.py [--root ../shared/data/ravdess] [--librosa-files 1440]

Builds the cache for every RAVDESS file into a temporary folder (all cores), reloads it, times
decoding alone, and runs the usual per-file SER recipe (librosa.load at 16 kHz, trim, 13 MFCC,
delta, delta-delta) on the same files, one process, as most SER repositories do. Writes
benchmarks/results/feature_cache.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import soundfile as sf
import torch

from lightning_ser.data.cache import load_or_build
from lightning_ser.data.corpora import load_corpus
from lightning_ser.data.features import FeatureConfig, FeatureExtractor, read_audio

RESULTS = Path(__file__).parent / "results"


def librosa_pipeline(paths: list[str]) -> float:
    """Seconds for the per-file librosa recipe over `paths`."""
    import librosa
    import numpy as np

    start = time.perf_counter()
    for path in paths:
        y, sr = librosa.load(path, sr=16000)
        y, _ = librosa.effects.trim(y, top_db=60)
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13, n_fft=512, hop_length=160)
        np.concatenate([mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2)])
    return time.perf_counter() - start


def _decode(path: str) -> int:
    return len(sf.read(path, dtype="float32")[0])


def decode_in_parallel(paths: list[str]) -> float:
    """Seconds to decode every file with the cache build's parallelism: the floor for a build."""
    start = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(os.cpu_count(), ctx) as pool:
        list(pool.map(_decode, paths, chunksize=max(1, len(paths) // 128)))
    return time.perf_counter() - start


def per_file_costs(paths: list[str], config: FeatureConfig) -> dict[str, float]:
    """Milliseconds per file in one process, one thread: decoding, and features after decoding."""
    torch.set_num_threads(1)
    extractor = FeatureExtractor(config)
    start = time.perf_counter()
    for p in paths:
        read_audio(p)
    decode = time.perf_counter() - start
    start = time.perf_counter()
    for p in paths:
        extractor.from_file(p)
    total = time.perf_counter() - start
    return {
        "files": len(paths),
        "decode_ms": round(1000 * decode / len(paths), 2),
        "features_after_decode_ms": round(1000 * (total - decode) / len(paths), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=str(Path(__file__).parents[1] / "../shared/data/ravdess"))
    parser.add_argument("--librosa-files", type=int, default=1440, help="0 skips librosa")
    parser.add_argument("--repeats", type=int, default=3, help="cache builds to time (best kept)")
    parser.add_argument("--profile-files", type=int, default=360, help="files for per-file costs")
    ns = parser.parse_args()
    paths = [u.path for u in load_corpus("ravdess", ns.root)]
    config = FeatureConfig()

    start = time.perf_counter()
    for p in paths:
        sf.read(p, dtype="float32")
    decode_1core = time.perf_counter() - start
    decode_all_cores = decode_in_parallel(paths)
    per_file = per_file_costs(paths[:: max(1, len(paths) // ns.profile_files)], config)

    builds = []
    for _ in range(ns.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            table, info = load_or_build(paths, config, tmp, "bench", progress=False)
            assert info.built
            builds.append(info.seconds)
            reload_times = []
            for _ in range(3):
                _, again = load_or_build(paths, config, tmp, "bench", progress=False)
                assert not again.built
                reload_times.append(again.seconds)
    n_lib = min(ns.librosa_files, len(paths))
    librosa_s = librosa_pipeline(paths[:n_lib]) if n_lib else None

    result = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
        "files": len(paths),
        "frames": int(table.frames.shape[0]),
        "decode_only_1_process_s": round(decode_1core, 3),
        "decode_only_all_cores_s": round(decode_all_cores, 3),
        "per_file_1_process": per_file,
        "cache_build_s": round(min(builds), 3),
        "cache_build_all_s": [round(b, 3) for b in builds],
        "cache_reload_s": round(min(reload_times), 4),
        "cache_files_per_s": round(len(paths) / min(builds), 1),
        "librosa_files": n_lib,
        "librosa_s": round(librosa_s, 2) if librosa_s else None,
        "librosa_files_per_s": round(n_lib / librosa_s, 1) if librosa_s else None,
    }
    if librosa_s:
        result["speedup_vs_librosa"] = round(
            result["cache_files_per_s"] / result["librosa_files_per_s"], 1
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "feature_cache.json").write_text(json.dumps(result, indent=1))
    rows = [
        ("decode only (soundfile, 1 process)", f"{result['decode_only_1_process_s']} s", ""),
        ("decode only (soundfile, all cores)", f"{result['decode_only_all_cores_s']} s", ""),
        (
            "lightning-ser cache build (all cores)",
            f"{result['cache_build_s']} s",
            f"{result['cache_files_per_s']} files/s",
        ),
        ("lightning-ser cache reload", f"{result['cache_reload_s']} s", ""),
    ]
    if librosa_s:
        rows.append(
            (
                f"librosa per-file pipeline ({n_lib} files, 1 process)",
                f"{result['librosa_s']} s",
                f"{result['librosa_files_per_s']} files/s",
            )
        )
    md = ["| step | time | throughput |", "|---|---|---|"] + [
        f"| {a} | {b} | {c} |" for a, b, c in rows
    ]
    md.append(
        f"\nPer file, one process, one thread ({per_file['files']} files): decoding "
        f"{per_file['decode_ms']} ms, features after decoding "
        f"{per_file['features_after_decode_ms']} ms."
    )
    if librosa_s:
        md.append(f"\nSpeed-up of the cache build over librosa: {result['speedup_vs_librosa']}x")
    (RESULTS / "feature_cache.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
