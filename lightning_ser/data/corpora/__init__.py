"""Corpus adapters: each turns a root folder into a list of `Utterance` rows.

`load_corpus(name, root, **options)` is the one entry point; `CLASS_NAMES[name]` gives a corpus's
canonical emotion order (None where the labels come from the data, as for generic folders).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import CorpusError, Utterance
from .cremad import CLASS_NAMES as CREMAD_CLASSES
from .cremad import load_cremad
from .emodb import CLASS_NAMES as EMODB_CLASSES
from .emodb import load_emodb
from .generic import load_folder, load_manifest
from .iemocap import CLASS_NAMES as IEMOCAP_CLASSES
from .iemocap import FOUR_CLASS_NAMES as IEMOCAP_FOUR_CLASSES
from .iemocap import load_iemocap
from .ravdess import CLASS_NAMES as RAVDESS_CLASSES
from .ravdess import load_ravdess
from .tess import CLASS_NAMES as TESS_CLASSES
from .tess import load_tess

LOADERS: dict[str, Callable[..., list[Utterance]]] = {
    "ravdess": load_ravdess,
    "iemocap": load_iemocap,
    "emodb": load_emodb,
    "tess": load_tess,
    "cremad": load_cremad,
    "folder": load_folder,
    "manifest": load_manifest,
}
CLASS_NAMES: dict[str, list[str] | None] = {
    "ravdess": RAVDESS_CLASSES,
    "iemocap": IEMOCAP_CLASSES,
    "emodb": EMODB_CLASSES,
    "tess": TESS_CLASSES,
    "cremad": CREMAD_CLASSES,
    "folder": None,
    "manifest": None,
}
#: Other class orders a corpus can produce (by loader options); used when the labels fit one.
ALTERNATIVE_CLASS_NAMES: dict[str, list[list[str]]] = {"iemocap": [IEMOCAP_FOUR_CLASSES]}


def load_corpus(name: str, root: str | Path, **options: Any) -> list[Utterance]:
    """Load the utterance table of corpus `name` from `root`; options go to its adapter."""
    if name not in LOADERS:
        raise CorpusError(f"unknown corpus {name!r}; choose one of {sorted(LOADERS)}")
    loader = LOADERS[name]
    signature = inspect.signature(loader)
    try:
        signature.bind(root, **options)
    except TypeError as err:
        allowed = list(signature.parameters)[1:]
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise CorpusError(
                f"corpus {name!r}: unknown option(s) {unknown}; allowed options: {allowed}"
            ) from None
        raise CorpusError(f"corpus {name!r}: bad corpus options {options}: {err}") from None
    return loader(root, **options)


def class_names_for(name: str, utterances: list[Utterance]) -> list[str]:
    """The class order for a corpus: its canonical order restricted to labels present, else sorted.

    Where a corpus has another fixed order (IEMOCAP's four classes) and the labels present all
    belong to it, that order is used instead.
    """
    present = {u.label for u in utterances}
    for order in ALTERNATIVE_CLASS_NAMES.get(name, []):
        if present <= set(order):
            return [c for c in order if c in present]
    canonical = CLASS_NAMES.get(name)
    if canonical:
        unknown = present - set(canonical)
        if unknown:
            raise CorpusError(f"corpus {name!r}: unknown labels {sorted(unknown)}")
        return [c for c in canonical if c in present]
    return sorted(present)


__all__ = [
    "CLASS_NAMES",
    "LOADERS",
    "CorpusError",
    "Utterance",
    "class_names_for",
    "load_corpus",
    "load_cremad",
    "load_emodb",
    "load_folder",
    "load_iemocap",
    "load_manifest",
    "load_ravdess",
    "load_tess",
]
