"""`write_report`: compute one evaluated split's analyses and write each of the report's files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lightning_ser.embeddings import angle_deviations, angle_matrix, least_angle_predict
from lightning_ser.metrics import classification_metrics

from .figures import plot_angle_matrix, plot_confusion, plot_deviations, plot_tsne, tsne
from .markdown import Classifier, report_markdown
from .tables import (
    DEVIATION_KEYS,
    Table,
    angle_matrix_table,
    confusion_table,
    deviations_table,
    json_safe,
    per_class_table,
    tsne_table,
    write_csv,
)

MIN_TSNE_SAMPLES = 5


class ReportFiles(dict[str, Path]):
    """File name -> path of every file written, plus the CSV tables themselves in `tables`."""

    def __init__(self) -> None:
        super().__init__()
        #: CSV file stem (e.g. ``"angle_matrix"``) -> the table written to it.
        self.tables: dict[str, Table] = {}

    def add(self, path: Path) -> Path:
        """Record `path` under its file name and return it."""
        self[path.name] = path
        return path

    def add_csv(self, path: Path, table: Table) -> Path:
        """Write `table` to `path` as CSV, record both and return `path`."""
        self.tables[path.stem] = table
        return self.add(write_csv(path, table))

    def add_json(self, path: Path, data: Any) -> Path:
        """Write `data` to `path` as indented JSON (NaN as null), record it and return `path`."""
        path.write_text(json.dumps(json_safe(data), indent=2) + "\n")
        return self.add(path)


@dataclass(frozen=True)
class _Target:
    """Where a report goes, what it is about, and the files written so far."""

    out: Path
    names: list[str]
    dataset: str
    protocol: str
    split_name: str
    files: ReportFiles

    @property
    def context(self) -> str:
        """The second line of every figure title."""
        return f"{self.dataset} · {self.protocol} · {self.split_name}"


def _check_inputs(
    embeddings: Tensor, labels: Tensor, class_emb: Tensor, names: list[str]
) -> tuple[Tensor, Tensor, Tensor]:
    """The embeddings, class embeddings and labels on the CPU, checked against each other."""
    emb = embeddings.detach().cpu().float()
    cls = class_emb.detach().cpu().float()
    y = torch.as_tensor(labels).detach().cpu().long().reshape(-1)
    if emb.dim() != 2 or emb.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty [N, D] tensor, got {tuple(emb.shape)}")
    if cls.dim() != 2 or cls.shape[0] != len(names):
        raise ValueError(
            f"class_emb has shape {tuple(cls.shape)} but there are {len(names)} class names"
        )
    if y.numel() != emb.shape[0]:
        raise ValueError(f"{y.numel()} labels for {emb.shape[0]} embeddings")
    return emb, cls, y


def _write_angle_matrix(t: _Target, matrix: np.ndarray) -> None:
    """``angle_matrix.csv`` / ``.png``: the paper's Tables II/III."""
    t.files.add_csv(t.out / "angle_matrix.csv", angle_matrix_table(matrix, t.names))
    title = f"Angles between emotion embeddings (degrees)\n{t.context}"
    t.files.add(plot_angle_matrix(matrix, t.names, title, t.out / "angle_matrix.png"))


def _write_deviations(t: _Target, dev: dict, angles: Tensor, labels: Tensor) -> None:
    """``deviations.csv`` / ``.json`` and ``deviations_boxplot.png``: Tables VI/VII, Figure 5."""
    t.files.add_csv(t.out / "deviations.csv", deviations_table(dev, t.names))
    deviations_json = {
        "dataset": t.dataset,
        "protocol": t.protocol,
        "split": t.split_name,
        "units": "degrees",
        "std": "population standard deviation (unbiased=False)",
        "per_class": {
            n: {k: float(dev[k][e]) for k in DEVIATION_KEYS} for e, n in enumerate(t.names)
        },
        "average_intra": dev["average_intra"],
        "average_inter": dev["average_inter"],
    }
    t.files.add_json(t.out / "deviations.json", deviations_json)
    title = f"Angles of utterances to class embeddings\n{t.context}"
    t.files.add(
        plot_deviations(
            angles.numpy(), labels.numpy(), t.names, title, t.out / "deviations_boxplot.png"
        )
    )


def _write_tsne(
    t: _Target, emb: Tensor, labels: Tensor, perplexity: float, seed: int
) -> str | None:
    """``tsne.csv`` / ``.png``: Figure 4; returns why it was skipped, or None."""
    n = emb.shape[0]
    if n < MIN_TSNE_SAMPLES:
        return f"t-SNE skipped: {n} utterances, fewer than the {MIN_TSNE_SAMPLES} it needs."
    coords = tsne(emb.numpy(), perplexity, seed)
    t.files.add_csv(t.out / "tsne.csv", tsne_table(coords, labels.tolist(), t.names))
    title = f"t-SNE of emotion embeddings\n{t.context}"
    t.files.add(plot_tsne(coords, labels.numpy(), t.names, title, t.out / "tsne.png"))
    return None


def _write_classifier(t: _Target, classifier: Classifier) -> None:
    """``confusion_matrix*.csv`` / ``.png`` and ``per_class*.csv`` for one classifier."""
    _, label, m, suffix = classifier
    t.files.add_csv(
        t.out / f"confusion_matrix{suffix}.csv", confusion_table(m["confusion"], t.names)
    )
    title = f"Confusion matrix, {label}\n{t.context}"
    path = t.out / f"confusion_matrix{suffix}.png"
    t.files.add(plot_confusion(m["confusion"].numpy(), t.names, title, path))
    t.files.add_csv(t.out / f"per_class{suffix}.csv", per_class_table(m, t.names))


def _write_metrics(
    t: _Target, metrics: Mapping[str, Any], classifiers: list[Classifier], dev: dict
) -> None:
    """``metrics.json``: the run's metrics, each classifier's WA/UA/macro-F1 and average angles."""
    all_metrics: dict[str, Any] = {}
    for key, value in metrics.items():
        try:
            all_metrics[str(key)] = float(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"metric {key!r} is not a number: {value!r}") from err
    for prefix, _, m, _ in classifiers:
        for k in ("wa", "ua", "macro_f1"):
            all_metrics[f"{prefix}/{k}"] = m[k]
    all_metrics["angles/average_intra"] = dev["average_intra"]
    all_metrics["angles/average_inter"] = dev["average_inter"]
    t.files.add_json(t.out / "metrics.json", all_metrics)


def _write_markdown(
    t: _Target,
    checkpoint: str | None,
    labels: Tensor,
    matrix: np.ndarray,
    dev: dict,
    classifiers: list[Classifier],
    metrics: Mapping[str, Any],
    tsne_note: str | None,
) -> None:
    """``report.md``, which gathers all of the above; written last, as it lists every file."""
    md = report_markdown(
        names=t.names,
        dataset=t.dataset,
        protocol=t.protocol,
        split_name=t.split_name,
        checkpoint=checkpoint,
        labels=labels,
        matrix=matrix,
        dev=dev,
        classifiers=classifiers,
        passed_metrics=metrics,
        paths=t.files,
        tsne_note=tsne_note,
    )
    (t.out / "report.md").write_text(md)
    t.files.add(t.out / "report.md")


def write_report(
    out_dir: str | Path,
    *,
    embeddings: Tensor,
    labels: Tensor,
    class_emb: Tensor,
    class_names: list[str],
    metrics: dict[str, float],
    protocol: str,
    dataset: str,
    checkpoint: str | None = None,
    split_name: str = "test",
    softmax_preds: Tensor | None = None,
    tsne_perplexity: float = 30.0,
    seed: int = 0,
) -> ReportFiles:
    """Write the angle matrix, deviations, t-SNE, confusion matrices, metrics and report.md.

    Args:
        out_dir: folder to write into (created).
        embeddings: [N, D] embeddings of the split's utterances.
        labels: [N] their true class indices.
        class_emb: [C, D] class embeddings (from the training data).
        class_names: the C emotion names, in class-index order.
        metrics: metrics computed elsewhere (e.g. by the LightningModule), copied into metrics.json.
        protocol: the split protocol (``holdout``, ``kfold``, ``speaker_holdout``, ...).
        dataset: the corpus name.
        checkpoint: the checkpoint the embeddings come from, if any.
        split_name: the name of the evaluated split.
        softmax_preds: [N] predictions of the softmax head, to report beside the least-angle ones.
        tsne_perplexity: t-SNE perplexity, lowered to (N - 1) / 3 for small N.
        seed: t-SNE random state.

    Returns:
        File name -> path of every file written (e.g. ``"angle_matrix.png"``), a dict whose
        ``tables`` attribute holds the CSV tables by file stem (for `log_report_to_wandb`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [str(n) for n in class_names]
    emb, cls, y = _check_inputs(embeddings, labels, class_emb, names)

    preds, angles = least_angle_predict(emb, cls)
    matrix = angle_matrix(cls, emb, y).numpy()
    dev = angle_deviations(cls, emb, y)
    least = classification_metrics(preds, y, len(names))
    classifiers: list[Classifier] = [("least_angle", "least-angle (class embeddings)", least, "")]
    if softmax_preds is not None:
        soft = classification_metrics(torch.as_tensor(softmax_preds).cpu(), y, len(names))
        classifiers.append(("softmax", "softmax head", soft, "_softmax"))

    t = _Target(out, names, dataset, protocol, split_name, ReportFiles())
    _write_angle_matrix(t, matrix)
    _write_deviations(t, dev, angles, y)
    tsne_note = _write_tsne(t, emb, y, tsne_perplexity, seed)
    for classifier in classifiers:
        _write_classifier(t, classifier)
    _write_metrics(t, metrics, classifiers, dev)
    _write_markdown(t, checkpoint, y, matrix, dev, classifiers, metrics, tsne_note)
    return t.files
