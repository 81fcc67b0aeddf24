"""The LightningModule's pieces: triplet objective, stage schedule, normalisation, evaluation."""

from __future__ import annotations

import math

import pytest
import torch
from pytorch_metric_learning import losses
from pytorch_metric_learning.distances import CosineSimilarity

from lightning_ser.embeddings import angles_to_classes, class_embeddings
from lightning_ser.losses import (
    MARGIN_MINERS,
    MINERS,
    ClassWiseTripletMarginLoss,
    TripletObjective,
    build_miner,
)
from lightning_ser.module import EmotionEmbeddingModule


def toy_set(n_per_class: int = 24, classes: int = 4, frames: int = 10, seed: int = 0):
    """Frames whose class is a faint offset in a few feature dimensions, buried in noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    x = torch.randn(len(labels), frames, 39, generator=g)
    x[torch.arange(len(labels)), :, labels] += 1.5
    return x, labels


def mean_angles(module: EmotionEmbeddingModule, x, labels) -> tuple[float, float]:
    """(mean angle to own class embedding, mean angle between class embeddings), degrees."""
    module.eval()
    with torch.no_grad():
        emb, _ = module(x)
    centres = class_embeddings(emb, labels, int(labels.max()) + 1)
    own = angles_to_classes(emb, centres)[torch.arange(len(labels)), labels].mean()
    between = angles_to_classes(centres, centres)
    off = between[~torch.eye(len(centres), dtype=torch.bool)].mean()
    return float(own), float(off)


def test_triplet_training_pulls_same_emotion_together() -> None:
    torch.manual_seed(0)
    x, labels = toy_set()
    module = EmotionEmbeddingModule(num_classes=4, channels=16, layers=6, embedding_dim=16)
    objective = TripletObjective(margin=0.2, miner="semihard")
    own_before, between_before = mean_angles(module, x, labels)
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    for _ in range(40):
        module.train()
        emb, _ = module(x)
        loss = objective(emb, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    own_after, between_after = mean_angles(module, x, labels)
    # Before training all utterances point almost the same way (classes ~13 degrees apart); after
    # it, utterances sit close to their own class embedding and classes lie far apart.
    assert between_after > between_before + 45
    assert own_after / between_after < 0.3 * own_before / between_before


@pytest.mark.parametrize("miner", MINERS)
def test_every_miner_gives_a_finite_loss(miner: str) -> None:
    x = torch.nn.functional.normalize(torch.randn(32, 8), dim=-1).requires_grad_()
    labels = torch.arange(4).repeat(8)
    loss = TripletObjective(0.2, miner)(x, labels)
    assert torch.isfinite(loss)
    loss.backward()


@pytest.mark.parametrize("miner", MARGIN_MINERS)
@pytest.mark.parametrize(
    "labels",
    [
        torch.arange(4).repeat(10),  # balanced
        torch.tensor([0] * 20 + [1] * 12 + [2] * 7 + [3]),  # unbalanced, one class of one
        torch.zeros(40, dtype=torch.long),  # one class: no negatives, no triplets
    ],
    ids=["balanced", "unbalanced", "one_class"],
)
def test_class_wise_triplet_loss_is_pml_miner_and_loss(miner: str, labels: torch.Tensor) -> None:
    """Oracle: pml's TripletMarginMiner + TripletMarginLoss on cosine similarity, which list all
    N^3 triplets; the class-wise loss gives the same value and gradients without listing them."""
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(40, 8), dim=-1).requires_grad_()
    oracle = losses.TripletMarginLoss(margin=0.2, distance=CosineSimilarity())
    expected = oracle(emb, labels, build_miner(miner, 0.2)(emb, labels))
    got = ClassWiseTripletMarginLoss(0.2, miner)(emb, labels)
    torch.testing.assert_close(got, expected)
    if expected.requires_grad and expected.item() > 0:
        (want,) = torch.autograd.grad(expected, emb)
        (have,) = torch.autograd.grad(got, emb)
        torch.testing.assert_close(have, want)
    else:
        assert got.item() == 0.0


@pytest.mark.parametrize("miner", MARGIN_MINERS)
@pytest.mark.parametrize("margin", [0.0, -0.1, 1.5])
def test_class_wise_triplet_loss_matches_pml_at_any_margin_with_ties(miner, margin) -> None:
    torch.manual_seed(1)
    emb = torch.nn.functional.normalize(torch.randn(12, 4), dim=-1).repeat(2, 1)  # exact ties
    emb.requires_grad_()
    labels = torch.arange(3).repeat(8)
    oracle = losses.TripletMarginLoss(margin=margin, distance=CosineSimilarity())
    expected = oracle(emb, labels, build_miner(miner, margin)(emb, labels))
    got = ClassWiseTripletMarginLoss(margin, miner)(emb, labels)
    torch.testing.assert_close(got, expected)
    if expected.item() > 0:
        (want,) = torch.autograd.grad(expected, emb)
        (have,) = torch.autograd.grad(got, emb)
        torch.testing.assert_close(have, want)


def test_triplet_objective_scores_margin_miners_class_wise() -> None:
    assert isinstance(TripletObjective(0.2, "semihard").class_wise, ClassWiseTripletMarginLoss)
    assert TripletObjective(0.2, "batch_hard").class_wise is None  # pml's miner and loss


def test_unknown_miner_names_the_setting() -> None:
    with pytest.raises(ValueError, match="model.miner"):
        build_miner("nearest", 0.2)


def test_triplet_loss_is_float32_under_autocast() -> None:
    emb = torch.randn(16, 8, dtype=torch.bfloat16)
    labels = torch.arange(4).repeat(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = TripletObjective()(emb, labels)
    assert loss.dtype == torch.float32


class FakeTrainer:
    """Just enough of a Trainer for the stage logic: current_epoch and should_stop."""

    current_epoch = 0
    should_stop = False
    lr_scheduler_configs: list = []


def stage_module(softmax_epochs: int = 10, triplet_epochs: int = 5) -> EmotionEmbeddingModule:
    module = EmotionEmbeddingModule(
        num_classes=3, channels=8, layers=6, embedding_dim=8,
        softmax_epochs=softmax_epochs, triplet_epochs=triplet_epochs,
    )  # fmt: skip
    module._trainer = FakeTrainer()
    return module


def test_learning_rate_decays_linearly_within_each_stage() -> None:
    module = stage_module(softmax_epochs=10, triplet_epochs=5)
    rates = []
    for epoch in range(10):
        module.trainer.current_epoch = epoch
        rates.append(0.05 * module.lr_factor(module.trainer.current_epoch))
    assert rates[0] == pytest.approx(0.05) and rates[-1] == pytest.approx(0.005)
    assert all(math.isclose(a - b, 0.005) for a, b in zip(rates, rates[1:], strict=False))
    module.end_stage()  # at epoch 9: triplet training starts at epoch 10 with the full rate again
    assert module.stage == "triplet" and module.stage_start_epoch == 10
    module.trainer.current_epoch = 10
    assert 0.05 * module.lr_factor(module.trainer.current_epoch) == pytest.approx(0.05)
    module.trainer.current_epoch = 14
    assert 0.05 * module.lr_factor(module.trainer.current_epoch) == pytest.approx(0.005)
    module.end_stage()
    assert module.trainer.should_stop


def test_triplet_stage_can_start_from_a_lower_rate() -> None:
    module = stage_module(softmax_epochs=2, triplet_epochs=5)
    module.hparams.triplet_lr_scale = 0.2
    module.trainer.current_epoch = 1
    module.end_stage()
    module.trainer.current_epoch = 2
    assert 0.05 * module.lr_factor(module.trainer.current_epoch) == pytest.approx(0.01)
    module.trainer.current_epoch = 6
    assert 0.05 * module.lr_factor(module.trainer.current_epoch) == pytest.approx(0.001)


def test_softmax_only_training_stops_after_stage_one() -> None:
    module = stage_module(softmax_epochs=3, triplet_epochs=0)
    module.end_stage()
    assert module.stage == "softmax" and module.trainer.should_stop


def test_normalisation_keeps_padding_at_zero() -> None:
    module = stage_module()
    module.embedder.feature_mean.fill_(2.0)
    module.embedder.feature_std.fill_(4.0)
    x = torch.full((2, 5, 39), 6.0)
    out = module.normalise(x, torch.tensor([5, 3]))
    assert torch.allclose(out[0], torch.ones(5, 39))
    assert torch.all(out[1, 3:] == 0) and torch.allclose(out[1, :3], torch.ones(3, 39))


def test_padded_batch_gives_each_utterance_alone() -> None:
    torch.manual_seed(0)
    module = stage_module().eval()
    a, b = torch.randn(1, 7, 39), torch.randn(1, 19, 39)
    batch = torch.zeros(2, 19, 39)
    batch[0, :7], batch[1] = a[0], b[0]
    with torch.no_grad():
        emb, logits = module(batch, torch.tensor([7, 19]))
        alone_a, _ = module(a)
        alone_b, _ = module(b)
    assert torch.allclose(emb[0], alone_a[0], atol=1e-5)
    assert torch.allclose(emb[1], alone_b[0], atol=1e-5)


def test_class_names_must_match_num_classes() -> None:
    with pytest.raises(ValueError, match="class_names"):
        EmotionEmbeddingModule(num_classes=3, class_names=["a", "b"])


def test_a_checkpoint_of_other_emotions_is_refused_even_with_as_many() -> None:
    module = EmotionEmbeddingModule(num_classes=2, class_names=["angry", "sad"], layers=6)
    module.check_emotions(["angry", "sad"])  # the same: fine
    module.check_emotions(None)  # a checkpoint that does not say: nothing to compare
    for other in (["angry", "calm"], ["sad", "angry"]):  # another emotion, another order
        with pytest.raises(ValueError, match="trained on the emotions .*; this data has angry"):
            module.check_emotions(other)
