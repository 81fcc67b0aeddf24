"""Baseline backbones of the paper's ablation (Table I): FC-x, CNN-x, RNN-x, LSTM-x, GRU-x.

The layers they share with the other backbones live in :mod:`lightning_ser.models.layers`.

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

from collections.abc import Callable

from torch import Tensor, nn

from lightning_ser.models.layers import (
    ConvBNAct,
    LinearBNAct,
    check_dropout,
    check_kernel_size,
    check_layers,
    check_positive,
    sequence_mask,
)


class LayerStack(nn.Module):
    """``x - 2`` layers of one kind, each followed by dropout, padded frames zeroed throughout.

    FC-x and CNN-x differ only in the layer (``make_layer(in, out)``) and in the layout it takes:
    frames-last ``[B, T, C]`` for frame-wise Linear layers, channels-first ``[B, C, T]`` for
    Conv1d. ``forward(x [B, T, F], lengths [B] | None) -> [B, T, C]``.
    """

    channels_first = False

    def __init__(
        self,
        layers: int,
        in_features: int,
        channels: int,
        make_layer: Callable[[int, int], nn.Module],
        dropout: float,
    ) -> None:
        super().__init__()
        n_layers = check_layers(layers)
        check_positive("in_features", in_features)
        check_positive("channels", channels)
        check_dropout(dropout)
        self.layers = nn.ModuleList(
            make_layer(in_features if i == 0 else channels, channels) for i in range(n_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.out_features = channels if n_layers > 0 else in_features

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h = x.transpose(1, 2) if self.channels_first else x
        mask = None
        if lengths is not None:
            mask = sequence_mask(lengths, x.shape[1], x.device)
            mask = mask.unsqueeze(1 if self.channels_first else -1).to(x.dtype)
            h = h * mask
        for layer in self.layers:
            h = self.dropout(layer(h, mask))
        return h.transpose(1, 2) if self.channels_first else h


class FCBackbone(LayerStack):
    """FC-x: ``x - 2`` frame-wise Linear + BN + LeakyReLU layers (each frame independently)."""

    def __init__(
        self,
        layers: int,
        in_features: int = 39,
        channels: int = 128,
        negative_slope: float = 0.01,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            layers,
            in_features,
            channels,
            lambda n_in, n_out: LinearBNAct(n_in, n_out, negative_slope),
            dropout,
        )


class CNNBackbone(LayerStack):
    """CNN-x: ``x - 2`` plain Conv1d + BN + LeakyReLU layers (stride 1, no skips)."""

    channels_first = True

    def __init__(
        self,
        layers: int,
        in_features: int = 39,
        channels: int = 128,
        kernel_size: int = 3,
        negative_slope: float = 0.01,
        dropout: float = 0.0,
    ) -> None:
        check_kernel_size(kernel_size)
        super().__init__(
            layers,
            in_features,
            channels,
            lambda n_in, n_out: ConvBNAct(n_in, n_out, kernel_size, negative_slope),
            dropout,
        )


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
