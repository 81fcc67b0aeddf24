"""Screen settings of the metric stage (stage 2) on VALIDATION, from one shared softmax stage.

    python benchmarks/screen_metric_stage.py -c conf/ravdess.yaml --data.split kfold \
        --folds 0,1 --out runs/screen-metric-stage/kfold [--variants base,init] [--data.* ...]

Why: in the recipe's runs the first validation of the ArcFace stage falls below the softmax
stage's last one on most folds (kfold and EmoBox), and the best validation checkpoint nearly
always comes from the softmax stage. Stage 2 starts with a 30-fold learning-rate jump (the end
of the cosine decay -> `triplet_lr_scale`) and random ArcFace centres. This script trains each
fold's softmax stage once (`--model.triplet_epochs 0`), then resumes its last checkpoint once per
variant with the recipe's metric stage changed as the variant says, so a variant costs only its
stage-2 epochs. Nothing is tested: the output is every validation of every variant (WA of the
least-angle and softmax classifiers), the stage-2 best, and the run's best including the softmax
stage (what the recipe's checkpoint selection would keep).

Writes OUT/fold_<k>/{softmax,<variant>}/ (run folders, metrics.csv) and OUT/summary.{json,md}.
Finished parts are skipped when run again (a `done.json` in each run folder).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from lightning_ser.atomic import atomic_open, write_json_atomic  # noqa: E402
from lightning_ser.experiments import logger_override  # noqa: E402
from lightning_ser.lightning_cli import lightning_main  # noqa: E402
from lightning_ser.provenance import provenance  # noqa: E402

#: The metric-stage settings screened (fixed before any run), as overrides of the config.
VARIANTS: dict[str, list[str]] = {
    "base": [],
    "init": ["--model.centre_init", "class_embeddings"],
    "low_lr": ["--model.triplet_lr_scale", "0.05"],
    "init_low_lr": ["--model.centre_init", "class_embeddings", "--model.triplet_lr_scale", "0.05"],
}
MONITOR = "val/least_angle/wa"
DONE = "done.json"


def validations(run_dir: Path) -> list[dict[str, float]]:
    """Every validation of a run folder's metrics.csv: epoch, least-angle WA, softmax WA."""
    with (run_dir / "metrics.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r.get(MONITOR)]
    return [
        {
            "epoch": int(r["epoch"]),
            "least_angle_wa": float(r[MONITOR]),
            "softmax_wa": float(r["val/softmax/wa"]),
        }
        for r in rows
    ]


def fit(args: list[str], run_dir: Path) -> None:
    """`fit` into `run_dir` unless it finished before."""
    if (run_dir / DONE).exists():
        return
    lightning_main(["fit", *args, "-c", str(logger_override(run_dir, False, "screen"))])
    write_json_atomic(run_dir / DONE, provenance(["screen", str(run_dir), *args]))


def screen_fold(args: list[str], fold: int, out: Path, variants: list[str]) -> dict:
    """The shared softmax stage of one fold, then every variant's metric stage from its end."""
    fold_args = [*args, "--data.fold", str(fold)]
    softmax_dir = out / f"fold_{fold}" / "softmax"
    fit([*fold_args, "--model.triplet_epochs", "0"], softmax_dir)
    softmax = validations(softmax_dir)
    start = softmax_dir / "checkpoints" / "last.ckpt"
    result: dict = {"fold": fold, "softmax": softmax, "variants": {}}
    softmax_best = max(v["least_angle_wa"] for v in softmax)
    for name in variants:
        run_dir = out / f"fold_{fold}" / name
        fit([*fold_args, *VARIANTS[name], "--ckpt_path", str(start)], run_dir)
        # the resumed run trains one more softmax epoch (the stage ends at the end of an epoch)
        switch = torch.load(start, weights_only=True, map_location="cpu")["epoch"] + 2
        stage2 = [v for v in validations(run_dir) if v["epoch"] >= switch]
        best = max(v["least_angle_wa"] for v in stage2)
        result["variants"][name] = {
            "validations": stage2,
            "stage2_best": best,
            "stage2_last": stage2[-1]["least_angle_wa"],
            "run_best": max(best, softmax_best),
        }
    result["softmax_best"] = softmax_best
    return result


def write_summary(folds: list[dict], variants: list[str], out: Path, argv: list[str]) -> None:
    """summary.json (everything) and summary.md (per fold and mean, validation only)."""
    lines = [
        "# Metric-stage screening (validation only; nothing was tested)",
        "",
        f"`python benchmarks/screen_metric_stage.py {' '.join(argv)}`",
        "",
        "Validation least-angle WA. `first`: the first validation of stage 2 (how much the "
        "switch disturbs); `best`: stage 2's best; `last`: its last validation (what a run "
        "keeps without checkpoint selection); `run best`: the best of the whole run, softmax "
        "stage included (what checkpoint selection keeps). First row: the softmax stage's "
        "best.",
        "",
        "| variant | settings | "
        + " | ".join(f"fold {f['fold']}: first / best / last" for f in folds)
        + " | mean first | mean best | mean last | mean run best |",
        "|---|---|" + "---|" * len(folds) + "---|---|---|---|",
        "| softmax stage | | "
        + " | ".join(f"{100 * f['softmax_best']:.2f}" for f in folds)
        + f" | | {100 * statistics.fmean(f['softmax_best'] for f in folds):.2f} | | |",
    ]
    for name in variants:
        cells, firsts, bests, lasts, runs = [], [], [], [], []
        for f in folds:
            v = f["variants"][name]
            first = v["validations"][0]["least_angle_wa"]
            cells.append(
                f"{100 * first:.2f} / {100 * v['stage2_best']:.2f} / {100 * v['stage2_last']:.2f}"
            )
            firsts.append(first)
            bests.append(v["stage2_best"])
            lasts.append(v["stage2_last"])
            runs.append(v["run_best"])
        lines.append(
            f"| {name} | {' '.join(VARIANTS[name]) or '(the config)'} | "
            + " | ".join(cells)
            + f" | {100 * statistics.fmean(firsts):.2f} | {100 * statistics.fmean(bests):.2f}"
            f" | {100 * statistics.fmean(lasts):.2f} | {100 * statistics.fmean(runs):.2f} |"
        )
    with atomic_open(out / "summary.md") as handle:
        handle.write("\n".join(lines) + "\n")
    write_json_atomic(
        out / "summary.json",
        {
            "variants": {n: VARIANTS[n] for n in variants},
            "folds": folds,
            **provenance(["screen_metric_stage", *argv]),
        },
    )


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", required=True, help="comma-separated folds")
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    ns, args = parser.parse_known_args(argv)
    variants = ns.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {unknown}; choose from {list(VARIANTS)}")
    out = Path(ns.out)
    folds = []
    for fold in (int(f) for f in ns.folds.split(",")):
        folds.append(screen_fold(args, fold, out, variants))
        write_summary(folds, variants, out, argv)
    print((out / "summary.md").read_text())


if __name__ == "__main__":
    main()
