"""benchmarks/validation_views.py: a cv's checkpoints evaluated other ways, validation only."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lightning_ser.cli import dispatch

CONF = Path(__file__).parent / "conf" / "tiny.yaml"


@pytest.fixture(scope="module")
def validation_views(benchmark_script):
    return benchmark_script("validation_views")


@pytest.fixture
def fold(tmp_path: Path, tiny_ravdess: Path, cache_dir: Path, monkeypatch) -> Path:
    """Fold 0 of a tiny speaker_kfold cv, validated after its last epoch; its crops are
    10_000 frames, longer than every utterance."""
    monkeypatch.chdir(tmp_path)
    dispatch([
        "cv", "-c", str(CONF), "--data.root", str(tiny_ravdess), "--data.cache_dir",
        str(cache_dir), "--model.softmax_epochs", "1", "--model.triplet_epochs", "1",
        "--data.split", "speaker_kfold", "--data.n_folds", "3", "--folds", "0",
        "--data.window_frames", "10000", "--out", str(tmp_path / "cv"),
    ])  # fmt: skip
    return tmp_path / "cv" / "fold_0"


def test_whole_is_what_validation_logged_and_long_windows_are_whole(
    fold: Path, validation_views
) -> None:
    scores = validation_views.views(fold, "last.ckpt", crops=[3])  # windows of 10_000 frames
    rows = [r for r in csv.DictReader(open(fold / "metrics.csv")) if r["val/least_angle/wa"]]
    assert scores["whole"] == pytest.approx(float(rows[-1]["val/least_angle/wa"]))
    assert scores["crops 3"] == pytest.approx(scores["whole"])  # windows longer than utterances
    assert 0.0 <= scores["softmax"] <= 1.0


def test_the_table_compares_every_view_with_whole(fold: Path, validation_views, capsys) -> None:
    validation_views.main([str(fold.parent), "--crops", "2"])
    out = capsys.readouterr().out
    assert "| fold (last.ckpt, validation WA) | whole | softmax | crops 2 |" in out
    assert "crops 2: ahead of whole on" in out
