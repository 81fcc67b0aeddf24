"""Training and evaluation throughput on RAVDESS, per stage, with the shipped configs' settings.

    python benchmarks/training_throughput.py [--root ../shared/data/ravdess] [--steps 20]

Builds the model and data exactly as `lightning fit -c CONFIG` does (conf/ravdess.yaml: the
recipe; conf/ravdess_paper.yaml: the paper), then times optimiser steps of the softmax stage and
of the metric stage (the module's own `losses`, augmentation included), and the whole-utterance
embedding used for class embeddings. Writes benchmarks/results/training_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

import torch

from lightning_ser.lightning_cli import lightning_main
from lightning_ser.provenance import git_commit, machine

ROOT = Path(__file__).parents[1]
#: Untimed steps of evaluation first: a compiled network (the recipe's `model.compile`) compiles
#: its graphs on the first calls of each mode.
WARMUP_STEPS = 3
RESULTS = Path(__file__).parent / "results"
CONFIGS = ("conf/ravdess.yaml", "conf/ravdess_paper.yaml")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(config: str, root: str, device: torch.device, steps: int, amp: bool = False) -> dict:
    """Examples per second in each stage, and utterances per second of evaluation.

    `amp`: float16 autocast with a gradient scaler, as Lightning's "16-mixed" (the GPU default).
    """
    cli = lightning_main(
        ["-c", str(ROOT / config), "--data.root", root, "--trainer.logger", "false"],
        run=False,
    )
    dm, module = cli.datamodule, cli.model.to(device)
    dm.setup()
    module.embedder.feature_mean.copy_(dm.feature_mean)
    module.embedder.feature_std.copy_(dm.feature_std)
    optimizer = module.configure_optimizers()["optimizer"]
    loader = dm.train_dataloader()
    out = {"settings": f"{module.hparams.backbone}-{module.hparams.layers}, "
           f"{module.hparams.channels} ch, windows of {dm.window_frames} frames, "
           f"batch {dm.batch_size}, stage 2: {module.hparams.metric_loss}"
           f"{', compiled' if module.hparams.compile else ''}"}  # fmt: skip
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    for stage in ("softmax", "triplet"):
        module.stage = stage
        dm.set_sampling("m_per_class" if stage == "triplet" else "random")
        module.train()
        # One whole epoch untimed: a compiled network compiles at its first step and again at the
        # epoch's short last batch (about 22 s each on this CPU; 0.43 s a step in between).
        warmup = len(loader)
        done, seen, start = 0, 0, 0.0
        while done < steps + warmup:
            for batch in loader:
                if done == warmup:
                    sync(device)
                    start = time.perf_counter()
                batch = dm.cut({k: v.to(device) for k, v in batch.items()})
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    loss = module.losses(batch)["loss"]
                optimizer.zero_grad()
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                done += 1
                seen += len(batch["label"]) if done > warmup else 0
                if done >= steps + warmup:
                    break
        sync(device)
        out[f"{stage}_examples_per_s"] = round(seen / (time.perf_counter() - start), 1)
    module.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        module.embed_batches(islice(dm.iter_part("train", device), WARMUP_STEPS))
    sync(device)
    start = time.perf_counter()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        n = len(module.embed_batches(dm.iter_part("train", device))["labels"])
    sync(device)
    out["eval_utterances_per_s"] = round(n / (time.perf_counter() - start), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=str(ROOT / "../shared/data/ravdess"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--note", default="", help="conditions worth knowing (a busy machine)")
    parser.add_argument(
        "--devices", default="cpu,cuda", help="cpu and/or cuda (float32 and 16-mixed) if present"
    )
    parser.add_argument("--name", default="training_throughput", help="results file name")
    ns = parser.parse_args()
    wanted = ns.devices.split(",")
    devices = [(torch.device("cpu"), False)] if "cpu" in wanted else []
    if "cuda" in wanted and torch.cuda.is_available():
        devices += [(torch.device("cuda"), False), (torch.device("cuda"), True)]
    commit = git_commit(ROOT)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "note": ns.note,
        "runs": {},
    }
    for device, amp in devices:
        for config in CONFIGS:
            torch.manual_seed(0)
            name = f"{device.type}{' 16-mixed' if amp else ''}: {config}"
            result["runs"][name] = measure(config, ns.root, device, ns.steps, amp)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{ns.name}.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"Measured {result['date']} at commit {commit} on {result['machine']}, "
        "`python benchmarks/training_throughput.py`. "
        "An example is one training window (the recipe's are random crops of up to 300 frames, "
        "whole for shorter utterances; the paper's are 10 frames).",
        *([f"Conditions: {ns.note}"] if ns.note else []),
        "",
        "| device: config | settings | softmax stage examples/s | metric stage examples/s "
        "| eval utterances/s |",
        "|---|---|---|---|---|",
    ]
    for name, r in result["runs"].items():
        lines.append(
            f"| {name} | {r['settings']} | {r['softmax_examples_per_s']} "
            f"| {r['triplet_examples_per_s']} | {r['eval_utterances_per_s']} |"
        )
    (RESULTS / f"{ns.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
