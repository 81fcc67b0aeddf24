"""A run's answers, kept beside its result: every utterance's cosines and softmax probabilities.

`lightning-ser cv` writes `answers.csv` into each fold it finishes: for `best.ckpt` (what the
fold tested) and `last.ckpt` (the end of its schedule), on the validation part (when there is
one) and the test part, one row per utterance with its cosine to each class embedding and its
softmax probabilities. Checkpoints are large and stay in `runs/`; answers are small enough to
commit with a cv's results, so `lightning-ser ensemble` can still combine trainings whose
checkpoints are gone (another machine, a fresh checkout, a results folder under
`benchmarks/results/`). Only the view a fold was tested with is kept: scoring on other crops
(`--eval-crops`) needs the checkpoint.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .argparsing import ArgumentParser
from .atomic import atomic_open
from .ensemble import fold_runs
from .member import ANSWERS_FILE, member_answers, run_datamodule

CHECKPOINTS = ("best.ckpt", "last.ckpt")


def write_answers(run_dir: Path) -> Path | None:
    """Write `run_dir/answers.csv` from the run's checkpoints; None when it has none."""
    present = [c for c in CHECKPOINTS if (run_dir / "checkpoints" / c).is_file()]
    if not present:
        return None
    datamodule = run_datamodule(run_dir)
    parts = ["val", "test"] if datamodule.has_validation else ["test"]
    classes = datamodule.class_names
    answers = [
        (checkpoint, part, member_answers(run_dir, checkpoint, part, None, datamodule)[0])
        for checkpoint in present
        for part in parts
    ]  # all computed before the file is written
    target = run_dir / ANSWERS_FILE
    with atomic_open(target) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["checkpoint", "part", "path", "label", "crops", "crop_frames"]
            + [f"cosine/{c}" for c in classes]
            + [f"softmax/{c}" for c in classes]
        )
        for checkpoint, part, member in answers:
            for i, path in enumerate(member.paths):
                writer.writerow(
                    [checkpoint, part, path, classes[int(member.labels[i])], *member.view]
                    + [f"{v:.6f}" for v in member.cosines[i].tolist()]
                    + [f"{v:.6f}" for v in member.probabilities[i].tolist()]
                )
    return target


def answers_command(argv: list[str]) -> list[str]:
    """`answers RUN [RUN ...]`: (re)write answers.csv in every finished fold of each cv folder
    (or run folder) that still has its checkpoints, e.g. folds finished before cv kept them."""
    parser = ArgumentParser(
        prog="lightning-ser answers",
        description="Write answers.csv (every validation and test utterance's cosines and "
        "softmax probabilities, for best.ckpt and last.ckpt) into each finished fold of a cv "
        "folder, or into one run folder, from its checkpoints. cv does this for every fold it "
        "finishes; this command serves folds finished before. Commit answers.csv with the "
        "results: `lightning-ser ensemble` combines runs from it when checkpoints are gone.",
    )
    parser.add_argument(
        "runs", nargs="+", type=Path, metavar="RUN", help="cv output or run folders"
    )
    ns = parser.parse_args(argv)
    written = []
    for folder in ns.runs:
        for fold, run_dir in sorted(fold_runs(folder, "best.ckpt").items()):
            target = write_answers(run_dir)
            print(f"[answers] fold {fold}: {target or 'no checkpoints left, nothing written'}")
            written += [str(target)] if target else []
    return written
