"""Stage 2's metric learning: triplet loss on cosine similarity with a configurable miner."""

from __future__ import annotations

from typing import Literal

import torch
from pytorch_metric_learning import losses, miners
from pytorch_metric_learning.distances import CosineSimilarity

MinerName = Literal["semihard", "hard", "all", "batch_hard", "multi_similarity"]
MINERS: tuple[str, ...] = ("semihard", "hard", "all", "batch_hard", "multi_similarity")


def build_miner(name: MinerName, margin: float) -> miners.BaseMiner:
    """A pytorch-metric-learning miner on cosine similarity (semi-hard triplets by default)."""
    distance = CosineSimilarity()
    if name in ("semihard", "hard", "all"):
        return miners.TripletMarginMiner(margin, type_of_triplets=name, distance=distance)
    if name == "batch_hard":
        return miners.BatchHardMiner(distance=distance)
    if name == "multi_similarity":
        return miners.MultiSimilarityMiner(epsilon=0.1, distance=distance)
    raise ValueError(f"model.miner: unknown miner {name!r}; choose one of {MINERS}")


class TripletObjective(torch.nn.Module):
    """Mined triplet margin loss on cosine similarity, always computed in float32.

    The paper's F(e1, e2, e3) = max(d(e1, e2) - d(e3, e2) + margin, 0) with d from cosine similarity
    (Eq. 2-3); pytorch-metric-learning's TripletMarginLoss with CosineSimilarity is exactly that.
    """

    def __init__(self, margin: float = 0.2, miner: MinerName = "semihard") -> None:
        super().__init__()
        self.miner = build_miner(miner, margin)
        self.loss = losses.TripletMarginLoss(margin=margin, distance=CosineSimilarity())

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        device_type = embeddings.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            emb = torch.nn.functional.normalize(embeddings.float(), dim=-1)
            return self.loss(emb, labels, self.miner(emb, labels))
