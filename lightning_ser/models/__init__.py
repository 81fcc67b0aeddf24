"""Backbones (Table I of Kumar et al.) and the emotion embedding network; plain ``torch.nn``."""

from lightning_ser.models.embedding_net import (
    BACKBONES,
    EmbeddingNet,
    build_backbone,
    masked_mean,
)

__all__ = ["BACKBONES", "EmbeddingNet", "build_backbone", "masked_mean"]
