"""`lightning-ser ensemble`: several trainings of one split answering together.

Members are trainings of the same split, typically one `cv` run repeated with other seeds
(`--seed_everything 1`, `2`, ...: the trainings differ, the split does not, since `data.seed`
draws it). For each utterance an ensemble averages the members' cosines to their own class
embeddings (its least-angle answer is the emotion of the largest mean cosine: each member's
embedding space is its own, so cosines are averaged, never embeddings) and their softmax
probabilities (its softmax answer).

Nothing here chooses anything on the test part: each member brings the checkpoint its `cv`
tested (`best.ckpt`, chosen on its own validation part) or the end of its schedule
(`last.ckpt`), and the members are whatever runs are given. `--part val` scores the validation
parts instead, the honest place to decide how many members are worth their training time (a
`best.ckpt` was chosen on that very part, so its validation numbers flatter it; `last.ckpt`
does not).

Example::

    for seed in 0 1 2; do
        lightning-ser cv -c conf/ravdess.yaml --data.split kfold --seed_everything $seed \\
            --out runs/kfold-seed$seed
    done
    lightning-ser ensemble runs/kfold-seed0 runs/kfold-seed1 runs/kfold-seed2 \\
        --out runs/kfold-ensemble
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from .argparsing import ArgumentParser
from .atomic import write_json_atomic
from .data.datamodule import EmotionDataModule
from .data.features import FeatureConfig
from .data.splits import num_folds
from .embeddings import class_embeddings, cosine_to_classes
from .experiments import RESULT_FILE, write_cv_summary
from .inference.checkpoint import load_checkpoint, read_checkpoint
from .inference.model import EmotionModel
from .metrics import classification_metrics
from .provenance import provenance
from .report.tables import format_percent

#: The metrics of an ensemble's result, as `cv` writes them for one training.
SCORED = ("wa", "ua", "macro_f1")


@dataclass
class MemberAnswers:
    """One member's outputs on a part, rows in the part's utterance order."""

    run_dir: Path
    cosines: torch.Tensor  # [N, C] cosine to each class embedding
    probabilities: torch.Tensor  # [N, C] softmax
    labels: torch.Tensor  # [N]


def fold_runs(folder: Path, checkpoint: str) -> dict[int, Path]:
    """The run folders of `folder` by fold: a `cv` output (`fold_<k>/`) or one run folder."""

    def trained(run: Path) -> bool:
        return (run / "split.json").is_file() and (run / "checkpoints" / checkpoint).is_file()

    if trained(folder):
        split = json.loads((folder / "split.json").read_text())
        return {int(split.get("fold", 0)): folder}
    runs = {
        int(run.name.removeprefix("fold_")): run
        for run in folder.glob("fold_*")
        if run.name.removeprefix("fold_").isdigit() and trained(run)
    }
    if not runs:
        raise ValueError(
            f"{folder}: no trained run (a folder with split.json and checkpoints/{checkpoint}, "
            "or a cv output with such fold_<k>/ folders)"
        )
    return runs


def run_datamodule(run_dir: Path) -> EmotionDataModule:
    """The data module a run trained with, rebuilt from its `config.yaml` and set up."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ValueError(f"{run_dir}: no config.yaml (the settings its fit saved)")
    data = yaml.safe_load(config_path.read_text()).get("data") or {}
    options = dict(data.get("init_args", data))
    if isinstance(options.get("features"), dict):
        options["features"] = FeatureConfig(**options["features"])
    options["progress"] = False
    datamodule = EmotionDataModule(**options)
    datamodule.setup("test")
    return datamodule


def part_outputs(
    model: EmotionModel, datamodule: EmotionDataModule, part: str
) -> tuple[Tensor, ...]:
    """(unit embeddings [N, D], logits [N, C], labels [N]) of a part's whole utterances in the
    model's evaluation view, rows in the part's utterance order."""
    order, embeddings, logits, labels = [], [], [], []
    with torch.no_grad():
        for batch in datamodule.iter_part(part):
            emb, out = model.embedder(batch["x"], batch["lengths"])
            embeddings.append(emb)
            logits.append(out)
            labels.append(batch["label"])
            order.append(batch["index"])
    rows = torch.cat(order).argsort()
    return torch.cat(embeddings)[rows], torch.cat(logits)[rows], torch.cat(labels)[rows]


def member_answers(
    run_dir: Path, checkpoint: str, part: str, eval_crops: int | None = None
) -> tuple[MemberAnswers, EmotionDataModule]:
    """A member's cosines and softmax probabilities on `part` of its split, with its data
    module; refused when the checkpoint was trained on another split than the run's data.

    `eval_crops` (None: the checkpoint's own view) evaluates on the mean direction of that many
    windows of the checkpoint's crop length (0: whole utterances), with class embeddings made
    the same way from the training part, as `test --data.eval_crops` makes them.
    """
    path = run_dir / "checkpoints" / checkpoint
    datamodule = run_datamodule(run_dir)
    trained_on = read_checkpoint(path).get("split")
    if trained_on is not None and trained_on != datamodule.split_identity:
        raise ValueError(f"{path} was trained on another split than {run_dir}/config.yaml makes")
    if part == "val" and not datamodule.has_validation:
        raise ValueError(f"{run_dir} has no validation part (it trained with data.val_size 0)")
    model = load_checkpoint(path)
    if model.class_names != datamodule.class_names:
        raise ValueError(
            f"{path}: emotions {model.class_names}, the data's {datamodule.class_names}"
        )
    embedder = model.embedder
    if eval_crops is not None and eval_crops != embedder.eval_crops:
        embedder.set_crops(eval_crops, embedder.crop_frames)
        train_emb, _, train_labels = part_outputs(model, datamodule, "train")
        centres = class_embeddings(train_emb, train_labels, datamodule.num_classes)
        embedder.class_embeddings.copy_(centres)
    embeddings, logits, labels = part_outputs(model, datamodule, part)
    answers = MemberAnswers(
        run_dir,
        cosine_to_classes(embeddings, model.class_embeddings),
        logits.float().softmax(dim=-1),
        labels,
    )
    return answers, datamodule


def ensemble_metrics(members: list[MemberAnswers], num_classes: int) -> dict[str, float]:
    """Least-angle (mean cosine) and softmax (mean probability) WA, UA and macro-F1 of the
    members answering together, named as `cv` names a training's test metrics."""
    labels = members[0].labels
    answers = {
        "least_angle": torch.stack([m.cosines for m in members]).mean(0).argmax(1),
        "softmax": torch.stack([m.probabilities for m in members]).mean(0).argmax(1),
    }
    metrics = {}
    for name, predicted in answers.items():
        result = classification_metrics(predicted, labels, num_classes)
        metrics |= {f"{name}/{key}": result[key] for key in SCORED}
    return metrics


def score_fold(
    run_dirs: list[Path], checkpoint: str, part: str, eval_crops: int | None = None
) -> dict[str, Any]:
    """The ensemble's metrics on one fold's `part`, and each member's own least-angle WA."""
    start = time.perf_counter()
    members, identity, datamodule = [], None, None
    for run_dir in run_dirs:
        answers, datamodule = member_answers(run_dir, checkpoint, part, eval_crops)
        if identity is None:
            identity = datamodule.split_identity
        elif datamodule.split_identity != identity:
            raise ValueError(f"{run_dir} trained on another split than {run_dirs[0]}")
        members.append(answers)
    num_classes = datamodule.num_classes
    alone = [ensemble_metrics([m], num_classes)["least_angle/wa"] for m in members]
    return {
        "fold": datamodule.split.fold,
        "protocol": datamodule.split.protocol,
        "corpus": datamodule.corpus,
        "folds_total": num_folds(
            datamodule.split.protocol,
            datamodule.groups,
            datamodule.split_args["n_folds"],
            datamodule.split_args["speaker_folds"],
        ),
        "part": part,
        "checkpoint": checkpoint,
        "eval_crops": eval_crops,
        "members": [str(r) for r in run_dirs],
        "members_least_angle_wa": alone,
        "metrics": ensemble_metrics(members, num_classes),
        "seconds": round(time.perf_counter() - start, 1),
    }


def ensemble_command(argv: list[str]) -> dict[str, Any]:
    """`ensemble RUN [RUN ...] [--checkpoint best|last] [--part test|val] [--out DIR]`."""
    parser = ArgumentParser(
        prog="lightning-ser ensemble",
        description="Score several trainings of the same split answering together (mean "
        "cosine to the class embeddings; mean softmax probability), fold by fold. Each RUN is "
        "a cv output folder or one run folder; folds every RUN has are scored. With --out, "
        "each fold's result and a cv-like summary (folds.csv, summary.md, summary.json) are "
        "written there.",
    )
    parser.add_argument("runs", nargs="+", type=Path, help="cv output or run folders")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument(
        "--part",
        choices=["test", "val"],
        default="test",
        help="val: the validation parts, for choosing members without the test parts",
    )
    parser.add_argument(
        "--eval-crops",
        type=int,
        default=None,
        metavar="K",
        help="evaluate on the mean direction of K windows of the checkpoints' crop length "
        "(0: whole utterances; default: as each checkpoint was tested)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    ns = parser.parse_args(argv)
    if ns.eval_crops is not None and ns.eval_crops < 0:
        parser.error(f"--eval-crops must be >= 0, got {ns.eval_crops}")
    if ns.part == "val" and ns.out is not None:
        parser.error("--out writes test results; validation scores (--part val) are printed only")
    checkpoint = f"{ns.checkpoint}.ckpt"
    by_member = [fold_runs(folder, checkpoint) for folder in ns.runs]
    folds = sorted(set.intersection(*(set(runs) for runs in by_member)))
    if not folds:
        raise ValueError(f"the {len(ns.runs)} runs have no trained fold in common")
    results = []
    for fold in folds:
        runs = [member_runs[fold] for member_runs in by_member]
        result = score_fold(runs, checkpoint, ns.part, ns.eval_crops)
        result |= provenance(["ensemble", *argv])
        alone = ", ".join(format_percent(wa) for wa in result["members_least_angle_wa"])
        print(
            f"[ensemble] fold {fold} ({ns.part}): least-angle WA "
            f"{format_percent(result['metrics']['least_angle/wa'])}; members alone {alone}",
            flush=True,
        )
        if ns.out is not None:
            write_json_atomic(ns.out / f"fold_{fold}" / RESULT_FILE, result)
        results.append(result)
    if ns.out is None:
        return {"folds": results}
    first = results[0]
    return write_cv_summary(
        results,
        ns.out,
        first["corpus"],
        first["protocol"],
        first["folds_total"],
        argv,
        command="ensemble",
    )
