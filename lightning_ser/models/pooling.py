"""Temporal pooling of frame-level features [B, T, C] into one vector per utterance.

- ``mean``: the paper's temporal average over the valid frames (Eq. 1) -> [B, C].
- ``attentive_stats``: attentive statistics pooling (Okabe et al., Interspeech 2018): a small
  network scores every frame, the softmax of the scores over the valid frames weights a mean and
  a standard deviation -> [B, 2C]. Frames that carry emotion can count more than silence-like
  ones, and the deviation keeps how much the voice varies.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

from lightning_ser.models.layers import sequence_mask

PoolingName = Literal["mean", "attentive_stats"]
POOLINGS: tuple[str, ...] = get_args(PoolingName)


def masked_mean(h: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Temporal average of ``h`` [B, T, C] over the valid frames (Eq. 1) -> [B, C].

    ``lengths=None`` averages all T frames. Rows with ``lengths == 0`` give zeros;
    lengths beyond T count as T.
    """
    if lengths is None:
        return h.mean(dim=1)
    mask = sequence_mask(lengths, h.shape[1], h.device).unsqueeze(-1).to(h.dtype)
    return (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class MeanPooling(nn.Module):
    """The paper's masked temporal average: [B, T, C] -> [B, C]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_features = channels

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        return masked_mean(h, lengths)


class AttentiveStatsPooling(nn.Module):
    """Attention-weighted mean and standard deviation over the valid frames: [B, T, C] -> [B, 2C].

    Args:
        channels: C, the frame features' width.
        hidden: width of the frame-scoring network (``Linear(C, hidden) -> tanh -> Linear(1)``).
    """

    def __init__(self, channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(channels, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.out_features = 2 * channels

    def forward(self, h: Tensor, lengths: Tensor | None = None) -> Tensor:
        scores = self.score(h).squeeze(-1).float()  # [B, T]
        if lengths is not None:
            valid = sequence_mask(lengths, h.shape[1], h.device)
            scores = scores.masked_fill(~valid, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1).unsqueeze(-1).to(h.dtype)
        mean = (weights * h).sum(dim=1)
        var = (weights * h * h).sum(dim=1) - mean * mean
        return torch.cat([mean, var.clamp(min=1e-6).sqrt()], dim=-1)


def build_pooling(name: PoolingName, channels: int) -> nn.Module:
    """The pooling ``name`` for frame features of width ``channels``."""
    if name == "mean":
        return MeanPooling(channels)
    if name == "attentive_stats":
        return AttentiveStatsPooling(channels)
    raise ValueError(f"model.pooling: unknown pooling {name!r}; choose one of {POOLINGS}")
