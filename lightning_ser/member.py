"""One trained run answering a part of its split: what `ensemble` combines.

From the run's checkpoint or, where it is gone, from the answers its cv kept (`answers.csv`,
written by `lightning_ser.answers`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from .data.datamodule import EmotionDataModule
from .data.features import FeatureConfig
from .embeddings import cosine_to_classes
from .inference.checkpoint import model_of_checkpoint, read_checkpoint

ANSWERS_FILE = "answers.csv"


@dataclass
class MemberAnswers:
    """One member's outputs on a part, rows in the order of `paths` (sorted)."""

    run_dir: Path
    paths: list[str]  # the utterances, sorted
    cosines: torch.Tensor  # [N, C] cosine to each class embedding
    probabilities: torch.Tensor  # [N, C] softmax
    labels: torch.Tensor  # [N]
    view: tuple[int, int]  # (crops, frames per crop) it was evaluated with; (0, 0): whole


def run_datamodule(run_dir: Path) -> EmotionDataModule:
    """The data module a run trained with, rebuilt from its `config.yaml` and set up (a
    relative `data.root` is read from the current folder, as the run read it)."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ValueError(f"{run_dir}: no config.yaml (the settings its fit saved)")
    try:
        data = (yaml.safe_load(config_path.read_text()) or {}).get("data") or {}
        options = dict(data.get("init_args", data))
        if isinstance(options.get("features"), dict):
            options["features"] = FeatureConfig(**options["features"])
        datamodule = EmotionDataModule(**options | {"progress": False})
        datamodule.setup("test")
    except (yaml.YAMLError, TypeError, AttributeError, ValueError, OSError) as err:
        raise ValueError(f"{config_path}: its data settings do not load ({err})") from err
    return datamodule


def has_answers(run_dir: Path, checkpoint: str) -> bool:
    """Whether `run_dir/answers.csv` holds answers of `checkpoint`."""
    path = run_dir / ANSWERS_FILE
    if not path.is_file():
        return False
    with path.open(newline="") as f:
        return any(row.get("checkpoint") == checkpoint for row in csv.DictReader(f))


def kept_answers(
    run_dir: Path, checkpoint: str, part: str, eval_crops: int | None
) -> MemberAnswers:
    """`checkpoint`'s answers on `part` from `run_dir/answers.csv`, rows sorted by utterance;
    refused when it has none, or for another view than the one it was tested with."""
    path = run_dir / ANSWERS_FILE
    rows: list[dict[str, str]] = []
    try:
        if path.is_file():
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                columns = reader.fieldnames or []
                rows = [r for r in reader if r["checkpoint"] == checkpoint and r["part"] == part]
    except (KeyError, OSError) as err:
        raise ValueError(f"{path} is unreadable ({err})") from err
    if not rows:
        raise ValueError(f"{run_dir}: no checkpoints/{checkpoint}, nor its {part} answers")
    rows.sort(key=lambda r: r["path"])
    classes = [c.removeprefix("cosine/") for c in columns if c.startswith("cosine/")]
    try:
        kept = MemberAnswers(
            run_dir=run_dir,
            paths=[r["path"] for r in rows],
            cosines=torch.tensor([[float(r[f"cosine/{c}"]) for c in classes] for r in rows]),
            probabilities=torch.tensor([[float(r[f"softmax/{c}"]) for c in classes] for r in rows]),
            labels=torch.tensor([classes.index(r["label"]) for r in rows]),
            view=(int(rows[0]["crops"]), int(rows[0]["crop_frames"])),
        )
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path} is unreadable ({err})") from err
    if eval_crops is not None and eval_crops != kept.view[0]:
        raise ValueError(
            f"{run_dir}: --eval-crops {eval_crops} needs checkpoints/{checkpoint} (gone; "
            f"{ANSWERS_FILE} holds the view it was tested with, {kept.view[0]} crops)"
        )
    return kept


def member_answers(
    run_dir: Path,
    checkpoint: str,
    part: str,
    eval_crops: int | None = None,
    datamodule: EmotionDataModule | None = None,
) -> tuple[MemberAnswers, EmotionDataModule]:
    """A run's cosines and softmax probabilities on `part` of its split, with its data module
    (rebuilt from the run's config.yaml unless given): from its checkpoint or, where that is
    gone, from the answers its cv kept (`kept_answers`); refused when they belong to another
    split than that data module makes.

    `eval_crops` (None: the checkpoint's own view) evaluates on the mean direction of that many
    windows of the checkpoint's crop length (0: whole utterances), with class embeddings made
    the same way from the training part, as `test --data.eval_crops` makes them.
    """
    path = run_dir / "checkpoints" / checkpoint
    if not path.is_file():
        kept = kept_answers(run_dir, checkpoint, part, eval_crops)
        datamodule = datamodule or run_datamodule(run_dir)
        expected = sorted(datamodule.table.paths[i] for i in getattr(datamodule.split, part))
        if kept.paths != expected:
            raise ValueError(
                f"{run_dir / ANSWERS_FILE}: its {part} utterances are not those "
                f"{run_dir}/config.yaml makes"
            )
        return kept, datamodule
    ckpt = read_checkpoint(path)  # read once; a bad checkpoint fails before the features load
    model = model_of_checkpoint(ckpt, path)
    datamodule = datamodule or run_datamodule(run_dir)
    trained_on = ckpt.get("split")
    if trained_on is not None and trained_on != datamodule.split_identity:
        raise ValueError(f"{path} was trained on another split than {run_dir}/config.yaml makes")
    if part == "val" and not datamodule.has_validation:
        raise ValueError(f"{run_dir} has no validation part (it trained with data.val_size 0)")
    if model.class_names != datamodule.class_names:
        raise ValueError(f"{path}: emotions {model.class_names}, its data's are others")
    embedder = model.embedder
    if eval_crops is not None and eval_crops != embedder.eval_crops:
        embedder.set_crops(eval_crops, embedder.crop_frames)
        embedder.refresh_class_embeddings(datamodule.iter_part("train"))
    outs = embedder.embed_batches(datamodule.iter_part(part))
    paths = [datamodule.table.paths[i] for i in outs["index"].tolist()]
    rows = sorted(range(len(paths)), key=paths.__getitem__)
    answers = MemberAnswers(
        run_dir=run_dir,
        paths=[paths[i] for i in rows],
        cosines=cosine_to_classes(outs["embeddings"], embedder.class_embeddings)[rows],
        probabilities=outs["logits"].float().softmax(dim=-1)[rows],
        labels=outs["labels"][rows],
        view=embedder.view,
    )
    return answers, datamodule
