"""Corpora without an adapter of their own: a folder per emotion, or a CSV manifest.

Folder layout (`load_folder`): `root/<emotion>/<file>` or `root/<emotion>/<speaker>/.../<file>`.
Manifest (`load_manifest`): a CSV with the header `path,label[,speaker]`; further columns become
metadata, and relative paths are taken relative to the CSV's folder. Labels are lower-cased in
both (`Anger` and `anger` are one emotion, with a warning), and linked folders are followed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .base import (
    BadFiles,
    CorpusError,
    OnBadFile,
    Utterance,
    audio_files,
    finish,
    normalise_labels,
    require_dir,
)

UNKNOWN_SPEAKER = "unknown"
MANIFEST_NAME = "manifest.csv"
REQUIRED_COLUMNS = ("path", "label")


def load_folder(root: str | Path, on_bad_file: OnBadFile = "error") -> list[Utterance]:
    """Utterances of `root/<emotion>/[<speaker>/...]<file>`: label = first folder level below
    `root`, speaker = second folder level when there is one, else "unknown"."""
    root = require_dir(root, "emotion")
    bad = BadFiles(on_bad_file, "folder corpus")
    rows = []
    for path in audio_files(root):
        folders = path.relative_to(root).parts[:-1]
        if not folders:
            bad(path, "file is not inside an emotion sub-folder (expected root/<emotion>/<file>)")
            continue
        speaker = folders[1] if len(folders) > 1 else UNKNOWN_SPEAKER
        rows.append(Utterance(str(path), folders[0], speaker, {"folder": "/".join(folders)}))
    return finish(normalise_labels(rows, f"folder corpus {root}"), bad, root)


def manifest_path(root: str | Path, manifest: str | None = None) -> Path:
    """The CSV of a manifest corpus: `root` itself, or `manifest` (default manifest.csv) in it."""
    root = Path(root).expanduser()
    if root.is_file():
        if manifest is not None:
            raise CorpusError(f"manifest: root {root} is a file already; leave `manifest` unset")
        return root
    path = require_dir(root, "manifest") / (manifest or MANIFEST_NAME)
    if not path.is_file():
        raise CorpusError(f"manifest file not found: {path}")
    return path


def load_manifest(
    root: str | Path, manifest: str | None = None, on_bad_file: OnBadFile = "error"
) -> list[Utterance]:
    """Utterances listed in a CSV manifest with columns `path,label[,speaker]` (+ any others).

    `root` is the CSV file, or a folder holding it (`manifest` names it; default manifest.csv).
    """
    csv_path = manifest_path(root, manifest)
    bad = BadFiles(on_bad_file, f"manifest {csv_path.name}")
    try:
        rows = _manifest_rows(csv_path, bad)
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"manifest {csv_path}: not UTF-8 text (byte {err.object[err.start]:#x} at offset "
            f"{err.start}); save it as UTF-8, or name the CSV file itself, not an audio file"
        ) from None
    return finish(normalise_labels(rows, f"manifest {csv_path}"), bad, csv_path)


def _manifest_rows(csv_path: Path, bad: BadFiles) -> list[Utterance]:
    """The manifest's readable rows; the others go to `bad`."""
    rows = []
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise CorpusError(
                f"manifest {csv_path}: missing column(s) {missing}; found {columns}, "
                "expected a header path,label[,speaker]"
            )
        reader.fieldnames = columns
        for number, record in enumerate(reader, start=1):
            values = {k: (v or "").strip() for k, v in record.items() if k is not None}
            where = f"row {number} (line {reader.line_num}) of {csv_path}"
            if not values["path"]:
                bad(where, "empty path")
                continue
            audio = Path(values["path"]).expanduser()
            if not audio.is_absolute():
                audio = csv_path.parent / audio
            if not values["label"]:
                bad(audio, f"empty label ({where})")
                continue
            if not audio.is_file():
                bad(audio, f"audio file not found ({where}, path {values['path']!r})")
                continue
            speaker = values.get("speaker") or UNKNOWN_SPEAKER
            meta = {k: v for k, v in values.items() if k not in ("path", "label", "speaker")}
            rows.append(Utterance(str(audio), values["label"], speaker, meta))
    return rows
