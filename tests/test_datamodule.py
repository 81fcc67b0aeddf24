"""EmotionDataModule on the tiny RAVDESS corpus: classes, caching, windows, whole utterances,
m-per-class batches, training-only normalisation and files without usable audio."""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import lightning_ser.data.cache as cache
from lightning_ser.data.batching import (
    TrainBatchSampler,
    gather_utterances,
    gather_windows,
    length_buckets,
    random_starts,
)
from lightning_ser.data.cache import UnusableFilesError
from lightning_ser.data.corpora.ravdess import CLASS_NAMES
from lightning_ser.data.datamodule import EmotionDataModule
from lightning_ser.data.features import FeatureConfig, FeatureExtractor


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for this module: the tiny corpus is decoded once, not in every test."""
    return tmp_path_factory.mktemp("datamodule-cache")


def make_dm(root: Path, cache_dir: Path, **options) -> EmotionDataModule:
    """A small-batch data module (val_size 0.2: 96 utterances leave 67 for training, and a
    stratified validation part needs one utterance of each of the 8 classes)."""
    defaults = {
        "corpus": "ravdess",
        "cache_dir": str(cache_dir),
        "val_size": 0.2,
        "batch_size": 16,
        "m_per_class": 2,
        "workers": 1,
        "progress": False,
    }
    return EmotionDataModule(root=str(root), **(defaults | options))


@pytest.fixture
def dm(tiny_ravdess: Path, module_cache: Path) -> EmotionDataModule:
    """A data module that is set up (holdout split, seed 0)."""
    dm = make_dm(tiny_ravdess, module_cache)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def train_batches(dm: EmotionDataModule) -> list[dict[str, torch.Tensor]]:
    """One epoch of training batches, cut as they would be on the device."""
    return [dm.on_after_batch_transfer(b, 0) for b in dm.train_dataloader()]


def test_classes_are_known_without_reading_audio(tiny_ravdess, module_cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("audio was read")

    monkeypatch.setattr(cache, "extract_all", refuse)
    monkeypatch.setattr(cache, "load_or_build", refuse)
    monkeypatch.setattr(FeatureExtractor, "from_file", refuse)
    dm = make_dm(tiny_ravdess, module_cache)
    assert dm.class_names == CLASS_NAMES and dm.num_classes == 8
    assert dm.n_features == 39
    assert len(dm.utterances) == 96 and dm.table is None


def test_setup_builds_the_table_and_splits_it(dm):
    assert len(dm.table) == len(dm.utterances) == 96
    assert dm.table.paths == [u.path for u in dm.utterances]
    assert dm.labels.tolist() == [CLASS_NAMES.index(u.label) for u in dm.utterances]
    parts = dm.split.train + dm.split.val + dm.split.test
    assert sorted(parts) == list(range(96))
    assert dm.split.protocol == "holdout" and not dm.split.speaker_independent
    assert int(dm.table.lengths.min()) >= 10  # every tiny clip gives a full training window


def test_training_batches_are_windows_of_training_utterances(dm):
    batches = train_batches(dm)
    assert len(batches) == math.ceil(len(dm.split.train) / 16)
    drawn = torch.cat([b["index"] for b in batches])
    assert sorted(drawn.tolist()) == dm.split.train  # each training utterance once per epoch
    for b in batches:
        assert b["x"].shape == (len(b["index"]), 10, 39) and b["x"].dtype == torch.float32
        assert b["lengths"].tolist() == [10] * len(b["index"])
        assert torch.equal(b["label"], dm.labels[b["index"]])
        for row, i in enumerate(b["index"].tolist()):
            start = int(b["start"][row])
            assert 0 <= start <= int(dm.table.lengths[i]) - 10
            torch.testing.assert_close(b["x"][row], dm.table.utterance(i)[start : start + 10])


def test_windows_per_epoch_draws_each_utterance_that_often(tiny_ravdess, module_cache):
    dm = make_dm(tiny_ravdess, module_cache, windows_per_epoch=3)
    dm.setup()
    drawn = Counter(torch.cat([b["index"] for b in dm.train_dataloader()]).tolist())
    assert set(drawn) == set(dm.split.train) and set(drawn.values()) == {3}


def test_windows_longer_than_an_utterance_are_whole_utterances(tiny_ravdess, module_cache):
    dm = make_dm(tiny_ravdess, module_cache, window_frames=1000)
    dm.setup()
    for b in train_batches(dm):  # padded to the batch's longest utterance, not to the window
        assert b["x"].shape[1:] == (int(b["lengths"].max()), 39)
        assert torch.equal(b["start"], torch.zeros_like(b["start"]))
        assert torch.equal(b["lengths"], dm.table.lengths[b["index"]])
        for row, i in enumerate(b["index"].tolist()):
            n = int(b["lengths"][row])
            torch.testing.assert_close(b["x"][row, :n], dm.table.utterance(i))
            assert not b["x"][row, n:].any()


def test_m_per_class_batches_after_the_switch(tiny_ravdess, module_cache):
    dm = make_dm(
        tiny_ravdess, module_cache, triplet_sampling="m_per_class", batch_size=16, m_per_class=2
    )
    dm.setup()
    loader = dm.train_dataloader()
    random_batches = [b["label"] for b in loader]
    dm.set_sampling("m_per_class")  # the stage switch, between epochs
    class_batches = [b["label"] for b in loader]
    assert len(class_batches) == len(random_batches) == len(loader)
    for labels in class_batches:
        assert Counter(labels.tolist()) == {c: 2 for c in range(8)}
    # a reloaded loader keeps the current mode
    labels = next(iter(dm.train_dataloader()))["label"]
    assert Counter(labels.tolist()) == {c: 2 for c in range(8)}
    dm.set_sampling("random")
    assert len([b for b in dm.train_dataloader()]) == len(random_batches)


def test_m_per_class_is_ignored_when_sampling_is_random(tiny_ravdess, module_cache):
    dm = make_dm(
        tiny_ravdess, module_cache, triplet_sampling="random", batch_size=16, m_per_class=2
    )
    dm.setup()
    loader = dm.train_dataloader()
    dm.set_sampling("m_per_class")
    drawn = torch.cat([b["index"] for b in loader]).tolist()
    assert sorted(drawn) == dm.split.train  # still a plain shuffle of the training part


@pytest.mark.parametrize("part", ["val", "test"])
def test_eval_batches_are_whole_utterances(dm, part):
    batches = [dm.on_after_batch_transfer(b, 0) for b in getattr(dm, f"{part}_dataloader")()]
    drawn = torch.cat([b["index"] for b in batches])
    assert sorted(drawn.tolist()) == getattr(dm.split, part)
    for b in batches:
        assert torch.equal(b["lengths"], dm.table.lengths[b["index"]])
        assert b["x"].shape == (len(b["index"]), int(b["lengths"].max()), 39)
        for row, i in enumerate(b["index"].tolist()):
            n = int(b["lengths"][row])
            torch.testing.assert_close(b["x"][row, :n], dm.table.utterance(i))
            assert not b["x"][row, n:].any()


def test_eval_batches_respect_the_frame_budget(tiny_ravdess, module_cache):
    dm = make_dm(tiny_ravdess, module_cache, eval_batch_frames=300)
    dm.setup()
    batches = list(dm.iter_part("test"))  # already cut
    assert len(batches) > 1
    assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == dm.split.test
    for b in batches:
        assert b["x"].shape[0] * b["x"].shape[1] <= 300


def test_features_can_be_cut_on_the_host(tiny_ravdess, module_cache):
    dm = make_dm(tiny_ravdess, module_cache, features_on_device=False)
    dm.setup()
    batch = dm.on_before_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert "x" in batch
    assert dm.on_after_batch_transfer(batch, 0) is batch  # not cut twice


def test_normalisation_statistics_come_from_the_training_part(tiny_ravdess, module_cache):
    # speaker-disjoint: the tiny corpus gives every actor its own level, so held-out actors
    # would shift the mean of the level coefficient if they leaked into it
    dm = make_dm(tiny_ravdess, module_cache, split="speaker_holdout", val_size=0.25)
    dm.setup()
    train = torch.cat([dm.table.utterance(i) for i in dm.split.train])
    torch.testing.assert_close(dm.feature_mean, train.mean(0))
    torch.testing.assert_close(dm.feature_std, train.std(0))
    everything = dm.table.frames.mean(0)
    assert (dm.feature_mean - everything).abs().max() > 1.0
    held_out = dm.split.val + dm.split.test
    held = torch.cat([dm.table.utterance(i) for i in held_out])
    assert not torch.allclose(held.mean(0), dm.feature_mean, atol=1.0)


def test_split_json_is_written_next_to_the_run(tiny_ravdess, module_cache, tmp_path):
    dm = make_dm(tiny_ravdess, module_cache, split="loso", fold=2)
    dm.trainer = SimpleNamespace(
        is_global_zero=True, log_dir=str(tmp_path / "run"), state=SimpleNamespace(fn="fit")
    )
    dm.setup("fit")
    record = json.loads((tmp_path / "run" / "split.json").read_text())
    assert record["protocol"] == "loso" and record["speaker_independent"] is True
    assert record["test_speakers"] == ["actor03"]
    assert sorted(record["train_paths"] + record["val_paths"] + record["test_paths"]) == sorted(
        dm.table.paths
    )


def test_summary_counts_the_corpus(tiny_ravdess, module_cache):
    make_dm(tiny_ravdess, module_cache).prepare_data()  # the cache exists from here on
    dm = make_dm(tiny_ravdess, module_cache)
    summary = dm.summary()
    assert set(summary) == {
        "corpus", "root", "utterances", "speakers", "emotions", "frames",
        "features_per_frame", "skipped_files", "cache", "built", "seconds",
        "speed_caches", "stale_caches", "stale_cache_mb",
    }  # fmt: skip
    assert summary["corpus"] == "ravdess" and summary["root"] == str(tiny_ravdess)
    assert summary["utterances"] == 96 and summary["speakers"] == 6
    assert summary["emotions"] == {name: 12 for name in CLASS_NAMES}
    assert summary["frames"] == int(dm.table.lengths.sum())
    assert summary["features_per_frame"] == 39 and summary["skipped_files"] == 0
    assert Path(summary["cache"]).is_file() and Path(summary["cache"]).parent == module_cache
    assert summary["built"] is False and summary["seconds"] >= 0


def test_a_new_cache_points_at_older_ones_of_the_same_corpus(tiny_ravdess, tmp_path, caplog):
    make_dm(tiny_ravdess, tmp_path, features=FeatureConfig(deltas=0)).prepare_data()
    dm = make_dm(tiny_ravdess, tmp_path, features=FeatureConfig(deltas=1))
    with caplog.at_level(logging.INFO, logger="lightning_ser.data.datamodule"):
        dm.prepare_data()
    assert "1 older feature cache file(s)" in caplog.text and "--prune" in caplog.text
    assert dm.summary()["stale_caches"] == 1


def test_the_tiny_corpus_is_learnable_across_speakers(tiny_ravdess, module_cache):
    # nearest class mean of normalised utterance-mean features, on actors never seen
    dm = make_dm(tiny_ravdess, module_cache, split="speaker_holdout", val_size=0.25)
    dm.setup()
    means = torch.stack([dm.table.utterance(i).mean(0) for i in range(len(dm.table))])
    means = (means - dm.feature_mean) / dm.feature_std
    train = torch.tensor(dm.split.train)
    centroids = torch.stack([means[train[dm.labels[train] == c]].mean(0) for c in range(8)])
    test = torch.tensor(dm.split.test)
    predicted = torch.cdist(means[test], centroids).argmin(1)
    assert (predicted == dm.labels[test]).float().mean() >= 0.9


@pytest.fixture
def ravdess_with_a_broken_file(tiny_ravdess: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the tiny corpus in which one file holds text instead of audio."""
    root = tmp_path / "ravdess"
    shutil.copytree(tiny_ravdess, root)
    broken = root / "Actor_04" / "03-01-05-01-02-01-04.wav"
    broken.write_text("not audio\n")
    return root, str(broken)


def test_skip_drops_exactly_the_broken_utterance(ravdess_with_a_broken_file, cache_dir):
    root, broken = ravdess_with_a_broken_file
    dm = make_dm(root, cache_dir, on_bad_file="skip")
    dm.setup()
    assert len(dm.table) == len(dm.utterances) == 95
    assert broken not in dm.table.paths and dm.table.failures[0][0] == broken
    assert dm.table.paths == [u.path for u in dm.utterances]
    assert len(dm.labels) == 95 and sorted(dm.split.train + dm.split.val + dm.split.test) == list(
        range(95)
    )
    summary = dm.summary()
    assert summary["skipped_files"] == 1 and summary["utterances"] == 95
    assert summary["emotions"]["angry"] == 11


def test_a_broken_file_stops_an_error_run_naming_it(ravdess_with_a_broken_file, cache_dir):
    root, broken = ravdess_with_a_broken_file
    with pytest.raises(UnusableFilesError) as err:
        make_dm(root, cache_dir).prepare_data()
    assert str(broken) in str(err.value)


@pytest.mark.parametrize(
    ("option", "value"),
    [("window_frames", 0), ("batch_size", 1), ("windows_per_epoch", 0)],
)
def test_bad_options_are_named(tiny_ravdess, option, value):
    with pytest.raises(ValueError, match=f"data.{option}"):
        EmotionDataModule(root=str(tiny_ravdess), **{option: value})


# --- batching primitives against brute force ----------------------------------------------------


def toy_table(lengths: list[int], features: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames numbered 1, 2, 3, ... (never zero, so padding is visible) and their offsets."""
    offsets = torch.tensor([0, *lengths]).cumsum(0)
    frames = torch.arange(1, int(offsets[-1]) * features + 1, dtype=torch.float32)
    return frames.view(-1, features), offsets


def test_gather_windows_matches_slicing_with_zero_padding():
    frames, offsets = toy_table([4, 12, 1, 7])
    index, start = torch.tensor([1, 0, 3, 2, 1]), torch.tensor([2, 0, 3, 0, 7])
    x, lengths = gather_windows(frames, offsets, index, start, window=6)
    assert x.shape == (5, 6, 3)
    for row, (i, s0) in enumerate(zip(index.tolist(), start.tolist(), strict=True)):
        utt = frames[offsets[i] : offsets[i + 1]][s0 : s0 + 6]
        expected = torch.zeros(6, 3)
        expected[: len(utt)] = utt
        assert torch.equal(x[row], expected) and int(lengths[row]) == len(utt)


def test_gather_utterances_pads_to_the_longest():
    frames, offsets = toy_table([4, 12, 1, 7])
    x, lengths = gather_utterances(frames, offsets, torch.tensor([2, 3, 0]))
    assert x.shape == (3, 7, 3) and lengths.tolist() == [1, 7, 4]
    for row, i in enumerate([2, 3, 0]):
        n = int(lengths[row])
        assert torch.equal(x[row, :n], frames[offsets[i] : offsets[i + 1]])
        assert not x[row, n:].any()


def test_random_starts_stay_inside_the_utterance():
    lengths = torch.tensor([5, 10, 11, 40] * 50)
    starts = random_starts(lengths, 10, torch.Generator().manual_seed(0))
    assert (starts >= 0).all() and (starts <= (lengths - 10).clamp(min=0)).all()
    assert set(starts[lengths == 40].tolist()) > {0}  # long ones do move


def test_length_buckets_cover_each_position_once_within_the_budget():
    lengths = torch.tensor([30, 5, 80, 12, 12, 60, 7, 200, 45])
    positions = [0, 2, 3, 5, 6, 7, 8]
    buckets = length_buckets(positions, lengths, max_frames=120)
    assert sorted(i for b in buckets for i in b) == positions
    for b in buckets:  # a single utterance longer than the budget gets a batch of its own
        assert len(b) * max(int(lengths[i]) for i in b) <= 120 or len(b) == 1


def test_train_sampler_counts_and_m_per_class_errors():
    labels = [0, 1, 2] * 10
    sampler = TrainBatchSampler(list(range(100, 130)), labels, batch_size=8, repeats=2)
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(60 / 8)
    assert Counter(i for b in batches for i in b) == {i: 2 for i in range(100, 130)}
    sampler.mode = "m_per_class"
    sampler.m_per_class = 4  # 8 // 4 = 2 classes per batch: enough
    assert len(list(sampler)) == len(batches)
    sampler.m_per_class = 5  # one class per batch: no negatives for the miner
    with pytest.raises(ValueError, match="data.m_per_class"):
        list(sampler)


def test_speed_perturbation_adds_training_copies_only(tiny_ravdess, module_cache, monkeypatch):
    plain = make_dm(tiny_ravdess, module_cache, window_frames=1000)
    plain.setup()
    dm = make_dm(tiny_ravdess, module_cache, window_frames=1000, speed_perturbation=[0.9, 1.1])
    dm.setup()
    n, train = len(dm.table), dm.split.train
    assert dm.split.train == plain.split.train and len(dm.train_table) == n + 2 * len(train)
    drawn = torch.cat([b["index"] for b in dm.train_dataloader()]).tolist()
    assert sorted(drawn) == train + list(range(n, n + 2 * len(train)))  # each copy once an epoch
    slow = dm.train_table.select(range(n, n + len(train)))
    for k, i in enumerate(train):  # a copy: its source's label and path, about 1/0.9 as long
        assert dm.train_labels[n + k] == dm.labels[i] and slow.paths[k] == dm.table.paths[i]
        assert abs(len(slow.utterance(k)) - len(dm.table.utterance(i)) / 0.9) <= 2
    for b in train_batches(dm):
        for row, i in enumerate(b["index"].tolist()):
            n_frames = int(b["lengths"][row])
            torch.testing.assert_close(b["x"][row, :n_frames], dm.train_table.utterance(i))
    for part in ("val", "test"):  # evaluation never sees a copy
        ours, theirs = list(dm.iter_part(part)), list(plain.iter_part(part))
        assert all(torch.equal(a["x"], b["x"]) for a, b in zip(ours, theirs, strict=True))

    def refuse(*args, **kwargs):
        raise AssertionError("audio was decoded")

    monkeypatch.setattr(FeatureExtractor, "from_file", refuse)
    again = make_dm(tiny_ravdess, module_cache, speed_perturbation=[0.9, 1.1])
    again.setup()  # every speed is cached: nothing is decoded
    assert torch.equal(again.train_table.frames, dm.train_table.frames)


def test_speed_copies_take_their_speakers_statistics(tiny_ravdess, module_cache):
    dm = make_dm(tiny_ravdess, module_cache, normalisation="speaker", speed_perturbation=[1.1])
    dm.setup()
    raw = make_dm(tiny_ravdess, module_cache, speed_perturbation=[1.1])
    raw.setup()
    n, i = len(dm.table), dm.split.train[0]
    speaker = dm.utterances[i].speaker
    rows = [k for k, u in enumerate(raw.utterances) if u.speaker == speaker]
    reference = torch.cat([raw.table.utterance(k) for k in rows])
    mean, std = reference.mean(0), reference.std(0).clamp_min(1e-5)
    expected = (raw.train_table.utterance(n) - mean) / std
    torch.testing.assert_close(dm.train_table.utterance(n), expected)


@pytest.mark.parametrize("speeds", [[1.0], [0.2], [0.9, 3.0]])
def test_bad_speeds_are_named(tiny_ravdess, speeds):
    with pytest.raises(ValueError, match="data.speed_perturbation"):
        EmotionDataModule(root=str(tiny_ravdess), speed_perturbation=speeds)
