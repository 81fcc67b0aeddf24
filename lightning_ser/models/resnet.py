"""The paper's ResNet-x backbone (Kumar et al., Sec. IV.A.3, Fig. 3, Table I).

Layer counting
--------------
``x`` (``layers``) counts every weight layer of the whole classifier, as in Table I:
the backbone's layers + the embedding FC + the softmax output layer (the softmax head
lives in the LightningModule). The ResNet-x backbone therefore has ``x - 2`` Conv1d
layers: a stem conv (F -> C) followed by ``x - 3`` convs (C -> C) grouped into
``blocks`` residual blocks. ResNet-11 with the default ``blocks=2`` is the paper's
best model, "ResNet with 11 layers (and two residual blocks)": stem + 2 blocks of 4
convs + embedding FC + softmax = 1 + 8 + 1 + 1 = 11. When ``x - 3`` is not divisible
by ``blocks`` the first blocks get one more conv (9 convs / 2 blocks = 5 + 4).

Every conv is ``Conv1d(kernel k, stride 1, padding k // 2) + BatchNorm1d + LeakyReLU``;
the last conv of a block applies its LeakyReLU after adding the identity skip:
``out = act(bn(conv(...)) + block_input)``. Padded frames are zeroed after every layer
and after every residual add (see :mod:`lightning_ser.models.baselines`), so a padded
batch computes exactly what each utterance computes alone.
"""

from __future__ import annotations

from torch import Tensor, nn

from lightning_ser.models.layers import (
    ConvBNAct,
    check_dropout,
    check_kernel_size,
    check_layers,
    check_positive,
    sequence_mask,
)


def split_convs(n_convs: int, blocks: int) -> list[int]:
    """Spread ``n_convs`` convs over ``blocks`` blocks, the first blocks taking the remainder."""
    check_positive("blocks", blocks)
    if blocks > n_convs:
        raise ValueError(
            f"blocks={blocks} > {n_convs} convs available for residual blocks: ResNet-x has "
            f"x - 3 block convs and every block needs at least one, so use layers >= "
            f"{blocks + 3} or fewer blocks"
        )
    base, extra = divmod(n_convs, blocks)
    return [base + (1 if i < extra else 0) for i in range(blocks)]


class ResidualBlock(nn.Module):
    """``n_convs`` Conv1d + BN + LeakyReLU (C -> C) with an identity skip around them."""

    def __init__(
        self, channels: int, n_convs: int, kernel_size: int, negative_slope: float, dropout: float
    ) -> None:
        super().__init__()
        check_positive("n_convs", n_convs)
        self.convs = nn.ModuleList(
            ConvBNAct(channels, channels, kernel_size, negative_slope) for _ in range(n_convs)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        """``h`` [B, C, T] (zero at padded frames), ``mask`` [B, 1, T] or None."""
        block_input = h
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            h = conv(h, mask, residual=block_input if i == last else None)
        return self.dropout(h)


class ResNetBackbone(nn.Module):
    """ResNet-x: stem Conv1d(F -> C) + BN + LeakyReLU, then ``blocks`` residual blocks.

    ``forward(x [B, T, F], lengths [B] | None) -> [B, T, C]``; ``out_features == channels``.
    """

    def __init__(
        self,
        layers: int = 11,
        in_features: int = 39,
        channels: int = 128,
        kernel_size: int = 3,
        blocks: int = 2,
        negative_slope: float = 0.01,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        n_layers = check_layers(layers)
        check_positive("in_features", in_features)
        check_positive("channels", channels)
        check_kernel_size(kernel_size)
        check_dropout(dropout)
        check_positive("blocks", blocks)
        if n_layers - 1 < blocks:
            raise ValueError(
                f"layers={layers} is too shallow for ResNet with blocks={blocks}: it leaves "
                f"{max(n_layers - 1, 0)} convs after the stem and each block needs at least "
                f"one, so use layers >= {blocks + 3} or fewer blocks"
            )
        self.block_sizes = split_convs(n_layers - 1, blocks)
        self.stem = ConvBNAct(in_features, channels, kernel_size, negative_slope)
        self.blocks = nn.ModuleList(
            ResidualBlock(channels, n, kernel_size, negative_slope, dropout)
            for n in self.block_sizes
        )
        self.out_features = channels

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        h = x.transpose(1, 2)  # [B, F, T]
        mask = None
        if lengths is not None:
            mask = sequence_mask(lengths, x.shape[1], x.device).unsqueeze(1).to(x.dtype)
            h = h * mask
        h = self.stem(h, mask)
        for block in self.blocks:
            h = block(h, mask)
        return h.transpose(1, 2)
