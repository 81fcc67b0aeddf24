"""Backbones (Table I of Kumar et al., TIM), pooling and the embedding network; plain torch."""

from lightning_ser.models.embedding_net import (
    BACKBONES,
    TABLE_I_BACKBONES,
    EmbeddingNet,
    build_backbone,
)
from lightning_ser.models.pooling import POOLINGS, masked_mean

__all__ = [
    "BACKBONES",
    "TABLE_I_BACKBONES",
    "POOLINGS",
    "EmbeddingNet",
    "build_backbone",
    "masked_mean",
]
