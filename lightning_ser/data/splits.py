"""Evaluation protocols: which utterances train, validate and test, deterministically for a seed.

`holdout` and `kfold` are the paper's utterance-level splits (the same speakers appear on both
sides); `speaker_holdout`, `speaker_kfold`, `loso` and `speaker_folds` (fixed folds of speakers
given in the config, e.g. EmoBox's RAVDESS folds) keep every speaker (or session) on one side.
The validation part for early stopping is always carved out of the training part, speaker-disjoint
in the speaker protocols, so the test part never influences training or model selection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from sklearn.model_selection import (
    GroupShuffleSplit,
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    StratifiedKFold,
    StratifiedShuffleSplit,
)

Protocol = Literal["holdout", "kfold", "speaker_holdout", "speaker_kfold", "loso", "speaker_folds"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
SPEAKER_INDEPENDENT = frozenset({"speaker_holdout", "speaker_kfold", "loso", "speaker_folds"})
#: Speakers as written in a config: RAVDESS actor numbers (1) or the adapter's names (actor01).
SpeakerFolds = list[list[int | str]]


@dataclass(frozen=True)
class Split:
    """Indices into the utterance table for each part, and how they were made."""

    protocol: str
    fold: int
    n_folds: int
    seed: int
    train: list[int]
    val: list[int]
    test: list[int]

    @property
    def speaker_independent(self) -> bool:
        """True when no speaker (or session) is in both the training and the test part."""
        return self.protocol in SPEAKER_INDEPENDENT

    def identity(self, paths: Sequence[str]) -> dict[str, object]:
        """What makes this split this split: protocol, fold, seed and a digest of the file lists
        of every part (kept in checkpoints, so a model is never tested on its training data)."""
        digest = hashlib.sha256()
        for part in ("train", "val", "test"):
            digest.update(part.encode())
            for i in sorted(paths[i] for i in getattr(self, part)):
                digest.update(i.encode() + b"\0")
        return {
            "protocol": self.protocol,
            "fold": self.fold,
            "seed": self.seed,
            "utterances": len(self.train) + len(self.val) + len(self.test),
            "digest": digest.hexdigest()[:16],
        }

    def to_json(self, path: str | Path, paths: Sequence[str], groups: Sequence[str]) -> None:
        """Save the split with file paths and speakers, so a run can be audited and repeated."""
        record = asdict(self) | {"speaker_independent": self.speaker_independent}
        for part in ("train", "val", "test"):
            idx = getattr(self, part)
            record[f"{part}_paths"] = [paths[i] for i in idx]
            record[f"{part}_speakers"] = sorted({groups[i] for i in idx})
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(record, indent=1))


def num_folds(
    protocol: str, groups: Sequence[str], n_folds: int, speaker_folds: SpeakerFolds | None = None
) -> int:
    """Folds a protocol has: 1 for holdouts, the number of groups for loso, the configured folds
    for speaker_folds, else `n_folds`."""
    if protocol in ("holdout", "speaker_holdout"):
        return 1
    if protocol == "loso":
        return len(set(groups))
    if protocol == "speaker_folds":
        return len(speaker_folds or [])
    return n_folds


def _find_speaker(speaker: int | str, names: Sequence[str]) -> str | None:
    """The corpus speaker a configured one means: the same name, else (for a number such as
    1 or "01") the one speaker whose name ends in that number (RAVDESS's "actor01")."""
    text = str(speaker)
    if text in names:
        return text
    if not text.isdigit():
        return None
    numbered = [n for n in names if (d := n[len(n.rstrip("0123456789")) :]) and int(d) == int(text)]
    if len(numbered) > 1:
        raise ValueError(
            f"data.speaker_folds: speaker {speaker!r} is ambiguous ({', '.join(numbered)}); "
            "name the speakers in full"
        )
    return numbered[0] if numbered else None


def fixed_speaker_folds(groups: Sequence[str], speaker_folds: SpeakerFolds) -> list[np.ndarray]:
    """Test indices of each configured fold of speakers; every speaker must exist, in one fold."""
    names = sorted(set(groups))
    seen: dict[str, int] = {}
    folds = []
    for k, fold in enumerate(speaker_folds):
        if not fold:
            raise ValueError(f"data.speaker_folds: fold {k} is empty")
        chosen: set[str] = set()
        for speaker in fold:
            name = _find_speaker(speaker, names)
            if name is None:
                raise ValueError(
                    f"data.speaker_folds: speaker {speaker!r} (fold {k}) is not in the corpus; "
                    f"its speakers are {', '.join(names)}"
                )
            if name in seen:
                raise ValueError(
                    f"data.speaker_folds: speaker {speaker!r} is in folds {seen[name]} and {k}"
                )
            seen[name] = k
            chosen.add(name)
        folds.append(np.flatnonzero(np.isin(np.asarray(groups), sorted(chosen))))
    return folds


def _carve_validation(
    train: np.ndarray, y: np.ndarray, g: np.ndarray, by_group: bool, val_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training indices into (train, val): stratified, or group-disjoint when by_group."""
    if by_group:
        if len(set(g[train])) < 2:
            raise ValueError("need at least two speakers in the training part to carve validation")
        splitter = GroupShuffleSplit(n_splits=1, test_size=val_size, random_state=seed)
        tr, va = next(splitter.split(train, y[train], g[train]))
    else:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=val_size, random_state=seed)
        tr, va = next(splitter.split(train, y[train]))
    return np.sort(train[tr]), np.sort(train[va])


def make_split(
    labels: Sequence[str],
    groups: Sequence[str],
    protocol: Protocol = "holdout",
    fold: int = 0,
    n_folds: int = 10,
    test_size: float = 0.3,
    val_size: float = 0.1,
    seed: int = 0,
    speaker_folds: SpeakerFolds | None = None,
) -> Split:
    """Train / val / test indices for one fold of a protocol (scikit-learn splitters underneath).

    Args:
        labels: emotion label per utterance (stratification).
        groups: speaker (or session) per utterance (speaker-independent protocols).
        protocol: one of PROTOCOLS.
        fold: which fold for kfold / speaker_kfold / loso (0-based).
        n_folds: folds for kfold and speaker_kfold (the paper: 10).
        test_size: test fraction for holdout and speaker_holdout (the paper: 0.3).
        val_size: fraction of the training part used for validation (early stopping and the
            choice of checkpoint); 0 keeps no validation part: the whole training part trains
            a schedule fixed beforehand on validation (scikit-learn's `refit`).
        seed: makes every split deterministic.
        speaker_folds: the speakers of each fold for the speaker_folds protocol (test part of
            fold k = the utterances of fold k's speakers; speakers in no fold always train).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"data.split: unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    if not 0 < test_size < 1:
        raise ValueError(f"data.test_size must be in (0, 1), got {test_size}")
    if not 0 <= val_size < 1:
        raise ValueError(f"data.val_size must be in [0, 1), got {val_size}")
    y, g = np.asarray(labels), np.asarray(groups)
    index = np.arange(len(y))
    if protocol in SPEAKER_INDEPENDENT and len(set(groups)) < 2:
        raise ValueError(
            f"data.split={protocol} needs utterances of several speakers; this corpus names "
            f"{len(set(groups))} ({', '.join(map(str, sorted(set(groups))))}): a manifest "
            "needs a speaker column"
        )
    if protocol == "speaker_folds" and not speaker_folds:
        raise ValueError("data.split=speaker_folds needs data.speaker_folds: [[speakers], ...]")
    folds = num_folds(protocol, groups, n_folds, speaker_folds)
    if folds > 1 and not 0 <= fold < folds:
        raise ValueError(f"data.fold={fold} is outside 0..{folds - 1} for protocol {protocol}")
    if folds == 1 and fold != 0:
        raise ValueError(
            f"data.fold={fold} means nothing for protocol {protocol} (one split); "
            "change data.seed for another draw, or use a k-fold protocol"
        )
    if protocol == "holdout":
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        try:
            train, test = next(splitter.split(index, y))
        except ValueError as err:
            raise ValueError(f"data.test_size={test_size}: {err}") from err
    elif protocol == "speaker_holdout":
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train, test = next(splitter.split(index, y, g))
    elif protocol == "kfold":
        if n_folds < 2:
            raise ValueError(f"data.n_folds must be >= 2, got {n_folds}")
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        train, test = list(splitter.split(index, y))[fold]
    elif protocol == "speaker_kfold":
        if not 2 <= n_folds <= len(set(groups)):
            raise ValueError(f"data.n_folds={n_folds} must be in 2..{len(set(groups))} (speakers)")
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        train, test = list(splitter.split(index, y, g))[fold]
    elif protocol == "speaker_folds":
        test = fixed_speaker_folds(groups, speaker_folds or [])[fold]
        train = np.setdiff1d(index, test)
    else:  # loso: folds follow the sorted group names, so fold k always holds out the same one
        train, test = list(LeaveOneGroupOut().split(index, y, g))[fold]
    if val_size == 0:
        return Split(protocol, fold, folds, seed, sorted(train.tolist()), [], sorted(test.tolist()))
    by_group = protocol in SPEAKER_INDEPENDENT
    try:
        train, val = _carve_validation(train, y, g, by_group, val_size, seed)
    except ValueError as err:
        raise ValueError(
            f"data.val_size={val_size}: cannot carve a validation part out of {len(train)} "
            f"training utterances ({err}); use a larger data.val_size or more data"
        ) from err
    return Split(protocol, fold, folds, seed, train.tolist(), val.tolist(), np.sort(test).tolist())
