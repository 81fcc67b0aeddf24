"""How many trainings should answer together? The ensemble's score against its size, on a part.

For trainings of the same split (cv output folders, e.g. seeds of one recipe), every fold they
all finished is scored for each size k = 1..n: the least-angle WA, UA and softmax WA of each
k-member subset answering together (`lightning-ser ensemble`'s mean cosine and mean
probability), averaged over all subsets of that size, with the lowest and highest subset. The
averages over subsets make the curve independent of which seeds happen to be listed first.

A screening aid: score validation parts (`--part val`, the default) to choose the number of
members; the test parts choose nothing.

Example::

    python benchmarks/ensemble_size.py runs/holdout-val-seed{0,1,2,3,4} --checkpoint last
"""

from __future__ import annotations

import argparse
from itertools import combinations
from pathlib import Path

from lightning_ser.ensemble import common_folds, ensemble_metrics, fold_members
from lightning_ser.member import MemberAnswers

METRICS = ("least_angle/wa", "least_angle/ua", "softmax/wa")


def size_curve(members: list[MemberAnswers], num_classes: int) -> dict[int, dict[str, float]]:
    """For each size k, the mean of `METRICS` over all k-member subsets, with the least-angle
    WA of the worst (`min`) and best (`max`) subset and the number of subsets."""
    curve = {}
    for k in range(1, len(members) + 1):
        scores = [ensemble_metrics(list(subset), num_classes)
                  for subset in combinations(members, k)]  # fmt: skip
        wa = [s["least_angle/wa"] for s in scores]
        curve[k] = {name: sum(s[name] for s in scores) / len(scores) for name in METRICS}
        curve[k] |= {"min": min(wa), "max": max(wa), "subsets": len(scores)}
    return curve


def fold_curves(
    cv_dirs: list[Path], checkpoint: str, part: str
) -> dict[int, dict[int, dict[str, float]]]:
    """`size_curve` of every fold all `cv_dirs` finished, by fold."""
    folds, by_member = common_folds(cv_dirs, checkpoint)
    curves = {}
    for fold in folds:
        members, datamodules = fold_members([runs[fold] for runs in by_member], checkpoint, part)
        curves[fold] = size_curve(members, datamodules[0].num_classes)
    return curves


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cv_dirs", type=Path, nargs="+", help="`lightning-ser cv` output folders")
    parser.add_argument("--checkpoint", choices=["last", "best"], default="last")
    parser.add_argument("--part", choices=["val", "test"], default="val")
    args = parser.parse_args(argv)
    if len(set(p.resolve() for p in args.cv_dirs)) < len(args.cv_dirs):
        parser.error("a run is given twice (it would count twice)")
    try:
        curves = fold_curves(args.cv_dirs, f"{args.checkpoint}.ckpt", args.part)
    except ValueError as err:  # no finished run, no fold in common, or another split
        raise SystemExit(f"ensemble_size: {err}") from None
    folds = ", ".join(map(str, curves))
    print(
        f"{args.part} parts, {args.checkpoint}.ckpt, fold(s) {folds}; each row the mean over "
        "all subsets of k members (least-angle WA of the worst / best)"
    )
    print("| k | subsets | least-angle WA | worst / best | least-angle UA | softmax WA |")
    print("|---|---|---|---|---|---|")
    for k in range(1, len(args.cv_dirs) + 1):
        rows = [c[k] for c in curves.values()]
        mean = {n: sum(r[n] for r in rows) / len(rows) for n in (*METRICS, "min", "max")}
        print(
            f"| {k} | {rows[0]['subsets']} | {100 * mean['least_angle/wa']:.2f}% | "
            f"{100 * mean['min']:.2f}% / {100 * mean['max']:.2f}% | "
            f"{100 * mean['least_angle/ua']:.2f}% | {100 * mean['softmax/wa']:.2f}% |"
        )


if __name__ == "__main__":
    main()
