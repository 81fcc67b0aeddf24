"""The validation curve of a cv, averaged over its folds epoch by epoch (validation parts only).

A fold's checkpoint is its best of many validations; on small validation parts that maximum is
biased upwards by noise. The mean curve over folds shows where the schedule really peaks and
how far its end is from that peak, which is what choosing a fixed epoch count needs:

    python benchmarks/validation_curve.py runs/cv-kfold-long-init [--metric val/least_angle/wa]

Reads each finished fold's `metrics.csv` (folds with a `result.json`; `--unfinished` also those
still training or stopped, whose curves end early: a screening stopped once its verdict is plain
compares on the epochs both runs reached); prints the mean of each
fold's own best, the mean curve's peak and last epoch, and the curve every `--every` epochs.
`--against REF_CV_DIR` screens a setting against a reference cv, fold by fold and on
validation only (each fold's best, its mean from `--from-epoch` on, how many of those
validations are ahead / behind the reference's at the same epoch, the last epoch):

    python benchmarks/validation_curve.py runs/screen-kfold-timinput \
        --against benchmarks/results/ravdess_kfold

`--epoch-scale 3` screens a run whose epochs hold three times the data (speed perturbation at
0.9 and 1.1, stage lengths cut to a third) at equal amounts of training.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path


def fold_curves(cv_dir: Path, metric: str, unfinished: bool = False) -> dict[str, dict[int, float]]:
    """Per finished fold (with `unfinished`, per fold with a `metrics.csv`): epoch -> the metric
    at that epoch's validation."""
    curves = {}
    for metrics in sorted(cv_dir.glob("fold_*/metrics.csv")):
        if not unfinished and not (metrics.parent / "result.json").exists():
            continue
        with open(metrics) as f:
            rows = [r for r in csv.DictReader(f) if r.get(metric)]
        if rows:
            curves[metrics.parent.name] = {int(r["epoch"]): float(r[metric]) for r in rows}
    return curves


def mean_curve(curves: dict[str, dict[int, float]]) -> dict[int, float]:
    """Epoch -> mean over folds, for the epochs every fold validated."""
    values: dict[int, list[float]] = defaultdict(list)
    for curve in curves.values():
        for epoch, value in curve.items():
            values[epoch].append(value)
    return {e: sum(v) / len(v) for e, v in sorted(values.items()) if len(v) == len(curves)}


def describe(curves: dict[str, dict[int, float]], every: int = 20) -> str:
    """The summary lines this script prints (percentages)."""
    if not curves:
        return "no finished folds (fold_*/result.json)"
    mean = mean_curve(curves)
    best_each = sum(max(c.values()) for c in curves.values()) / len(curves)
    peak, last = max(mean, key=mean.__getitem__), max(mean)
    lines = [
        f"{len(curves)} folds ({', '.join(curves)}): mean of each fold's best "
        f"{100 * best_each:.2f}%; mean curve peaks at epoch {peak} ({100 * mean[peak]:.2f}%), "
        f"last epoch {last}: {100 * mean[last]:.2f}%",
        " | ".join(
            f"{e}: {100 * v:.1f}" for e, v in mean.items() if (e + 1) % every == 0 or e == last
        ),
    ]
    return "\n".join(lines)


def compare(
    curves: dict[str, dict[int, float]],
    reference: dict[str, dict[int, float]],
    from_epoch: int = 59,
    epoch_scale: int = 1,
) -> str:
    """A markdown table, one row per fold both cvs finished: `curves` against `reference`.

    `epoch_scale` k > 1 compares a run whose epochs each hold k times the reference's data
    (speed perturbation's copies, with stage lengths cut by k): its epoch e stands beside the
    reference's validation nearest to epoch k (e + 1) - 1, and `from_epoch` counts in the
    reference's epochs."""
    lines = [
        f"| fold | val best: new / reference | mean from epoch {from_epoch}: new / reference "
        "| validations ahead / behind | last epoch: new / reference |",
        "|---|---|---|---|---|",
    ]
    for fold in sorted(set(curves) & set(reference), key=lambda f: int(f.split("_")[-1])):
        new, ref = curves[fold], reference[fold]
        if epoch_scale == 1:  # (new epoch, reference epoch) validated side by side
            pairs = [(e, e) for e in sorted(set(new) & set(ref))]
        else:
            pairs = [
                (e, min(ref, key=lambda r: (abs(r - (epoch_scale * (e + 1) - 1)), r)))
                for e in sorted(new)
            ]
        later = [(e, r) for e, r in pairs if r >= from_epoch]
        if not later:
            continue
        ahead = sum(new[e] > ref[r] for e, r in later)
        behind = sum(new[e] < ref[r] for e, r in later)
        mean_new = sum(new[e] for e, _ in later) / len(later)
        mean_ref = sum(ref[r] for _, r in later) / len(later)
        last, last_ref = later[-1]
        at = f"epoch {last}" if last == last_ref else f"epochs {last} / {last_ref}"
        lines.append(
            f"| {fold} | {100 * max(new.values()):.2f}% / {100 * max(ref.values()):.2f}% "
            f"| {100 * mean_new:.2f}% / {100 * mean_ref:.2f}% "
            f"| {ahead} / {behind} of {len(later)} "
            f"| {100 * new[last]:.2f}% / {100 * ref[last_ref]:.2f}% ({at}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cv_dir", type=Path, help="a `lightning-ser cv` output folder")
    parser.add_argument("--metric", default="val/least_angle/wa")
    parser.add_argument("--every", type=int, default=20, help="print the curve every N epochs")
    parser.add_argument("--against", type=Path, help="a reference cv folder to screen against")
    parser.add_argument("--from-epoch", type=int, default=59, help="first epoch of the means")
    parser.add_argument(
        "--unfinished", action="store_true", help="also folds without a result.json (stopped)"
    )
    parser.add_argument(
        "--epoch-scale",
        type=int,
        default=1,
        help="each new epoch holds this many reference epochs of data (speed copies: 3)",
    )
    args = parser.parse_args()
    curves = fold_curves(args.cv_dir, args.metric, args.unfinished)
    print(describe(curves, args.every))
    if args.against:
        reference = fold_curves(args.against, args.metric)
        print(compare(curves, reference, args.from_epoch, args.epoch_scale))


if __name__ == "__main__":
    main()
