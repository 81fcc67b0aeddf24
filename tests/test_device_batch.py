"""benchmarks/device_batch.py: a feature cache travels to a machine without the corpus."""

from __future__ import annotations

import pytest
import torch

from lightning_ser.data.datamodule import EmotionDataModule
from lightning_ser.data.features import FeatureExtractor


@pytest.fixture(scope="module")
def device_batch(benchmark_script):
    return benchmark_script("device_batch")


@pytest.mark.parametrize("speeds", [[1.0], [1.0, 1.1]])
def test_packed_features_come_back_without_audio(
    device_batch, tiny_ravdess, tmp_path, monkeypatch, speeds
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "here"))
    device_batch.pack(tiny_ravdess, "ravdess", tmp_path / "packed", speeds)
    here = EmotionDataModule(
        root=str(tiny_ravdess), speed_perturbation=speeds[1:], progress=False, val_size=0.2
    )
    here.setup()

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "there"))
    elsewhere = tmp_path / "elsewhere" / "ravdess"
    device_batch.unpack(tmp_path / "packed", elsewhere)

    def refuse(*args, **kwargs):
        raise AssertionError("audio was decoded")

    monkeypatch.setattr(FeatureExtractor, "from_file", refuse)  # the stand-ins hold no audio
    there = EmotionDataModule(
        root=str(elsewhere), speed_perturbation=speeds[1:], progress=False, val_size=0.2
    )
    there.setup()
    assert torch.equal(there.table.frames, here.table.frames)
    assert torch.equal(there.train_table.frames, here.train_table.frames)
    assert there.split.test == here.split.test
