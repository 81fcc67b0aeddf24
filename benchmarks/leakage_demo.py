"""How a number like the paper's 91.67% can arise: a 70/30 split made over windows, not utterances.

    python benchmarks/leakage_demo.py [--root ../shared/data/ravdess] [--epochs 10]

THIS IS A DEMONSTRATION OF LEAKAGE, NOT A RESULT OF THE METHOD. It trains the paper's network
(ResNet-11, 10-frame windows of 39 MFCC values, batch 900, SGD 0.05 with momentum, cross-entropy)
under three splits of RAVDESS and reports accuracy per window and by a vote of each utterance's
test windows:

- `utterances`: the honest 70/30 split by utterance (the library's `holdout`); training windows
  are cut from training utterances only, test windows from test utterances only;
- `windows, stride 10`: all non-overlapping 10-frame windows of every utterance, split 70/30 at
  random: windows of one utterance land on both sides;
- `windows, stride 2`: overlapping windows (as a sliding-window pipeline makes them), split 70/30
  at random: a test window shares 8 of its 10 frames with training windows, a near-duplicate.

Every arm gets the same number of optimiser steps. Writes
benchmarks/results/leakage_demo.{json,md} with the command, commit, date and machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from lightning_ser.data.datamodule import EmotionDataModule  # noqa: E402
from lightning_ser.embedder import Embedder  # noqa: E402
from lightning_ser.provenance import provenance  # noqa: E402

RESULTS = Path(__file__).parent / "results"
WINDOW = 10


def windows_of(lengths: torch.Tensor, offsets: torch.Tensor, utts: list[int], stride: int):
    """(utterance, first frame) of every `WINDOW`-frame window of `utts` taken every `stride`."""
    pairs = []
    for u in utts:
        n = int(lengths[u])
        starts = range(0, max(n - WINDOW, 0) + 1, stride)
        pairs += [(u, int(offsets[u]) + s) for s in starts]
    return torch.tensor(pairs, dtype=torch.long)


def random_split(n: int, test_share: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices 0..n-1 split at random into (train, test)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    cut = int(round(n * (1 - test_share)))
    return order[:cut], order[cut:]


def train_and_test(
    frames: torch.Tensor,
    labels: torch.Tensor,
    train_windows: torch.Tensor,
    test_windows: torch.Tensor,
    steps: int,
    seed: int,
) -> dict:
    """Train the paper's network on windows for `steps` batches; accuracy per window and by vote."""
    torch.manual_seed(seed)
    embedder = Embedder(num_classes=int(labels.max()) + 1, backbone="resnet", layers=11, blocks=2)
    optimizer = torch.optim.SGD(embedder.parameters(), lr=0.05, momentum=0.9)
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, total_iters=steps)
    steps_ = torch.arange(WINDOW)

    def batch(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return frames[windows[:, 1:2] + steps_], labels[windows[:, 0]]

    embedder.train()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randint(len(train_windows), (900,), generator=generator)
        x, y = batch(train_windows[pick])
        loss = F.cross_entropy(embedder(x)[1], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    embedder.eval()
    predictions = []
    with torch.no_grad():
        for chunk in test_windows.split(4096):
            predictions.append(embedder(batch(chunk)[0])[1].argmax(dim=1))
    predicted = torch.cat(predictions)
    truth = labels[test_windows[:, 0]]
    votes_right, utterances = 0, 0
    for u in test_windows[:, 0].unique():
        mine = predicted[test_windows[:, 0] == u]
        votes_right += int(torch.bincount(mine).argmax() == labels[u])
        utterances += 1
    return {
        "train_windows": len(train_windows),
        "test_windows": len(test_windows),
        "test_utterances": utterances,
        "window_accuracy": float((predicted == truth).float().mean()),
        "vote_accuracy": votes_right / utterances,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(ROOT / "../shared/data/ravdess"))
    parser.add_argument("--steps", type=int, default=600, help="optimiser steps per arm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(RESULTS / "leakage_demo"))
    ns = parser.parse_args()
    meta = provenance(["benchmarks/leakage_demo.py", *sys.argv[1:]])
    meta["command"] = "python " + meta["command"].removeprefix("lightning-ser ")
    dm = EmotionDataModule(ns.root, split="holdout", test_size=0.3, seed=ns.seed, progress=False)
    dm.setup()
    table = dm.table
    frames = (table.frames - dm.feature_mean) / dm.feature_std
    lengths, offsets, labels = table.lengths, table.offsets, dm.labels
    everything = list(range(len(table)))
    arms = {}
    start = time.perf_counter()
    train_utts = dm.split.train + dm.split.val
    arms["utterances (honest holdout)"] = (
        windows_of(lengths, offsets, train_utts, 1),
        windows_of(lengths, offsets, dm.split.test, WINDOW),
    )
    for stride in (WINDOW, 2):
        windows = windows_of(lengths, offsets, everything, stride)
        train, test = random_split(len(windows), 0.3, ns.seed)
        arms[f"windows, stride {stride} (LEAKAGE)"] = (windows[train], windows[test])
    results = {}
    for name, (train, test) in arms.items():
        results[name] = train_and_test(frames, labels, train, test, ns.steps, ns.seed)
        print(name, results[name], flush=True)
    payload = {
        **meta,
        "what": "a demonstration of leakage, not a result of the method",
        "steps_per_arm": ns.steps,
        "batch": 900,
        "seconds": round(time.perf_counter() - start, 1),
        "arms": results,
    }
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1))
    lines = [
        "# Leakage demonstration (NOT a result): 70/30 splits over windows vs utterances",
        "",
        f"`{payload['command']}` at commit {payload['commit']}, {payload['date']}, "
        f"{payload['machine']}; {ns.steps} steps of batch 900 per arm, the paper's ResNet-11 on "
        "10-frame windows, cross-entropy.",
        "",
        "| split | train windows | test windows | accuracy per window "
        "| accuracy by utterance vote |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['train_windows']} | {r['test_windows']} "
            f"| {100 * r['window_accuracy']:.2f}% | {100 * r['vote_accuracy']:.2f}% |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
