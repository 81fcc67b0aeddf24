"""A temporal-aware backbone in the style of TIM-Net (Ye et al., ICASSP 2023), from its paper.

TIM-Net reads an utterance in both time directions with stacks of *temporal-aware blocks*
(TABs): two causal dilated convolutions (kernel 2) with BatchNorm, ReLU and channel dropout, whose
sigmoid gates the block's input. Block ``i`` of a stack has dilation ``2**i``, so the receptive
field doubles at each level. After every level the forward and the (time-reversed) backward
streams are added and averaged over time, and a learned weight per level fuses the levels
("dynamic multi-scale fusion").

Here the backbone returns frame-level features ``[B, T, C]`` like every other backbone: the
level-weighted sum of the forward and backward streams (the backward one turned back into
forward time). Temporal average pooling of that sum is exactly TIM-Net's fused vector (averaging
is linear), and other poolings (attentive statistics) can be used on it as well.

Padding: sequences are right-padded. The forward stream is causal, so valid frames never see
padding; the backward stream reverses each utterance within its own length, so its padding
stays at the end as well. Padded frames may therefore hold anything without reaching a valid
frame, and the stack skips the per-layer zeroing the other backbones need (elementwise passes
cost more than the convolutions on a CPU); BatchNorm statistics ignore padded frames and the
output is zero there, so a padded batch computes what each utterance computes alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_ser.models.layers import (
    MaskedBatchNorm1d,
    check_dropout,
    check_positive,
    sequence_mask,
)


def reverse_valid(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each row of ``x`` [B, T, C] in time within its valid length (padding stays last)."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index[..., None].expand_as(x))


class CausalConvBN(nn.Module):
    """Causal dilated Conv1d (left padding only) + masked BatchNorm + ReLU + channel dropout."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.left = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.bn = MaskedBatchNorm1d(channels)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout1d(dropout)

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        """``h`` [B, C, T] -> [B, C, T]; ``mask`` [B, 1, T] only keeps padding out of BatchNorm."""
        h = self.conv(nn.functional.pad(h, (self.left, 0)))
        return self.dropout(self.act(self.bn(h, mask)))


class TemporalAwareBlock(nn.Module):
    """TIM-Net's TAB: ``x * sigmoid(conv_bn(conv_bn(x)))`` with causal dilated convolutions."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.first = CausalConvBN(channels, kernel_size, dilation, dropout)
        self.second = CausalConvBN(channels, kernel_size, dilation, dropout)

    def forward(self, h: Tensor, mask: Tensor | None) -> Tensor:
        return h * torch.sigmoid(self.second(self.first(h, mask), mask))


class TIMBackbone(nn.Module):
    """TIM-x: ``x`` temporal-aware levels (dilations 1, 2, ..., 2**(x-1)) in both time directions.

    ``forward(x [B, T, F], lengths [B] | None) -> [B, T, C]``; ``out_features == channels``.
    TIM-Net's own RAVDESS settings: 39 channels, kernel 2, 8 levels, dropout 0.1.

    Args:
        layers: number of levels (dilations up to ``2**(layers - 1)`` frames).
        in_features: values per input frame.
        channels: width of both streams (TIM-Net: 39).
        kernel_size: kernel of the causal convolutions (TIM-Net: 2).
        dropout: channel dropout after every convolution (TIM-Net: 0.1).
    """

    def __init__(
        self,
        layers: int = 8,
        in_features: int = 39,
        channels: int = 39,
        kernel_size: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        for name, value in (("layers", layers), ("in_features", in_features)):
            check_positive(name, value)
        check_positive("channels", channels)
        check_positive("kernel_size", kernel_size)
        check_dropout(dropout)
        if layers > 16:
            raise ValueError(f"layers={layers}: TIM levels double the dilation; use at most 16")
        self.forward_in = nn.Conv1d(in_features, channels, 1)
        self.backward_in = nn.Conv1d(in_features, channels, 1)
        dilations = [2**i for i in range(layers)]
        self.forward_blocks = nn.ModuleList(
            TemporalAwareBlock(channels, kernel_size, d, dropout) for d in dilations
        )
        self.backward_blocks = nn.ModuleList(
            TemporalAwareBlock(channels, kernel_size, d, dropout) for d in dilations
        )
        self.level_weights = nn.Parameter(torch.full((layers,), 1.0 / layers))
        self.out_features = channels

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = None
        if lengths is not None:
            mask = sequence_mask(lengths, x.shape[1], x.device).unsqueeze(1).to(x.dtype)
        fwd = self.forward_in(x.transpose(1, 2))
        bwd = self.backward_in(reverse_valid(x, lengths).transpose(1, 2))
        fused_fwd = torch.zeros_like(fwd)
        fused_bwd = torch.zeros_like(bwd)
        for weight, f_block, b_block in zip(
            self.level_weights, self.forward_blocks, self.backward_blocks, strict=True
        ):
            fwd, bwd = f_block(fwd, mask), b_block(bwd, mask)
            fused_fwd = fused_fwd + weight * fwd
            fused_bwd = fused_bwd + weight * bwd
        # the backward stream back in forward time (reversal is linear: once, after the sum)
        fused = fused_fwd.transpose(1, 2) + reverse_valid(fused_bwd.transpose(1, 2), lengths)
        return fused if mask is None else fused * mask.transpose(1, 2)
