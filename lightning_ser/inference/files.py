"""Phase III around the model: finding audio, writing predictions (CSV / JSON) and embeddings."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..atomic import atomic_open
from ..data.corpora.base import AUDIO_EXTENSIONS, walk_files
from ..runs import keep_earlier
from .model import DEFAULT_BATCH_FRAMES, EmotionModel, Prediction, _Result

#: Extensions `find_audio` picks up in folders: the corpus adapters' plus other soundfile formats.
INFERENCE_EXTENSIONS = tuple(AUDIO_EXTENSIONS) + (".au", ".caf", ".w64", ".rf64", ".opus")
#: Columns of the predictions CSV around the per-emotion angle columns.
CSV_HEAD = ("path", "status", "emotion", "cosine", "softmax_emotion")
CSV_TAIL = ("frames", "duration_s", "error")


def find_audio(inputs: Iterable[str | Path]) -> list[Path]:
    """Audio files among `inputs` (files kept as given; folders searched recursively, sorted).

    Folders contribute files whose extension is in INFERENCE_EXTENSIONS (symbolic links to
    folders are followed, each folder once); a file named directly is kept whatever its
    extension, and so is an input that does not exist: both become error rows later, so one bad
    input never stops a run. Duplicates are dropped.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for given in inputs:
        path = Path(given).expanduser()
        if path.is_dir():
            candidates = [p for p in walk_files(path) if p.suffix.lower() in INFERENCE_EXTENSIONS]
        else:
            candidates = [path]
        for p in candidates:
            key = p.resolve() if p.exists() else p
            if key not in seen:
                seen.add(key)
                found.append(p)
    return found


def csv_columns(class_names: Sequence[str]) -> list[str]:
    """Columns of the predictions CSV for these emotions."""
    return [*CSV_HEAD, *(f"angle_{c}" for c in class_names), *CSV_TAIL]


def _fmt(value: float | None, digits: int = 6) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def write_predictions(
    preds: Sequence[Prediction],
    out_csv: str | Path,
    class_names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
) -> Path:
    """Write predictions as CSV (one angle column per emotion), atomically; returns the path.

    `class_names` fixes the angle columns; by default they come from the first "ok" prediction.
    `labels` (the true emotion of each file, when known) adds a last column, `label`.
    """
    if class_names is None:
        class_names = next((list(p.angles) for p in preds if p.angles), [])
    if labels is not None and len(labels) != len(preds):
        raise ValueError(f"{len(labels)} labels for {len(preds)} predictions")
    columns = csv_columns(class_names) + (["label"] if labels is not None else [])
    out_csv = Path(out_csv)
    with atomic_open(out_csv) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for k, p in enumerate(preds):
            row = {
                "path": p.path,
                "status": p.status,
                "emotion": p.emotion or "",
                "cosine": _fmt(p.cosine),
                "softmax_emotion": p.softmax_emotion or "",
                "frames": "" if p.frames is None else p.frames,
                "duration_s": _fmt(p.duration_s, 4),
                "error": p.error or "",
            }
            for c in class_names:
                row[f"angle_{c}"] = _fmt(p.angles.get(c), 4)
            if labels is not None:
                row["label"] = labels[k]
            writer.writerow(row)
    return out_csv


def predictions_to_json(preds: Sequence[Prediction]) -> list[dict[str, Any]]:
    """Predictions as JSON-ready dictionaries (field names as in Prediction, plus least_angle)."""
    out = []
    for p in preds:
        row = {f.name: getattr(p, f.name) for f in fields(p)}
        row["angles"] = dict(p.angles)
        row["least_angle"] = p.least_angle
        out.append(row)
    return out


def ravdess_label(path: str | Path) -> str:
    """The emotion a RAVDESS file name encodes, or "" when the name is not of that form."""
    from ..data.corpora.ravdess import parse_name

    try:
        return parse_name(Path(path).stem)["emotion"]
    except (ValueError, KeyError):
        return ""


def embed_files(
    model: EmotionModel,
    paths: Iterable[str | Path],
    out_dir: str | Path,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
) -> dict[str, Any]:
    """Write `embeddings.npy` [N_ok, D] float32 and `index.csv` for `paths`, atomically.

    `index.csv` has one row per file (row, path, label, status, error): `row` indexes
    `embeddings.npy` for files that worked and is empty for files that failed; `label` is the
    emotion of a RAVDESS file name, else empty. When no file worked nothing is written, so a
    mistyped input never replaces the files of an earlier call; an earlier call's files are
    moved aside to `embeddings.previous-<n>.npy` / `index.previous-<n>.csv`, never overwritten.

    Returns:
        {"embeddings": path or None, "index": path or None, "files": N, "ok": K, "errors": M,
        "failures": [(path, error), ...], "kept": where an earlier call's files were moved}.
    """
    out_dir = Path(out_dir)
    rows: list[dict[str, Any]] = []
    vectors: list[Tensor] = []
    for out in model._run(paths, batch_frames):
        if isinstance(out, _Result):
            rows.append({"row": len(vectors), "path": out.item.path, "status": "ok", "error": ""})
            vectors.append(out.embedding)
        else:
            rows.append({"row": "", "path": out.path, "status": "error", "error": out.error})
    for row in rows:
        row["label"] = ravdess_label(row["path"])
    ok = len(vectors)
    failures = [(row["path"], row["error"]) for row in rows if row["status"] == "error"]
    counts = {"files": len(rows), "ok": ok, "errors": len(rows) - ok, "failures": failures}
    if not vectors:
        return {"embeddings": None, "index": None, **counts}
    array = torch.stack(vectors).numpy().astype(np.float32)
    npy, index = out_dir / "embeddings.npy", out_dir / "index.csv"
    kept = [aside for _, aside in keep_earlier([npy, index])]
    with atomic_open(npy, "wb") as handle:
        np.save(handle, array)
    with atomic_open(index) as handle:
        writer = csv.DictWriter(handle, fieldnames=["row", "path", "label", "status", "error"])
        writer.writeheader()
        writer.writerows(rows)
    return {"embeddings": npy, "index": index, "kept": kept, **counts}
