"""Augmentation of training batches: SpecAugment-style time and feature masking, and mixup.

torchaudio's `TimeMasking` / `FrequencyMasking` do the masking, with a different mask for every
example. Masked values are set to the training mean of their feature (not to 0, which would be a
loud, unusual value for raw MFCCs), so after normalisation a masked value is exactly zero.
Only the training step calls this; validation, test and inference never see masks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchaudio.transforms import FrequencyMasking, TimeMasking


class SpecMasking(nn.Module):
    """`time_masks` masks of up to `time_mask_frames` frames and `feature_masks` masks of up to
    `feature_mask_width` feature values per example; identity with no masks or in eval mode."""

    def __init__(
        self,
        time_masks: int = 0,
        time_mask_frames: int = 20,
        feature_masks: int = 0,
        feature_mask_width: int = 6,
    ) -> None:
        super().__init__()
        for name, value in (
            ("model.time_masks", time_masks),
            ("model.time_mask_frames", time_mask_frames),
            ("model.feature_masks", feature_masks),
            ("model.feature_mask_width", feature_mask_width),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.time_masks, self.feature_masks = time_masks, feature_masks
        self.time = TimeMasking(time_mask_frames, iid_masks=True)
        self.feature = FrequencyMasking(feature_mask_width, iid_masks=True)

    def forward(self, x: Tensor, centre: Tensor) -> Tensor:
        """`x` [B, T, F] raw frames, `centre` [F] the value a masked feature takes."""
        if not self.training or (self.time_masks == 0 and self.feature_masks == 0):
            return x
        h = (x - centre).transpose(1, 2).unsqueeze(1)  # [B, 1, F, T], as torchaudio expects
        for _ in range(self.time_masks):
            h = self.time(h)
        for _ in range(self.feature_masks):
            h = self.feature(h)
        return h.squeeze(1).transpose(1, 2) + centre

    def extra_repr(self) -> str:
        return f"time_masks={self.time_masks}, feature_masks={self.feature_masks}"


def mixup(
    x: Tensor, lengths: Tensor, centre: Tensor, weight: float, partner: Tensor
) -> tuple[Tensor, Tensor]:
    """`weight * x + (1 - weight) * x[partner]` over padded utterances (mixup, Zhang et al. 2018).

    `x` [B, T, F] raw frames, `lengths` [B], `centre` [F] the training mean, `partner` [B] a
    permutation. Padding is first set to the centre, so where one utterance of a pair has ended,
    the mix holds the other at its weight over silence-free "average" frames (zero after
    normalisation), not over zeros, which are loud raw MFCC values. The mixed length is the
    longer of the two. Written here because torchaudio has no mixup for padded batches.
    """
    padding = torch.arange(x.shape[1], device=x.device)[None, :] >= lengths[:, None]
    x = torch.where(padding[..., None], centre.to(x.dtype), x)
    return weight * x + (1 - weight) * x[partner], torch.maximum(lengths, lengths[partner])
