"""Utterance-level emotion embedding network (Kumar et al., Sec. III.B, Fig. 3).

``backbone`` (frame-level features [B, T, C]) -> masked temporal average pooling over
the valid frames (Eq. 1, ``h = 1/T sum_t x(t)`` with T the number of valid frames) ->
``Linear(C, embedding_dim)``. ``forward`` returns the un-normalised embedding that the
softmax head (in the LightningModule) consumes; ``embed`` returns the L2-normalised
emotion embedding used for the cosine-similarity triplet loss and for inference.

The depth ``layers`` is the Table I ``x``: backbone (``x - 2`` weight layers) + this
module's embedding FC + the softmax layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_ser.models.baselines import (
    CNNBackbone,
    FCBackbone,
    RecurrentBackbone,
    check_positive,
    sequence_mask,
)
from lightning_ser.models.resnet import ResNetBackbone

BACKBONES = ("fc", "cnn", "rnn", "lstm", "gru", "resnet")


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
    ``blocks`` (all but resnet), ``negative_slope`` (recurrent), ``bidirectional``
    (all but rnn/lstm/gru).
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known backbones: {', '.join(BACKBONES)}")
    if key == "resnet":
        return ResNetBackbone(
            layers, in_features, channels, kernel_size, blocks, negative_slope, dropout
        )
    if key == "cnn":
        return CNNBackbone(layers, in_features, channels, kernel_size, negative_slope, dropout)
    if key == "fc":
        return FCBackbone(layers, in_features, channels, negative_slope, dropout)
    return RecurrentBackbone(key, layers, in_features, channels, dropout, bidirectional)


def masked_mean(h: Tensor, lengths: Tensor | None = None) -> Tensor:
    """Temporal average of ``h`` [B, T, C] over the valid frames (Eq. 1) -> [B, C].

    ``lengths=None`` averages all T frames. Rows with ``lengths == 0`` give zeros;
    lengths beyond T count as T.
    """
    if lengths is None:
        return h.mean(dim=1)
    mask = sequence_mask(lengths, h.shape[1], h.device).unsqueeze(-1).to(h.dtype)
    return (h * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class EmbeddingNet(nn.Module):
    """Backbone -> masked temporal mean -> Linear(C, embedding_dim).

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
        self.fc = nn.Linear(self.backbone.out_features, embedding_dim)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x`` [B, T, in_features], ``lengths`` [B] or None -> [B, embedding_dim].

        The embedding is not normalised; see :meth:`embed`.
        """
        if not torch.jit.is_tracing() and (x.dim() != 3 or x.shape[-1] != self.in_features):
            raise ValueError(
                f"expected features of shape [B, T, {self.in_features}], got {tuple(x.shape)}"
            )
        h = self.backbone(x, lengths)
        return self.fc(masked_mean(h, lengths))

    def embed(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """L2-normalised emotion embedding [B, embedding_dim]."""
        return F.normalize(self.forward(x, lengths), dim=-1)
