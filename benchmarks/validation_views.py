"""Validation WA of a cv's checkpoints under other ways of evaluating them, without training.

A screening aid for evaluation settings: for every fold of a `lightning-ser cv` folder, its
checkpoint (`last.ckpt` by default: the end of the schedule, chosen by nothing) answers the
fold's validation part (never its test part)

- `whole`: whole utterances and the checkpoint's class embeddings (what `cv` tests);
- `softmax`: the softmax head's answer, for comparison;
- `crops K`: the mean direction of K evenly spaced windows of `--crop-frames` frames
  (`data.eval_crops K`), with class embeddings made the same way from the training part, as a
  test with `--data.eval_crops K` makes them.

Example::

    python benchmarks/validation_views.py runs/cv-kfold-long-init --crops 3 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lightning_ser.embeddings import class_embeddings
from lightning_ser.ensemble import fold_runs, run_datamodule
from lightning_ser.inference.checkpoint import load_checkpoint
from lightning_ser.inference.model import EmotionModel


def embed_part(model: EmotionModel, datamodule, part: str) -> tuple[torch.Tensor, ...]:
    """(unit embeddings [N, D], logits [N, C], labels [N]) of a part, in the model's view."""
    embeddings, logits, labels = [], [], []
    with torch.no_grad():
        for batch in datamodule.iter_part(part):
            emb, out = model.embedder(batch["x"], batch["lengths"])
            embeddings.append(emb)
            logits.append(out)
            labels.append(batch["label"])
    return torch.cat(embeddings), torch.cat(logits), torch.cat(labels)


def views(run_dir: Path, checkpoint: str, crops: list[int], crop_frames: int) -> dict[str, float]:
    """Validation WA (0-1) of one run's checkpoint in each view."""
    datamodule = run_datamodule(run_dir)
    model = load_checkpoint(run_dir / "checkpoints" / checkpoint)
    emb, logits, labels = embed_part(model, datamodule, "val")
    scores = {
        "whole": ((emb @ model.class_embeddings.T).argmax(1) == labels).float().mean().item(),
        "softmax": (logits.argmax(1) == labels).float().mean().item(),
    }
    for k in crops:
        model.embedder.set_crops(k, crop_frames)
        train_emb, _, train_labels = embed_part(model, datamodule, "train")
        centres = class_embeddings(train_emb, train_labels, datamodule.num_classes)
        emb, _, labels = embed_part(model, datamodule, "val")
        scores[f"crops {k}"] = ((emb @ centres.T).argmax(1) == labels).float().mean().item()
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cv_dir", type=Path, help="a `lightning-ser cv` output folder")
    parser.add_argument("--checkpoint", choices=["last", "best"], default="last")
    parser.add_argument("--crops", type=int, nargs="*", default=[3], help="values of K")
    parser.add_argument("--crop-frames", type=int, default=300, help="frames per window")
    args = parser.parse_args(argv)
    runs = fold_runs(args.cv_dir, f"{args.checkpoint}.ckpt")
    table = {fold: views(run, f"{args.checkpoint}.ckpt", args.crops, args.crop_frames)
             for fold, run in sorted(runs.items())}  # fmt: skip
    names = list(next(iter(table.values())))
    print(f"| fold ({args.checkpoint}.ckpt, validation WA) | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for fold, scores in table.items():
        print(f"| {fold} | " + " | ".join(f"{100 * scores[n]:.2f}%" for n in names) + " |")
    means = [sum(s[n] for s in table.values()) / len(table) for n in names]
    print("| mean | " + " | ".join(f"{100 * m:.2f}%" for m in means) + " |")
    base = [s["whole"] for s in table.values()]
    for name in names[2:]:
        ahead = sum(s[name] > b for s, b in zip(table.values(), base, strict=True))
        behind = sum(s[name] < b for s, b in zip(table.values(), base, strict=True))
        print(f"{name}: ahead of whole on {ahead} fold(s), behind on {behind}")


if __name__ == "__main__":
    main()
