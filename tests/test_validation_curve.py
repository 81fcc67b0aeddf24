"""benchmarks/validation_curve.py: the mean validation curve of a cv, from its folds' metrics."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def validation_curve(benchmark_script):
    return benchmark_script("validation_curve")


def write_fold(cv_dir: Path, name: str, curve: dict[int, float], finished: bool = True) -> None:
    fold = cv_dir / name
    fold.mkdir(parents=True)
    rows = ["epoch,train/loss,val/least_angle/wa"]
    for epoch, value in curve.items():
        rows += [f"{epoch},1.0,", f"{epoch},,{value}"]  # a training row, then a validation row
    (fold / "metrics.csv").write_text("\n".join(rows) + "\n")
    if finished:
        (fold / "result.json").write_text("{}")


def test_the_mean_curve_shows_the_noise_of_each_folds_best(
    tmp_path: Path, validation_curve
) -> None:
    curve = validation_curve
    write_fold(tmp_path, "fold_0", {4: 0.5, 9: 0.9, 14: 0.7})  # a lucky peak at epoch 9
    write_fold(tmp_path, "fold_1", {4: 0.5, 9: 0.5, 14: 0.7})
    write_fold(tmp_path, "fold_2", {4: 0.1}, finished=False)  # still training: left out
    curves = curve.fold_curves(tmp_path, "val/least_angle/wa")
    assert list(curves) == ["fold_0", "fold_1"]
    assert curve.mean_curve(curves) == {4: 0.5, 9: 0.7, 14: 0.7}
    text = curve.describe(curves, every=5)
    assert "mean of each fold's best 80.00%" in text  # (0.9 + 0.7) / 2, above every mean epoch
    assert "peaks at epoch 9 (70.00%), last epoch 14: 70.00%" in text
    assert curve.describe({}) == "no finished folds (fold_*/result.json)"
    stopped = curve.fold_curves(tmp_path, "val/least_angle/wa", unfinished=True)
    assert stopped["fold_2"] == {4: 0.1}  # a stopped fold: only the epochs all three reached
    assert list(curve.mean_curve(stopped)) == [4]
    assert curve.mean_curve(stopped)[4] == pytest.approx((0.5 + 0.5 + 0.1) / 3)


def test_a_screening_compares_fold_by_fold_on_validation(tmp_path: Path, validation_curve) -> None:
    curve = validation_curve
    write_fold(tmp_path / "new", "fold_0", {4: 0.5, 9: 0.8, 14: 0.6})
    write_fold(tmp_path / "new", "fold_1", {4: 0.5})  # the reference has no fold_1
    write_fold(tmp_path / "ref", "fold_0", {4: 0.9, 9: 0.7, 14: 0.6})
    new = curve.fold_curves(tmp_path / "new", "val/least_angle/wa")
    ref = curve.fold_curves(tmp_path / "ref", "val/least_angle/wa")
    rows = curve.compare(new, ref, from_epoch=5).splitlines()
    assert len(rows) == 3  # header, rule, fold_0 only
    assert rows[2] == (
        "| fold_0 | 80.00% / 90.00% | 70.00% / 65.00% | 1 / 0 of 2 | 60.00% / 60.00% (epoch 14) |"
    )


def test_a_run_with_three_times_the_data_per_epoch_compares_at_equal_training(
    tmp_path: Path, validation_curve
) -> None:
    curve = validation_curve
    write_fold(tmp_path / "new", "fold_0", {1: 0.6, 3: 0.8})  # speed copies: 3 epochs' data each
    write_fold(tmp_path / "ref", "fold_0", {4: 0.5, 9: 0.7, 14: 0.9})
    new = curve.fold_curves(tmp_path / "new", "val/least_angle/wa")
    ref = curve.fold_curves(tmp_path / "ref", "val/least_angle/wa")
    rows = curve.compare(new, ref, from_epoch=0, epoch_scale=3).splitlines()
    # new epoch 1 ~ reference epoch 5 (nearest: 4), new epoch 3 ~ 11 (nearest: 9)
    assert rows[2] == (
        "| fold_0 | 80.00% / 90.00% | 70.00% / 60.00% | 2 / 0 of 2 "
        "| 80.00% / 70.00% (epochs 3 / 9) |"
    )
