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


def refuse_other_split(
    trained_on: dict[str, Any], now: dict[str, Any], resuming: bool = False
) -> None:
    """Raise SplitMismatchError, naming both splits and the way out, when they differ (a
    resumed fit has no way round: it would train on another split's test part)."""
    if now == trained_on:
        return
    way_out = (
        "or start a new fit without --ckpt_path"
        if resuming
        else "or pass --evaluate_elsewhere true to evaluate anyway"
    )
    raise SplitMismatchError(
        f"the checkpoint was trained on {describe_split(trained_on)} but this run's data gives "
        f"{describe_split(now)}: its test part may hold training utterances. Use the training "
        f"settings (--data.split / --data.fold / --data.seed / --data.root), {way_out}"
    )
