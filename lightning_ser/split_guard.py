"""A checkpoint is evaluated on the split it was trained on, or the run says it is not.

Another split's test part could hold the checkpoint's training utterances, so test and validate
refuse it unless `--evaluate_elsewhere true` is given (then every report says so).
"""

from __future__ import annotations

from typing import Any


class SplitMismatchError(ValueError):
    """A checkpoint evaluated on another split than the one it was trained on."""


def describe_split(identity: dict[str, Any]) -> str:
    """`corpus protocol fold k seed s (digest, normalisation)` of a split identity."""
    return (
        f"{identity['corpus']} {identity['protocol']} fold {identity['fold']} seed "
        f"{identity['seed']} ({identity['digest']}, "
        f"{identity.get('normalisation', 'train')} normalisation)"
    )


def refuse_other_split(trained_on: dict[str, Any], now: dict[str, Any]) -> None:
    """Raise SplitMismatchError, naming both splits and the way out, when they differ."""
    if now == trained_on:
        return
    raise SplitMismatchError(
        f"the checkpoint was trained on {describe_split(trained_on)} but this run's data gives "
        f"{describe_split(now)}: its test part may hold training utterances. Use the training "
        "settings (--data.split / --data.fold / --data.seed / --data.root), or pass "
        "--evaluate_elsewhere true to evaluate anyway"
    )
