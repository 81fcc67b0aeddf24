"""Feature normalisation: the training part's statistics, or each speaker's own.

The model standardises frames with the training part's mean and std (buffers of the embedder);
`normalisation: speaker` instead standardises every utterance with its speaker's statistics
before the model sees it (transductive for test speakers).
"""

from __future__ import annotations

import dataclasses

import torch

from .cache import FeatureTable


def training_statistics(table: FeatureTable, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std (floored at 1e-5) of every feature over the frames of utterances `rows`."""
    frames = torch.cat([table.utterance(i) for i in rows])
    return frames.mean(dim=0), frames.std(dim=0).clamp_min(1e-5)


def per_speaker_normalised(
    table: FeatureTable,
    groups: list[str],
    reference: FeatureTable | None = None,
    reference_groups: list[str] | None = None,
) -> FeatureTable:
    """A copy of `table` whose frames are standardised with their speaker's mean and std.

    The statistics come from `reference` (default: `table` itself), so training copies of
    utterances (speed perturbation) are scaled exactly like the originals they were made from.
    """
    if reference is None or reference_groups is None:
        reference, reference_groups = table, groups
    names = sorted(set(reference_groups))

    def frame_speaker(t: FeatureTable, g: list[str]) -> torch.Tensor:
        return torch.tensor([names.index(x) for x in g]).repeat_interleave(t.lengths)

    ref_owner, owner = frame_speaker(reference, reference_groups), frame_speaker(table, groups)
    frames = table.frames.clone()
    for k in range(len(names)):
        ref = reference.frames[ref_owner == k]
        rows = owner == k
        frames[rows] = (frames[rows] - ref.mean(dim=0)) / ref.std(dim=0).clamp_min(1e-5)
    return dataclasses.replace(table, frames=frames)
