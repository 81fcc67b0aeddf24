"""Utterance-level emotion embedding network (Kumar et al., Sec. III.B, Fig. 3).

``backbone`` (frame-level features [B, T, C]) -> temporal pooling over the valid frames
(``mean``: the paper's Eq. 1, ``h = 1/T sum_t x(t)`` with T the number of valid frames; or
``attentive_stats``) -> ``Linear(pooled, embedding_dim)``. ``forward`` returns the
un-normalised embedding that the softmax head (in ``embedder.Embedder``) consumes; ``embed``
returns the L2-normalised emotion embedding.

The depth ``layers`` is the Table I ``x``: backbone (``x - 2`` weight layers) + this
module's embedding FC + the softmax layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_ser.models.baselines import CNNBackbone, FCBackbone, RecurrentBackbone
from lightning_ser.models.layers import check_positive
from lightning_ser.models.pooling import PoolingName, build_pooling
from lightning_ser.models.resnet import ResNetBackbone
from lightning_ser.models.tim import TIMBackbone

#: The families of the paper's Table I (ResNet is the paper's own), counted by its layer rule.
TABLE_I_BACKBONES = ("fc", "cnn", "rnn", "lstm", "gru", "resnet")
#: Every backbone: Table I's and the TIM-Net-style temporal-aware network.
BACKBONES = (*TABLE_I_BACKBONES, "tim")


def build_backbone(
    name: str,
    layers: int,
    in_features: int = 39,
    channels: int = 128,
    kernel_size: int = 3,
    blocks: int = 2,
    negative_slope: float = 0.01,
    dropout: float = 0.0,
    bidirectional: bool = False,
) -> nn.Module:
    """Build the frame-level backbone ``name``-``layers`` of Table I (case-insensitive name).

    The returned module maps ``(x [B, T, F], lengths [B] | None) -> [B, T, out_features]``.
    Arguments a family does not use are ignored: ``kernel_size`` (fc, recurrent),
    ``blocks`` (all but resnet), ``negative_slope`` (recurrent, tim), ``bidirectional``
    (all but rnn/lstm/gru). For ``tim``, ``layers`` is the number of temporal-aware levels.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    if key == "resnet":
        return ResNetBackbone(
            layers, in_features, channels, kernel_size, blocks, negative_slope, dropout
        )
    if key == "tim":
        return TIMBackbone(layers, in_features, channels, kernel_size, dropout)
    if key == "cnn":
        return CNNBackbone(layers, in_features, channels, kernel_size, negative_slope, dropout)
    if key == "fc":
        return FCBackbone(layers, in_features, channels, negative_slope, dropout)
    return RecurrentBackbone(key, layers, in_features, channels, dropout, bidirectional)


class EmbeddingNet(nn.Module):
    """Backbone -> temporal pooling over valid frames -> Linear(pooled, embedding_dim).

    Example::

        net = EmbeddingNet("resnet", layers=11)          # the paper's ResNet-11
        z = net(x, lengths)                              # [B, 128], feeds the softmax head
        e = net.embed(x, lengths)                        # [B, 128], unit L2 norm
    """

    def __init__(
        self,
        backbone: str = "resnet",
        layers: int = 11,
        in_features: int = 39,
        channels: int = 128,
        kernel_size: int = 3,
        blocks: int = 2,
        negative_slope: float = 0.01,
        dropout: float = 0.0,
        bidirectional: bool = False,
        embedding_dim: int = 128,
        pooling: PoolingName = "mean",
    ) -> None:
        super().__init__()
        check_positive("embedding_dim", embedding_dim)
        self.backbone = build_backbone(
            backbone,
            layers,
            in_features=in_features,
            channels=channels,
            kernel_size=kernel_size,
            blocks=blocks,
            negative_slope=negative_slope,
            dropout=dropout,
            bidirectional=bidirectional,
        )
        self.backbone_name = backbone.lower()
        self.layers = layers
        self.in_features = in_features
        self.embedding_dim = embedding_dim
        self.pooling = build_pooling(pooling, self.backbone.out_features)
        self.fc = nn.Linear(self.pooling.out_features, embedding_dim)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x`` [B, T, in_features], ``lengths`` [B] or None -> [B, embedding_dim].

        The embedding is not normalised; see :meth:`embed`.
        """
        if not torch.jit.is_tracing() and (x.dim() != 3 or x.shape[-1] != self.in_features):
            raise ValueError(
                f"expected features of shape [B, T, {self.in_features}], got {tuple(x.shape)}"
            )
        h = self.backbone(x, lengths)
        return self.fc(self.pooling(h, lengths))

    def embed(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """L2-normalised emotion embedding [B, embedding_dim]."""
        return F.normalize(self.forward(x, lengths), dim=-1)
