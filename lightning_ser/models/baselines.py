"""Baseline backbones of the paper's ablation (Table I): FC-x, CNN-x, RNN-x, LSTM-x, GRU-x.

Also holds the building blocks shared with :mod:`lightning_ser.models.resnet`
(validity masks, a padding-aware BatchNorm, Conv1d/Linear + BN + LeakyReLU layers).

Layer counting
--------------
``x`` (``layers``) counts every weight layer of the whole classifier, as in Table I:
the backbone's weight layers + the embedding FC + the softmax output layer. The
softmax head lives in the LightningModule, the embedding FC in
:class:`~lightning_ser.models.embedding_net.EmbeddingNet`, so a backbone built for
``layers=x`` has ``x - 2`` weight layers (Conv1d / Linear / recurrent layers; BatchNorm
is not counted). ``layers`` must lie in ``[2, 64]``; FC-2 and CNN-2 have an empty
(identity) backbone, the recurrent families need ``layers >= 3``.

Conventions
-----------
Every backbone maps features ``x`` [B, T, F] and optional ``lengths`` [B] (valid
frames per row, rows right-padded) to frame-level features ``h`` [B, T, C], with
``C == backbone.out_features``. Padded frames never influence valid ones: the conv
and FC families zero the padded positions after every layer (so Conv1d's own zero
padding sees exactly what a lone utterance would), and their BatchNorm takes its
batch statistics over valid frames only; the recurrent families pack the sequences.
``lengths=None`` means every frame is valid; that path has no data-dependent Python
control flow, so the networks can be traced / exported with a dynamic T axis.
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
        m = mask.to(x.dtype)
        n = m.sum() * 1.0
        count = n.clamp(min=1.0)
        mean = (x * m).sum(dim=(0, 2)) / count
        var = (((x - mean[None, :, None]) ** 2) * m).sum(dim=(0, 2)) / count
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
        y = (x - mean[None, :, None]) * torch.rsqrt(var[None, :, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None] + self.bias[None, :, None]
        return y


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


class FCBackbone(nn.Module):
    """FC-x: ``x - 2`` frame-wise Linear + BN + LeakyReLU layers (each frame independently)."""

    def __init__(
        self,
        layers: int,
        in_features: int = 39,
        channels: int = 128,
        negative_slope: float = 0.01,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        n_layers = check_layers(layers)
        check_positive("in_features", in_features)
        check_positive("channels", channels)
        check_dropout(dropout)
        self.layers = nn.ModuleList(
            LinearBNAct(in_features if i == 0 else channels, channels, negative_slope)
            for i in range(n_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.out_features = channels if n_layers > 0 else in_features

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        mask = None
        if lengths is not None:
            mask = sequence_mask(lengths, x.shape[1], x.device).unsqueeze(-1).to(x.dtype)
            x = x * mask
        h = x
        for layer in self.layers:
            h = self.dropout(layer(h, mask))
        return h


class CNNBackbone(nn.Module):
    """CNN-x: ``x - 2`` plain Conv1d + BN + LeakyReLU layers (stride 1, no skips)."""

    def __init__(
        self,
        layers: int,
        in_features: int = 39,
        channels: int = 128,
        kernel_size: int = 3,
        negative_slope: float = 0.01,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        n_layers = check_layers(layers)
        check_positive("in_features", in_features)
        check_positive("channels", channels)
        check_kernel_size(kernel_size)
        check_dropout(dropout)
        self.layers = nn.ModuleList(
            ConvBNAct(in_features if i == 0 else channels, channels, kernel_size, negative_slope)
            for i in range(n_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.out_features = channels if n_layers > 0 else in_features

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h = x.transpose(1, 2)  # [B, F, T]
        mask = None
        if lengths is not None:
            mask = sequence_mask(lengths, x.shape[1], x.device).unsqueeze(1).to(x.dtype)
            h = h * mask
        for layer in self.layers:
            h = self.dropout(layer(h, mask))
        return h.transpose(1, 2)


_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentBackbone(nn.Module):
    """RNN-x / LSTM-x / GRU-x: one ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with ``x - 2`` layers.

    Hidden size ``channels``, batch first, dropout between layers; ``bidirectional``
    doubles ``out_features``. With ``lengths`` the batch is packed
    (``enforce_sorted=False``) and padded back to T with zeros.
    """

    def __init__(
        self,
        cell: str,
        layers: int,
        in_features: int = 39,
        channels: int = 128,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        if cell not in _RNN_CLASSES:
            raise ValueError(f"cell must be one of {tuple(_RNN_CLASSES)}, got {cell!r}")
        n_layers = check_layers(layers)
        if n_layers < 1:
            raise ValueError(
                f"layers={layers} leaves no recurrent layer for {cell}: layers must be >= 3"
            )
        check_positive("in_features", in_features)
        check_positive("channels", channels)
        check_dropout(dropout)
        self.cell = cell
        self.rnn = _RNN_CLASSES[cell](
            input_size=in_features,
            hidden_size=channels,
            num_layers=n_layers,
            batch_first=True,
            dropout=dropout if n_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.out_features = channels * (2 if bidirectional else 1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is None:
            return self.rnn(x)[0]
        max_len = x.shape[1]
        packed = nn.utils.rnn.pack_padded_sequence(
            x,
            lengths.detach().cpu().clamp(min=1, max=max_len),
            batch_first=True,
            enforce_sorted=False,
        )
        out, _ = self.rnn(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=max_len)
        # rows with length 0 were run on one frame for packing; zero them like the padding
        mask = sequence_mask(lengths, max_len, x.device).unsqueeze(-1).to(h.dtype)
        return h * mask
