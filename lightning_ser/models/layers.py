"""Layers shared by every backbone: validity masks, a padding-aware BatchNorm, Conv1d / Linear +
BN + LeakyReLU, and the argument checks that give one clear message per bad setting.

Padded frames never influence valid ones: layers zero the padded positions after they run (so a
following Conv1d's zero padding sees exactly what a lone utterance would) and BatchNorm takes its
batch statistics over valid frames only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

MIN_LAYERS = 2
MAX_LAYERS = 64


def check_layers(layers: int) -> int:
    """Validate the Table I depth ``x`` and return the backbone's weight-layer count ``x - 2``."""
    if isinstance(layers, bool) or not isinstance(layers, int):
        raise ValueError(f"layers must be an int in [{MIN_LAYERS}, {MAX_LAYERS}], got {layers!r}")
    if not MIN_LAYERS <= layers <= MAX_LAYERS:
        raise ValueError(
            f"layers={layers} is out of range: layers (x in Table I, counting the backbone, "
            f"the embedding FC and the softmax layer) must lie in [{MIN_LAYERS}, {MAX_LAYERS}]"
        )
    return layers - 2


def check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_kernel_size(kernel_size: int) -> None:
    check_positive("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd (padding kernel_size // 2 keeps T), got {kernel_size}"
        )


def check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")


def sequence_mask(lengths: Tensor, max_len: int, device: torch.device | None = None) -> Tensor:
    """Boolean validity mask [B, max_len]: ``mask[b, t] = t < lengths[b]``."""
    device = lengths.device if device is None else device
    return torch.arange(max_len, device=device)[None, :] < lengths.to(device)[:, None]


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over [B, C, T] whose batch statistics ignore padded frames.

    With ``mask=None``, or when running statistics are used (eval mode), this is exactly
    ``nn.BatchNorm1d`` (same parameters and state dict, exportable). In training mode with
    a mask [B, 1, T], mean and variance are taken over the valid frames only and the
    running statistics are updated from them, so the amount of padding in a batch does
    not change the result on the valid frames.
    """

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        use_batch_stats = self.training or self.running_mean is None
        if mask is None or not use_batch_stats:
            return super().forward(x)
        # statistics in float32 even under mixed precision (x * x overflows float16, and the
        # running buffers are float32): autocast would run the contractions in half precision
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float()
            m = mask.float().expand(x.shape[0], 1, x.shape[2]).squeeze(1)  # [B, T]
            n = m.sum()
            count = n.clamp(min=1.0)
            # masked sums as contractions over (batch, time): two passes over x instead of five
            mean = torch.einsum("bct,bt->c", xf, m) / count
            var = (torch.einsum("bct,bt->c", xf * xf, m) / count - mean * mean).clamp(min=0.0)
        if self.training and self.track_running_stats:
            assert self.num_batches_tracked is not None
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm1d
                factor = 1.0 / float(self.num_batches_tracked)
            else:
                factor = self.momentum
            with torch.no_grad():
                unbiased = var * n / (n - 1.0).clamp(min=1.0)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(unbiased.detach(), factor)
        # normalisation and affine folded into one scale and shift per channel: one fused pass
        scale = torch.rsqrt(var + self.eps)
        shift = -mean * scale
        if self.affine:
            scale, shift = scale * self.weight, shift * self.weight + self.bias
        with torch.autocast(device_type=x.device.type, enabled=False):
            return torch.addcmul(shift[None, :, None], xf, scale[None, :, None]).to(x.dtype)


class ConvBNAct(nn.Module):
    """Conv1d(stride 1, padding k // 2) + BatchNorm1d + LeakyReLU on [B, C, T].

    ``forward(h, mask, residual)``: if ``residual`` is given it is added after the
    BatchNorm and before the activation (``act(bn(conv(h)) + residual)``, the last conv
    of a residual block). The output is multiplied by ``mask`` [B, 1, T] when given.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, negative_slope: float
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2
        )
        self.bn = MaskedBatchNorm1d(out_channels)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(
        self, h: Tensor, mask: Tensor | None = None, residual: Tensor | None = None
    ) -> Tensor:
        h = self.bn(self.conv(h), mask)
        if residual is not None:
            h = h + residual
        h = self.act(h)
        if mask is not None:
            h = h * mask
        return h


class LinearBNAct(nn.Module):
    """Frame-wise Linear + BatchNorm (over features) + LeakyReLU on [B, T, C]."""

    def __init__(self, in_features: int, out_features: int, negative_slope: float) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bn = MaskedBatchNorm1d(out_features)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        """``h`` [B, T, C_in], ``mask`` [B, T, 1] or None -> [B, T, C_out]."""
        h = self.linear(h)
        bn_mask = None if mask is None else mask.transpose(1, 2)
        h = self.bn(h.transpose(1, 2), bn_mask).transpose(1, 2)
        h = self.act(h)
        if mask is not None:
            h = h * mask
        return h
