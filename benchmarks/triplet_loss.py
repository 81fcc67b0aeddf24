"""The paper's triplet stage loss on one batch: pytorch-metric-learning's miner + loss against the
class-wise computation the module uses (`lightning_ser.losses.ClassWiseTripletMarginLoss`).

    python benchmarks/triplet_loss.py [--batch 900] [--repeats 3] [--note "busy machine"]

For each margin miner (semihard, the paper's; hard; all), times loss + backward of a batch of
L2-normalised embeddings (128-d, 8 classes as RAVDESS), one torch thread, and checks the two agree
(loss, largest gradient difference). Writes benchmarks/results/triplet_loss.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from pytorch_metric_learning import losses
from pytorch_metric_learning.distances import CosineSimilarity

from lightning_ser.losses import MARGIN_MINERS, ClassWiseTripletMarginLoss, build_miner
from lightning_ser.provenance import git_commit, machine

RESULTS = Path(__file__).parent / "results"


def pml_triplet_loss(miner: str):
    """pml's miner then TripletMarginLoss on cosine similarity, as one function of a batch."""
    mine = build_miner(miner, 0.2)
    loss = losses.TripletMarginLoss(margin=0.2, distance=CosineSimilarity())
    return lambda emb, labels: loss(emb, labels, mine(emb, labels))


def timed(loss_fn, emb: torch.Tensor, labels: torch.Tensor, repeats: int):
    """(best seconds of loss + backward, loss, gradient) over `repeats` runs."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        loss = loss_fn(emb, labels)
        (grad,) = torch.autograd.grad(loss, emb)
        best = min(best, time.perf_counter() - start)
    return best, float(loss.detach()), grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=900, help="the paper's batch size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--note", default="", help="conditions worth knowing (a busy machine)")
    ns = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(ns.batch, 128), dim=-1).requires_grad_()
    labels = torch.randint(0, 8, (ns.batch,))
    rows = []
    for miner in MARGIN_MINERS:
        pml_s, pml_value, pml_grad = timed(pml_triplet_loss(miner), emb, labels, ns.repeats)
        ours_s, ours_value, ours_grad = timed(
            ClassWiseTripletMarginLoss(0.2, miner), emb, labels, ns.repeats
        )
        rows.append(
            {
                "miner": miner,
                "pml_seconds": round(pml_s, 4),
                "class_wise_seconds": round(ours_s, 4),
                "speed_up": round(pml_s / ours_s, 1),
                "pml_loss": pml_value,
                "class_wise_loss": ours_value,
                "max_gradient_difference": float((pml_grad - ours_grad).abs().max()),
            }
        )
        print(rows[-1])
    result = {
        "command": "python benchmarks/triplet_loss.py",
        "commit": git_commit(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "batch": ns.batch,
        "note": ns.note,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "triplet_loss.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"Measured {result['date']} at commit {result['commit']} on {result['machine']}, "
        f"`{result['command']}`: loss + backward of one batch of {ns.batch} random embeddings "
        f"(128-d, 8 classes, margin 0.2, cosine similarity), best of {ns.repeats}.",
    ]
    if ns.note:
        lines.append(f"Conditions: {ns.note}")
    lines += [
        "",
        "| miner | pml miner + TripletMarginLoss | class-wise | speed-up | loss (pml / class-wise)"
        " | largest gradient difference |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['miner']} | {r['pml_seconds']:.3f} s | {r['class_wise_seconds']:.3f} s | "
            f"{r['speed_up']}x | {r['pml_loss']:.7f} / {r['class_wise_loss']:.7f} | "
            f"{r['max_gradient_difference']:.1e} |"
        )
    (RESULTS / "triplet_loss.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'triplet_loss.md'}")


if __name__ == "__main__":
    main()
