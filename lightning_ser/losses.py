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


#: Miners whose triplets `ClassWiseTripletMarginLoss` scores without listing them.
MARGIN_MINERS = ("semihard", "hard", "all")


def build_miner(name: MinerName, margin: float) -> miners.BaseMiner:
    """A pytorch-metric-learning miner on cosine similarity (semi-hard triplets by default)."""
    distance = CosineSimilarity()
    if name in MARGIN_MINERS:
        return miners.TripletMarginMiner(margin, type_of_triplets=name, distance=distance)
    if name == "batch_hard":
        return miners.BatchHardMiner(distance=distance)
    if name == "multi_similarity":
        return miners.MultiSimilarityMiner(epsilon=0.1, distance=distance)
    raise ValueError(f"model.miner: unknown miner {name!r}; choose one of {MINERS}")


class ClassWiseTripletMarginLoss(torch.nn.Module):
    """pytorch-metric-learning's `TripletMarginLoss(margin, distance=CosineSimilarity())` over the
    triplets its `TripletMarginMiner(margin, type_of_triplets)` returns, averaged over the
    triplets whose loss is above zero (pml's default reducer), without listing the triplets.

    Written here because pml lists every (anchor, positive, negative) index of the batch before
    mining: N^3 entries, 729 million for the paper's batch of 900, seconds and gigabytes per step
    on a CPU. The loss of a triplet is s(a, n) - s(a, p) + margin on cosine similarities s, and
    each miner keeps the negatives whose s(a, n) lies in one interval around s(a, p) (semihard:
    s(a, p) - margin < s(a, n) < s(a, p); hard: s(a, n) >= s(a, p); all: s(a, n) > s(a, p) -
    margin). So with each anchor's negative similarities sorted, the number of triplets of an
    (anchor, positive) pair and the sum of their s(a, n) are two binary searches into a running
    sum: O(N^2 log N) in all, the same loss and gradients as pml's (the oracle test compares
    them; a similarity within float rounding of an interval's end may fall on the other side).
    """

    def __init__(self, margin: float = 0.2, type_of_triplets: str = "semihard") -> None:
        super().__init__()
        if type_of_triplets not in MARGIN_MINERS:
            raise ValueError(f"type_of_triplets must be one of {MARGIN_MINERS}")
        self.margin = margin
        self.type_of_triplets = type_of_triplets
        self.similarity = CosineSimilarity()

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        sim = self.similarity(embeddings, embeddings)
        total = embeddings.sum().double() * 0.0  # pml's zero loss when no triplet counts
        count = torch.zeros((), dtype=torch.long, device=sim.device)  # no host sync per class
        for label in labels.unique():
            own = labels == label
            anchors = own.nonzero().squeeze(1)
            if len(anchors) < 2 or bool(own.all()):
                continue
            rows = sim[anchors]
            negatives = rows[:, ~own].sort(dim=1).values  # [A, N]: each anchor's, ascending
            running = torch.nn.functional.pad(negatives.double().cumsum(dim=1), (1, 0))
            positive = rows[:, anchors]  # [A, A]; the diagonal (a, a) is no pair
            above_low = torch.searchsorted(negatives, positive - self.margin, right=True)
            below_positive = torch.searchsorted(negatives, positive, right=False)
            first, end = {
                "semihard": (above_low, below_positive),
                "hard": (  # s(a, n) >= s(a, p), and a loss above zero for margins <= 0
                    torch.maximum(below_positive, above_low),
                    torch.full_like(below_positive, negatives.shape[1]),
                ),
                "all": (above_low, torch.full_like(above_low, negatives.shape[1])),
            }[self.type_of_triplets]
            pairs = ~torch.eye(len(anchors), dtype=torch.bool, device=sim.device)
            n = torch.where(pairs, (end - first).clamp(min=0), 0)
            summed = running.gather(1, end) - running.gather(1, first.clamp(max=end))
            violation = summed - n * (positive.double() - self.margin)
            total = total + torch.where(pairs, violation, 0.0).sum()
            count = count + n.sum()
        return torch.where(count > 0, total / count.clamp(min=1), total).float()


class TripletObjective(torch.nn.Module):
    """Mined triplet margin loss on cosine similarity, always computed in float32.

    The paper's F(e1, e2, e3) = max(d(e1, e2) - d(e3, e2) + margin, 0) with d from cosine similarity
    (Eq. 2-3); pytorch-metric-learning's TripletMarginLoss with CosineSimilarity is exactly that.
    Its margin miners (semihard, hard, all) are scored class by class
    (`ClassWiseTripletMarginLoss`, the same loss without listing N^3 triplets); the others run
    through pml's miner and loss.
    """

    #: No class centres: `model.centre_init` has nothing to place.
    has_centres = False

    def __init__(self, margin: float = 0.2, miner: MinerName = "semihard") -> None:
        super().__init__()
        if miner in MARGIN_MINERS:
            self.class_wise: ClassWiseTripletMarginLoss | None = ClassWiseTripletMarginLoss(
                margin, miner
            )
        else:
            self.class_wise = None
            self.miner = build_miner(miner, margin)
            self.loss = losses.TripletMarginLoss(margin=margin, distance=CosineSimilarity())

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        device_type = embeddings.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            emb = torch.nn.functional.normalize(embeddings.float(), dim=-1)
            if self.class_wise is not None:
                return self.class_wise(emb, labels)
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
