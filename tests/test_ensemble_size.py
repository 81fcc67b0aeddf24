"""benchmarks/ensemble_size.py: an ensemble's score against its number of members."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_ser.cli import dispatch
from lightning_ser.ensemble import ensemble_metrics
from lightning_ser.member import MemberAnswers

CONF = Path(__file__).parent / "conf" / "tiny.yaml"


@pytest.fixture(scope="module")
def ensemble_size(benchmark_script):
    return benchmark_script("ensemble_size")


def member(cosines: list[list[float]], labels: list[int]) -> MemberAnswers:
    scores = torch.tensor(cosines)
    return MemberAnswers(
        run_dir=Path("run"),
        paths=[f"u{i}.wav" for i in range(len(labels))],
        cosines=scores,
        probabilities=scores.softmax(1),
        labels=torch.tensor(labels),
        view=(0, 0),
    )


def test_each_size_is_the_mean_over_its_subsets(ensemble_size) -> None:
    labels = [0, 1, 0, 1]
    members = [  # the first two right on different halves, the third right everywhere
        member([[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.9, 0.1]], labels),
        member([[0.1, 0.9], [0.9, 0.1], [0.9, 0.1], [0.1, 0.9]], labels),
        member([[0.8, 0.3], [0.3, 0.7], [0.7, 0.2], [0.3, 0.6]], labels),
    ]
    curve = ensemble_size.size_curve(members, num_classes=2)
    alone = [ensemble_metrics([m], 2)["least_angle/wa"] for m in members]
    assert alone == [0.5, 0.5, 1.0]
    assert curve[1]["least_angle/wa"] == pytest.approx(2 / 3)
    assert (curve[1]["min"], curve[1]["max"]) == (0.5, 1.0)
    pairs = [ensemble_metrics([members[i], members[j]], 2)["softmax/wa"]
             for i, j in ((0, 1), (0, 2), (1, 2))]  # fmt: skip
    assert curve[2]["softmax/wa"] == pytest.approx(sum(pairs) / 3)
    everyone = ensemble_metrics(members, 2)["least_angle/wa"]
    assert curve[3]["least_angle/wa"] == curve[3]["min"] == curve[3]["max"] == everyone == 1.0
    assert [curve[k]["subsets"] for k in (1, 2, 3)] == [3, 3, 1]


def test_validation_parts_of_two_seeds_make_a_table(
    tmp_path: Path, tiny_ravdess: Path, cache_dir: Path, monkeypatch, capsys, ensemble_size
) -> None:
    monkeypatch.chdir(tmp_path)
    outs = [tmp_path / f"seed{seed}" for seed in (0, 1)]
    for seed, out in enumerate(outs):
        dispatch([
            "cv", "-c", str(CONF), "--data.root", str(tiny_ravdess), "--data.cache_dir",
            str(cache_dir), "--model.softmax_epochs", "1", "--model.triplet_epochs", "1",
            "--data.split", "speaker_kfold", "--data.n_folds", "3", "--folds", "0",
            "--seed_everything", str(seed), "--out", str(out),
        ])  # fmt: skip
    ensemble_size.main([str(o) for o in outs])
    out = capsys.readouterr().out
    assert "val parts, last.ckpt, fold(s) 0" in out
    assert out.count("\n| 1 | 2 |") == 1 and out.count("\n| 2 | 1 |") == 1
    with pytest.raises(SystemExit):
        ensemble_size.main([str(outs[0]), str(outs[0])])
