"""Stage 2's metric learning: the paper's triplet loss on cosine similarity (with a configurable
miner), or an additive angular margin loss (ArcFace / sub-center ArcFace) on the same angles the
least-angle classifier uses. All from pytorch-metric-learning, always computed in float32."""

from __future__ import annotations

from typing import Literal, get_args

import torch
from pytorch_metric_learning import losses, miners
from pytorch_metric_learning.distances import CosineSimilarity

MinerName = Literal["semihard", "hard", "all", "batch_hard", "multi_similarity"]
MINERS: tuple[str, ...] = get_args(MinerName)
MetricLossName = Literal["triplet", "arcface", "subcenter_arcface"]
METRIC_LOSSES: tuple[str, ...] = get_args(MetricLossName)


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

    #: No class centres: `model.centre_init` has nothing to place.
    has_centres = False

    def __init__(self, margin: float = 0.2, miner: MinerName = "semihard") -> None:
        super().__init__()
        self.miner = build_miner(miner, margin)
        self.loss = losses.TripletMarginLoss(margin=margin, distance=CosineSimilarity())

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        device_type = embeddings.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            emb = torch.nn.functional.normalize(embeddings.float(), dim=-1)
            return self.loss(emb, labels, self.miner(emb, labels))


class AngularMarginObjective(torch.nn.Module):
    """ArcFace (or sub-center ArcFace): softmax over scaled cosines to learned class centres, with
    an additive angular `margin_deg` on the true class (pytorch-metric-learning).

    It pulls each embedding to within an angle of its class centre and pushes the others beyond
    it, which is what the least-angle classifier measures. The centres are parameters of this
    loss (trained with the network); classification still uses the class embeddings (the mean
    training embeddings), as in the paper.
    """

    #: Learned class centres, which `set_centres` can place.
    has_centres = True

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        margin_deg: float = 28.6,
        scale: float = 30.0,
        sub_centers: int = 1,
    ) -> None:
        super().__init__()
        if sub_centers > 1:
            self.loss = losses.SubCenterArcFaceLoss(
                num_classes=num_classes,
                embedding_size=embedding_dim,
                margin=margin_deg,
                scale=scale,
                sub_centers=sub_centers,
            )
        else:
            self.loss = losses.ArcFaceLoss(
                num_classes=num_classes,
                embedding_size=embedding_dim,
                margin=margin_deg,
                scale=scale,
            )

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return self.loss(torch.nn.functional.normalize(embeddings.float(), dim=-1), labels)

    @torch.no_grad()
    def set_centres(self, centres: torch.Tensor) -> None:
        """Place each class's (first) centre on `centres` [C, D], e.g. the class embeddings, so
        the loss starts from the geometry the network already has instead of random centres,
        whose first gradients pull every embedding towards an arbitrary direction. Further
        sub-centres keep their random start."""
        weight = self.loss.W  # [D, C * sub_centres], class-major (pml's layout)
        num_classes = centres.shape[0]
        sub_centres = weight.shape[1] // num_classes
        first = torch.arange(num_classes, device=weight.device) * sub_centres
        weight[:, first] = centres.to(weight).T


def build_metric_loss(
    name: MetricLossName,
    num_classes: int,
    embedding_dim: int,
    margin: float = 0.2,
    miner: MinerName = "semihard",
    angular_margin_deg: float = 28.6,
    angular_scale: float = 30.0,
) -> torch.nn.Module:
    """Stage 2's metric loss: triplet (the paper), arcface or subcenter_arcface (3 centres)."""
    if name == "triplet":
        return TripletObjective(margin, miner)
    if name in ("arcface", "subcenter_arcface"):
        centres = 3 if name == "subcenter_arcface" else 1
        return AngularMarginObjective(
            num_classes, embedding_dim, angular_margin_deg, angular_scale, centres
        )
    raise ValueError(f"model.metric_loss: unknown loss {name!r}; choose one of {METRIC_LOSSES}")
