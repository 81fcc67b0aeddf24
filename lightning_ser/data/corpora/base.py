"""The utterance table every corpus adapter produces, and the errors it raises."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

OnBadFile = Literal["error", "skip"]

#: File extensions an adapter looks at when it scans a folder (soundfile reads them all).
AUDIO_EXTENSIONS = (".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3")


class CorpusError(ValueError):
    """A corpus folder, file name or label that cannot be used; the message names it."""


@dataclass(frozen=True)
class Utterance:
    """One row of the utterance table: an audio file, its emotion, its speaker and metadata."""

    path: str
    label: str
    speaker: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def require_dir(root: str | Path, what: str) -> Path:
    """Return `root` as a Path, or raise CorpusError naming it when it is not a folder."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise CorpusError(f"{what} folder not found: {path}")
    return path


def walk_files(root: Path) -> list[Path]:
    """Every file under `root`, sorted, following symbolic links to folders (each real folder is
    entered once, so a link loop ends): a linked emotion folder is data like any other. A link
    to a file that is gone is listed too, so that reading it fails by name instead of the file
    vanishing from the corpus without a word."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        dirs.sort()
        found += [
            Path(folder) / f
            for f in files
            if (Path(folder) / f).is_file() or (Path(folder) / f).is_symlink()
        ]
    return sorted(found)


def audio_files(root: Path) -> list[Path]:
    """All audio files under `root` (recursive, sorted, by extension; links followed)."""
    return [p for p in walk_files(root) if p.suffix.lower() in AUDIO_EXTENSIONS]


class BadFiles:
    """Collects problems with individual files; at the end (`finish`) raises or warns.

    Adapters call `bad(path, reason)` for each file they cannot use and go on; with
    `on_bad_file="error"` `finish` then raises one CorpusError naming every such file (a user
    fixes them in one go, not one run at a time), with `"skip"` they are counted and reported.
    """

    def __init__(self, on_bad_file: OnBadFile, corpus: str) -> None:
        if on_bad_file not in ("error", "skip"):
            raise CorpusError(f"on_bad_file must be 'error' or 'skip', got {on_bad_file!r}")
        self.on_bad_file = on_bad_file
        self.corpus = corpus
        self.skipped: list[tuple[str, str]] = []

    def __call__(self, path: str | Path, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def report(self) -> None:
        """Raise (on_bad_file "error") or log one warning with the number of bad files and each
        of them (the data module also lists skipped files in a file next to the feature cache)."""
        if self.skipped and self.on_bad_file == "error":
            shown = "; ".join(f"{p}: {r}" for p, r in self.skipped[:3])
            more = f"; and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            raise CorpusError(
                f"{self.corpus}: {len(self.skipped)} bad file(s): {shown}{more} (set "
                "on_bad_file: skip to skip such files)"
            )
        if self.skipped:
            every = "; ".join(f"{p}: {r}" for p, r in self.skipped)
            log.warning("%s: skipped %d bad file(s): %s", self.corpus, len(self.skipped), every)


def normalise_labels(rows: list[Utterance], source: str) -> list[Utterance]:
    """Labels in lower case, so `Anger` and `anger` are one emotion; says which spellings merged."""
    spellings: dict[str, set[str]] = {}
    for row in rows:
        spellings.setdefault(row.label.lower(), set()).add(row.label)
    merged = {k: sorted(v) for k, v in spellings.items() if len(v) > 1}
    if merged:
        listed = "; ".join(f"{' / '.join(v)} -> {k}" for k, v in sorted(merged.items()))
        log.warning("%s: labels differing only in case were merged: %s", source, listed)
    return [replace(row, label=row.label.lower()) for row in rows]


class UtteranceTable(list):
    """A corpus's utterances, with the files skipped while reading it (`skipped`: path, why)."""

    skipped: list[tuple[str, str]]


def finish(utterances: Iterable[Utterance], bad: BadFiles, root: Path) -> UtteranceTable:
    """Report skipped files and fail clearly when nothing usable was found."""
    table = UtteranceTable(utterances)
    table.skipped = list(bad.skipped)
    bad.report()
    if not table:
        raise CorpusError(f"{bad.corpus}: no usable utterances found under {root}")
    return table


def load_named_files(
    root: str | Path,
    corpus: str,
    parse_name: Callable[[str], dict[str, Any]],
    speaker_of: Callable[[dict[str, Any]], str],
    on_bad_file: OnBadFile = "error",
    keep: Callable[[dict[str, Any]], bool] = lambda meta: True,
) -> list[Utterance]:
    """Utterances of a corpus whose file names encode everything (RAVDESS, EMO-DB, TESS, CREMA-D).

    `parse_name(stem)` returns the metadata (with an "emotion" key) or raises ValueError naming the
    bad field; `speaker_of(meta)` gives the speaker; `keep(meta)` filters (e.g. speech only).
    """
    folder = require_dir(root, corpus)
    bad = BadFiles(on_bad_file, corpus)
    rows = []
    for path in audio_files(folder):
        try:
            meta = parse_name(path.stem)
        except ValueError as err:
            bad(path, str(err))
            continue
        if keep(meta):
            rows.append(Utterance(str(path), meta["emotion"], speaker_of(meta), meta))
    return finish(rows, bad, folder)
