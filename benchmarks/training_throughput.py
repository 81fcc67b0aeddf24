"""Training and evaluation throughput on RAVDESS windows, per stage, on CPU (and GPU if present).

    python benchmarks/training_throughput.py [--root ../shared/data/ravdess] [--steps 20]

Times optimiser steps of the softmax stage (cross-entropy) and the triplet stage (cross-entropy +
mined triplet loss) with the settings of conf/ravdess.yaml and of conf/ravdess_paper.yaml, and the
whole-utterance evaluation used for class embeddings.
Writes benchmarks/results/training_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lightning_ser.data.datamodule import EmotionDataModule
from lightning_ser.module import EmotionEmbeddingModule

RESULTS = Path(__file__).parent / "results"
SETTINGS = {
    "ravdess.yaml (64 ch, 30-frame windows, batch 256)": dict(channels=64, window=30, batch=256),
    "ravdess_paper.yaml (128 ch, 10-frame windows, batch 900)": dict(
        channels=128, window=10, batch=900
    ),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(root: str, device: torch.device, steps: int, channels: int, window: int, batch: int):
    dm = EmotionDataModule(root, window_frames=window, batch_size=batch, progress=False)
    dm.setup()
    module = EmotionEmbeddingModule(channels=channels).to(device)
    module.feature_mean.copy_(dm.feature_mean)
    module.feature_std.copy_(dm.feature_std)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05, momentum=0.9)
    loader = dm.train_dataloader()
    out = {}
    for stage in ("softmax", "triplet"):
        dm.set_sampling("m_per_class" if stage == "triplet" else "random")
        module.train()
        done, seen, start = 0, 0, None
        while done < steps + 2:
            for batch in loader:
                if done == 2:  # two warm-up steps
                    sync(device)
                    start = time.perf_counter()
                batch = dm.cut({k: v.to(device) for k, v in batch.items()})
                emb, logits = module(batch["x"], batch["lengths"])
                loss = F.cross_entropy(logits, batch["label"])
                if stage == "triplet":
                    loss = loss + module.triplet(emb, batch["label"])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                done += 1
                seen += len(batch["label"]) if done > 2 else 0
                if done >= steps + 2:
                    break
        sync(device)
        out[f"{stage}_windows_per_s"] = round(seen / (time.perf_counter() - start), 1)
    module.eval()
    start = time.perf_counter()
    with torch.no_grad():
        n = len(module.embed_batches(dm.iter_part("train", device))["labels"])
    sync(device)
    out["eval_utterances_per_s"] = round(n / (time.perf_counter() - start), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=str(Path(__file__).parents[1] / "../shared/data/ravdess"))
    parser.add_argument("--steps", type=int, default=20)
    ns = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    result = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "runs": {}}
    for device in devices:
        for name, s in SETTINGS.items():
            torch.manual_seed(0)
            result["runs"][f"{device.type}: {name}"] = measure(ns.root, device, ns.steps, **s)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "training_throughput.json").write_text(json.dumps(result, indent=1))
    lines = [
        "| device: settings | softmax windows/s | triplet windows/s | eval utterances/s |",
        "|---|---|---|---|",
    ]
    for name, r in result["runs"].items():
        lines.append(
            f"| {name} | {r['softmax_windows_per_s']} | {r['triplet_windows_per_s']} "
            f"| {r['eval_utterances_per_s']} |"
        )
    (RESULTS / "training_throughput.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
