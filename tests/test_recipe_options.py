"""The accuracy recipe's options: TIM backbone, attentive pooling, ArcFace, masking, long crops."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from lightning_ser.augment import SpecMasking, mixup
from lightning_ser.cli import main
from lightning_ser.compiling import CACHE_TAG
from lightning_ser.data.batching import gather_windows
from lightning_ser.losses import AngularMarginObjective, build_metric_loss
from lightning_ser.models import EmbeddingNet
from lightning_ser.models.pooling import AttentiveStatsPooling, build_pooling
from lightning_ser.models.tim import TIMBackbone, reverse_valid
from lightning_ser.module import EmotionEmbeddingModule

TINY = Path(__file__).parent / "conf" / "tiny.yaml"


def test_reverse_valid_keeps_padding_at_the_end() -> None:
    x = torch.arange(10.0).reshape(2, 5, 1)
    out = reverse_valid(x, torch.tensor([3, 5]))
    assert out[0, :, 0].tolist() == [2.0, 1.0, 0.0, 3.0, 4.0]
    assert out[1, :, 0].tolist() == [9.0, 8.0, 7.0, 6.0, 5.0]
    torch.testing.assert_close(reverse_valid(out, torch.tensor([3, 5])), x)


def test_tim_backbone_sees_both_directions() -> None:
    """A change at the last frame reaches earlier frames' features (through the backward
    stream), and a change at the first frame reaches later ones (forward stream)."""
    torch.manual_seed(0)
    tim = TIMBackbone(layers=6, channels=8, kernel_size=2, dropout=0.0).eval()
    x = torch.randn(1, 40, 39)
    for changed, watched in ((39, slice(0, 39)), (0, slice(1, 40))):
        y = x.clone()
        y[0, changed] += 1.0
        assert (tim(x)[0, watched] - tim(y)[0, watched]).abs().max() > 1e-5


def test_tim_backbone_ignores_padding_in_training_batches_too() -> None:
    torch.manual_seed(0)
    tim = TIMBackbone(layers=4, channels=8, kernel_size=2, dropout=0.0).train()
    x = torch.randn(3, 30, 39)
    lengths = torch.tensor([30, 12, 20])
    garbage = x.clone()
    for row, n in enumerate(lengths):
        garbage[row, n:] = 1e3  # what sits in padding must not matter
    torch.testing.assert_close(tim(x, lengths), tim(garbage, lengths))


def test_attentive_stats_pooling_is_mean_and_std_under_uniform_attention() -> None:
    pool = AttentiveStatsPooling(4)
    torch.nn.init.zeros_(pool.score[-1].weight)  # every frame scores the same
    h = torch.randn(2, 9, 4)
    lengths = torch.tensor([9, 5])
    out = pool(h, lengths)
    assert out.shape == (2, 8)
    for row, n in enumerate(lengths):
        valid = h[row, :n]
        torch.testing.assert_close(out[row, :4], valid.mean(0))
        torch.testing.assert_close(out[row, 4:], valid.std(0, unbiased=False), atol=1e-5, rtol=0)


def test_attentive_stats_pooling_ignores_padded_frames() -> None:
    torch.manual_seed(0)
    pool = AttentiveStatsPooling(4)
    h = torch.randn(1, 6, 4)
    padded = torch.cat([h, torch.full((1, 4, 4), 50.0)], dim=1)
    torch.testing.assert_close(pool(padded, torch.tensor([6])), pool(h))


def test_every_pooling_gives_a_unit_embedding() -> None:
    for pooling in ("mean", "attentive_stats"):
        net = EmbeddingNet("cnn", 4, channels=8, embedding_dim=6, pooling=pooling)
        emb = net.embed(torch.randn(3, 11, 39), torch.tensor([11, 4, 7]))
        torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="model.pooling"):
        build_pooling("max", 8)


def test_arcface_loss_decreases_on_a_toy_set() -> None:
    torch.manual_seed(0)
    labels = torch.arange(4).repeat_interleave(16)
    x = torch.randn(len(labels), 12) + 2.0 * torch.nn.functional.one_hot(labels, 12)[:, :12].float()
    net = torch.nn.Linear(12, 8)
    loss_fn = AngularMarginObjective(num_classes=4, embedding_dim=8, margin_deg=20.0, scale=16.0)
    optimizer = torch.optim.Adam([*net.parameters(), *loss_fn.parameters()], lr=0.01)
    losses = []
    for _ in range(60):
        loss = loss_fn(net(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_metric_loss_names_the_setting() -> None:
    assert isinstance(build_metric_loss("subcenter_arcface", 3, 8), AngularMarginObjective)
    with pytest.raises(ValueError, match="model.metric_loss"):
        build_metric_loss("contrastive", 3, 8)


def test_masking_changes_training_batches_only() -> None:
    masking = SpecMasking(time_masks=2, time_mask_frames=5, feature_masks=2, feature_mask_width=4)
    centre = torch.full((39,), 3.0)
    x = torch.randn(4, 50, 39)
    masked = masking.train()(x, centre)
    changed = (masked - x).abs() > 1e-5
    assert changed.any() and torch.allclose(masked[changed], torch.tensor(3.0))  # the centre
    assert torch.equal(masking.eval()(x, centre), x)
    assert torch.equal(SpecMasking().train()(x, centre), x)


def test_module_augments_in_training_and_never_in_evaluation() -> None:
    torch.manual_seed(0)
    module = EmotionEmbeddingModule(
        num_classes=3, channels=8, layers=6, embedding_dim=8, time_masks=2, feature_masks=2,
        label_smoothing=0.1,
    )  # fmt: skip
    x = torch.randn(2, 30, 39)
    module.eval()
    with torch.no_grad():
        first, _ = module(x)
        second, _ = module(x)
    torch.testing.assert_close(first, second)
    module.train()
    assert not torch.equal(module.augment(x, module.embedder.feature_mean), x)
    with pytest.raises(ValueError, match="label_smoothing"):
        EmotionEmbeddingModule(label_smoothing=1.0)


def test_long_windows_give_whole_utterances_padded_to_the_longest() -> None:
    frames = torch.arange(30.0)[:, None].expand(30, 2).contiguous()
    offsets = torch.tensor([0, 10, 30])
    x, lengths = gather_windows(frames, offsets, torch.tensor([0, 1]), torch.tensor([0, 0]), 500)
    assert x.shape == (2, 20, 2) and lengths.tolist() == [10, 20]
    assert torch.equal(x[0, :10, 0], torch.arange(10.0)) and torch.all(x[0, 10:] == 0)
    assert torch.equal(x[1, :, 0], torch.arange(10.0, 30.0))


def test_cosine_decay_runs_from_the_start_rate_to_the_end_rate() -> None:
    module = EmotionEmbeddingModule(
        num_classes=3, channels=8, layers=6, embedding_dim=8, softmax_epochs=11,
        lr_decay="cosine", lr_end_factor=0.01,
    )  # fmt: skip

    class Trainer:
        current_epoch = 0

    module._trainer = Trainer()
    rates = []
    for epoch in range(11):
        module.trainer.current_epoch = epoch
        rates.append(1.0 * module.lr_factor(module.trainer.current_epoch))
    assert rates[0] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.01)
    assert rates[5] == pytest.approx((1.0 + 0.01) / 2)
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert not math.isclose(rates[1] - rates[2], rates[4] - rates[5])  # not linear


def test_per_speaker_normalisation_standardises_each_speaker(tiny_ravdess, cache_dir) -> None:
    from lightning_ser.data.datamodule import EmotionDataModule

    dm = EmotionDataModule(
        root=str(tiny_ravdess), cache_dir=str(cache_dir), normalisation="speaker",
        split="speaker_kfold", n_folds=3, progress=False, workers=1,
    )  # fmt: skip
    dm.setup()
    assert dm.transductive and torch.equal(dm.feature_mean, torch.zeros(39))
    from lightning_ser.callbacks import dataset_description

    assert "transductive" in dataset_description(dm)  # every report of such a run says so
    owner = torch.repeat_interleave(torch.arange(len(dm.table)), dm.table.lengths)
    for speaker in set(dm.groups):
        rows = torch.tensor([g == speaker for g in dm.groups])[owner]
        frames = dm.table.frames[rows]
        torch.testing.assert_close(frames.mean(0), torch.zeros(39), atol=1e-4, rtol=0)
        torch.testing.assert_close(frames.std(0), torch.ones(39), atol=1e-3, rtol=0)
    plain = EmotionDataModule(
        root=str(tiny_ravdess), cache_dir=str(cache_dir), val_size=0.2, progress=False
    )
    plain.setup()
    assert not plain.transductive
    with pytest.raises(ValueError, match="data.normalisation"):
        EmotionDataModule(normalisation="global")


def test_mixup_mixes_padded_utterances_over_the_centre() -> None:
    centre = torch.full((2,), 5.0)
    x = torch.zeros(2, 4, 2)
    x[0, :4], x[1, :2] = 1.0, 3.0  # utterance 0: 4 frames; utterance 1: 2 frames, then padding
    lengths = torch.tensor([4, 2])
    mixed, mixed_lengths = mixup(x, lengths, centre, 0.25, torch.tensor([1, 0]))
    assert mixed_lengths.tolist() == [4, 4]
    # row 0 = 0.25 * utterance 0 + 0.75 * utterance 1 (its padding counts as the centre)
    torch.testing.assert_close(mixed[0, :, 0], torch.tensor([2.5, 2.5, 4.0, 4.0]))
    torch.testing.assert_close(mixed[1, :, 0], torch.tensor([1.5, 1.5, 2.0, 2.0]))
    same, _ = mixup(x, lengths, centre, 1.0, torch.tensor([1, 0]))
    torch.testing.assert_close(same[1, :, 0], torch.tensor([3.0, 3.0, 5.0, 5.0]))


def test_module_mixes_in_the_softmax_stage_only(monkeypatch) -> None:
    import lightning_ser.module as module_file

    calls = []

    def counting(*args):
        calls.append(args[3])
        return mixup(*args)

    monkeypatch.setattr(module_file, "mixup", counting)
    torch.manual_seed(0)
    module = EmotionEmbeddingModule(
        num_classes=3, channels=8, layers=6, embedding_dim=8, mixup_alpha=0.4,
        metric_loss="arcface",
    )  # fmt: skip
    batch = {
        "x": torch.randn(6, 20, 39),
        "lengths": torch.tensor([20, 18, 15, 20, 12, 9]),
        "label": torch.tensor([0, 1, 2, 0, 1, 2]),
    }
    module.train()
    losses = module.losses(batch)
    assert len(calls) == 1 and 0.0 <= calls[0] <= 1.0 and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    module.stage = "triplet"
    module.losses(batch)
    module.eval()
    module.stage = "softmax"
    module.losses(batch)
    assert len(calls) == 1  # neither the metric stage nor evaluation mixes
    with pytest.raises(ValueError, match="mixup_alpha"):
        EmotionEmbeddingModule(mixup_alpha=-1.0)


@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile needs a C compiler")
def test_compiled_network_computes_what_the_eager_one_does() -> None:
    torch.manual_seed(0)
    options = {"num_classes": 3, "backbone": "tim", "layers": 2, "channels": 4, "embedding_dim": 8}
    eager = EmotionEmbeddingModule(**options)
    compiled = EmotionEmbeddingModule(**options, compile=True)
    compiled.load_state_dict(eager.state_dict())  # same parameter names
    x, lengths = torch.randn(3, 12, 39), torch.tensor([12, 9, 5])
    eager.eval(), compiled.eval()
    with torch.no_grad():
        for a, b in zip(eager(x, lengths), compiled(x, lengths), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile needs a C compiler")
def test_compiled_training_repeats_itself_with_the_same_seed() -> None:
    """What `make run` relies on with the recipe's `compile: true`: one thread, one seed, the
    same weights after training steps (backward passes through the compiled graph)."""

    def trained() -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        module = EmotionEmbeddingModule(
            num_classes=3, backbone="tim", layers=2, channels=4, embedding_dim=8, compile=True
        )
        optimiser = torch.optim.Adam(module.parameters(), lr=0.01)
        batch = {
            "x": torch.randn(6, 12, 39),
            "lengths": torch.tensor([12, 9, 5, 12, 7, 10]),
            "label": torch.tensor([0, 1, 2, 0, 1, 2]),
        }
        module.train()
        for _ in range(3):
            optimiser.zero_grad()
            module.losses(batch)["loss"].backward()
            optimiser.step()
        return module.state_dict()

    first, second = trained(), trained()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name


@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile needs a C compiler")
def test_a_new_utterance_length_trains_without_compiling_again() -> None:
    """Whole-utterance batches have a new length each: one compiled graph serves them all
    (TorchInductor's convolution backward would otherwise specialise the length)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    module = EmotionEmbeddingModule(
        num_classes=3, backbone="tim", layers=2, channels=4, embedding_dim=8, compile=True
    )
    module.train()
    graphs = []
    for frames in (12, 17, 23):
        batch = {
            "x": torch.randn(4, frames, 39),
            "lengths": torch.tensor([frames, frames - 2, 5, frames - 1]),
            "label": torch.tensor([0, 1, 2, 0]),
        }
        module.losses(batch)["loss"].backward()
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] >= 1
    assert graphs[1] == graphs[2] == graphs[0]
    # graphs cached on disk by a torch that fixed the length are not loaded again
    assert torch.compiler.config.cache_key_tag.split(",").count(CACHE_TAG) == 1


def test_compile_without_a_cpp_compiler_is_refused_in_one_line(
    monkeypatch, capsys, tmp_path, tiny_ravdess, cache_dir
) -> None:
    from torch._inductor import config, cpp_builder

    monkeypatch.setattr(config.cpp, "cxx", ("no-such-compiler-here",))
    monkeypatch.chdir(tmp_path)
    cpp_builder.cpp_compiler_search.cache_clear()  # TorchInductor caches the compiler it found
    try:
        with pytest.raises(ValueError, match=r"model.compile: true needs a C\+\+ compiler"):
            EmotionEmbeddingModule(num_classes=3, compile=True)
        args = [
            "-c",
            str(TINY),
            "--data.root",
            str(tiny_ravdess),
            "--data.cache_dir",
            str(cache_dir),
        ]
        assert main(["fit", *args, "--model.compile", "true"]) == 1
        error = capsys.readouterr().err.strip().splitlines()
        assert error == [
            "lightning-ser: error: model.compile: true needs a C++ compiler on PATH (g++ or "
            "clang++, or one named by CXX): install one or pass --model.compile false "
            "(--debug shows where)"
        ]
        assert not list(tmp_path.rglob("*.ckpt"))
    finally:
        cpp_builder.cpp_compiler_search.cache_clear()


@pytest.mark.parametrize("name", ["arcface", "subcenter_arcface"])
def test_arcface_centres_can_start_at_given_directions(name: str) -> None:
    torch.manual_seed(0)
    loss = build_metric_loss(name, num_classes=3, embedding_dim=8)
    centres = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    labels = torch.arange(3).repeat(4)
    on_centres = centres[labels] + 0.05 * torch.randn(len(labels), 8)
    before = loss(on_centres, labels)
    loss.set_centres(centres)
    sub_centres = loss.loss.W.shape[1] // 3
    torch.testing.assert_close(loss.loss.W[:, ::sub_centres].T, centres)
    assert loss(on_centres, labels) < 0.2 * before  # embeddings already at their class's centre


def test_metric_stage_starts_its_centres_at_the_class_embeddings(monkeypatch) -> None:
    module = EmotionEmbeddingModule(
        num_classes=3, channels=8, layers=6, embedding_dim=8, metric_loss="arcface",
        centre_init="class_embeddings", softmax_epochs=1, triplet_epochs=1,
    )  # fmt: skip
    refreshed = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    monkeypatch.setattr(
        module, "refresh_class_embeddings", lambda: module.class_embeddings.copy_(refreshed)
    )
    monkeypatch.setattr(module, "sync_schedule", lambda epoch: None)  # no trainer here
    module.end_stage()
    assert module.stage == "triplet"
    torch.testing.assert_close(module.metric_loss.loss.W.T, refreshed)


def test_centre_init_does_nothing_for_the_triplet_loss_and_says_so(monkeypatch, caplog) -> None:
    """A sweep over metric_loss keeps the recipe's centre_init: the triplet arm must still run."""
    module = EmotionEmbeddingModule(
        num_classes=3, metric_loss="triplet", centre_init="class_embeddings", softmax_epochs=1
    )
    monkeypatch.setattr(module, "refresh_class_embeddings", lambda: pytest.fail("not needed"))
    monkeypatch.setattr(module, "sync_schedule", lambda epoch: None)  # no trainer here
    with caplog.at_level("INFO"):
        module.end_stage()
    assert module.stage == "triplet"
    assert "model.centre_init does not apply" in caplog.text


def test_utterance_normalisation_ignores_each_utterances_level_and_scale() -> None:
    from lightning_ser.embedder import Embedder

    torch.manual_seed(0)
    embedder = Embedder(num_classes=3, backbone="tim", layers=2, channels=4, embedding_dim=8,
                        feature_normalisation="utterance").eval()  # fmt: skip
    x = torch.randn(2, 30, 39)
    lengths = torch.tensor([30, 21])
    gain, offset = torch.rand(39) + 0.5, torch.randn(39)  # a louder voice, another channel
    with torch.no_grad():
        emb, _ = embedder(x, lengths)
        moved, _ = embedder(x * gain + offset, lengths)
        alone, _ = embedder(x[1:, :21], lengths[1:])
    torch.testing.assert_close(moved, emb, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(alone[0], emb[1], atol=1e-5, rtol=1e-5)  # padding plays no part
    twin = Embedder(**embedder.config).eval()  # what inference rebuilds from a checkpoint
    twin.load_state_dict(embedder.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(twin(x, lengths)[0], emb)


def test_both_normalisations_side_by_side_feed_the_network_twice_the_features() -> None:
    from lightning_ser.embedder import Embedder

    torch.manual_seed(0)
    embedder = Embedder(num_classes=3, backbone="tim", layers=2, channels=4, embedding_dim=8,
                        feature_normalisation="both").eval()  # fmt: skip
    embedder.feature_mean.fill_(1.0)
    embedder.feature_std.fill_(2.0)
    x = torch.randn(2, 30, 39)
    lengths = torch.tensor([30, 21])
    views = embedder.normalise(x, lengths)
    assert embedder.n_features == 39 and views.shape == (2, 30, 78)
    torch.testing.assert_close(views[0, :, :39], (x[0] - 1.0) / 2.0)  # against the training part
    own = views[0, :, 39:]  # and each utterance against itself
    torch.testing.assert_close(own.mean(dim=0), torch.zeros(39), atol=1e-5, rtol=0)
    assert views[1, 21:].abs().max() == 0  # padding stays zero in both views
    with torch.no_grad():
        alone, _ = embedder(x[1:, :21], lengths[1:])
        emb, _ = embedder(x, lengths)
    torch.testing.assert_close(alone[0], emb[1], atol=1e-5, rtol=1e-5)
    twin = Embedder(**embedder.config).eval()  # what inference rebuilds from a checkpoint
    twin.load_state_dict(embedder.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(twin(x, lengths)[0], emb)


def test_utterance_normalisation_is_not_transductive(tiny_ravdess, cache_dir) -> None:
    from lightning_ser.data.datamodule import EmotionDataModule

    data = EmotionDataModule(root=str(tiny_ravdess), cache_dir=str(cache_dir), val_size=0.2,
                             normalisation="utterance", progress=False, workers=1)  # fmt: skip
    data.setup("fit")
    from lightning_ser.callbacks import dataset_description

    assert not data.transductive and "transductive" not in dataset_description(data)
    assert data.split_identity["normalisation"] == "utterance"
    with pytest.raises(ValueError, match="data.normalisation"):
        EmotionDataModule(root=str(tiny_ravdess), normalisation="actor")
