"""Validation WA of a cv's checkpoints under other ways of evaluating them, without training.

A screening aid for evaluation settings: for every fold of a `lightning-ser cv` folder, its
checkpoint (`last.ckpt` by default: the end of the schedule, chosen by nothing) answers the
fold's validation part (never its test part)

- `whole`: whole utterances and the checkpoint's class embeddings (what `cv` tests);
- `softmax`: the softmax head's answer, for comparison;
- `crops K`: the mean direction of K evenly spaced windows of the checkpoint's crop length
  (`data.window_frames`), with class embeddings made the same way from the training part, as
  a test with `--data.eval_crops K` makes them (`lightning-ser ensemble RUN --eval-crops K`
  scores the test parts so).

Example::

    python benchmarks/validation_views.py runs/cv-kfold-long-init --crops 3 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning_ser.ensemble import ensemble_metrics, fold_runs, member_answers


def views(run_dir: Path, checkpoint: str, crops: list[int]) -> dict[str, float]:
    """Validation WA (0-1) of one run's checkpoint in each view."""
    whole, datamodule = member_answers(run_dir, checkpoint, "val", eval_crops=0)
    scores = ensemble_metrics([whole], datamodule.num_classes)
    table = {"whole": scores["least_angle/wa"], "softmax": scores["softmax/wa"]}
    for k in crops:
        cropped, _ = member_answers(run_dir, checkpoint, "val", k, datamodule)
        table[f"crops {k}"] = ensemble_metrics([cropped], datamodule.num_classes)["least_angle/wa"]
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cv_dir", type=Path, help="a `lightning-ser cv` output folder")
    parser.add_argument("--checkpoint", choices=["last", "best"], default="last")
    parser.add_argument("--crops", type=int, nargs="*", default=[3], help="values of K")
    args = parser.parse_args(argv)
    runs = fold_runs(args.cv_dir, f"{args.checkpoint}.ckpt")
    table = {fold: views(run, f"{args.checkpoint}.ckpt", args.crops)
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
