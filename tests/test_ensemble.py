"""`lightning-ser ensemble`: trainings of one split answering together, on the tiny corpus."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from lightning_ser.cli import dispatch, main
from lightning_ser.ensemble import MemberAnswers, ensemble_metrics
from lightning_ser.member import kept_answers

CONF = Path(__file__).parent / "conf" / "tiny.yaml"
FAST = ["--model.softmax_epochs", "1", "--model.triplet_epochs", "1"]


@pytest.fixture
def cv_args(tmp_path: Path, tiny_ravdess: Path, cache_dir: Path, monkeypatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    return [
        "-c", str(CONF), "--data.root", str(tiny_ravdess), "--data.cache_dir", str(cache_dir),
        *FAST, "--data.split", "speaker_kfold", "--data.n_folds", "3", "--folds", "0,1",
    ]  # fmt: skip


@pytest.fixture
def two_seeds(cv_args: list[str], tmp_path: Path) -> list[Path]:
    """Folds 0-1 of one cv trained twice, with seeds 0 and 1."""
    outs = [tmp_path / f"seed{seed}" for seed in (0, 1)]
    for seed, out in enumerate(outs):
        dispatch(["cv", *cv_args, "--seed_everything", str(seed), "--out", str(out)])
    return outs


def test_seeds_of_a_cv_answer_together_fold_by_fold(two_seeds: list[Path], tmp_path: Path):
    out = tmp_path / "ensemble"
    assert main(["ensemble", *map(str, two_seeds), "--out", str(out)]) == 0
    saved = json.loads((out / "summary.json").read_text())
    assert saved["command"].startswith("lightning-ser ensemble") and saved["folds"] == [0, 1]
    fold = json.loads((out / "fold_1" / "result.json").read_text())
    assert fold["members"] == [str(o / "fold_1") for o in two_seeds]
    assert fold["part"] == "test" and fold["checkpoint"] == "best.ckpt"
    alone = [json.loads((o / "fold_1/result.json").read_text()) for o in two_seeds]
    assert fold["members_least_angle_wa"] == pytest.approx(
        [a["metrics"]["least_angle/wa"] for a in alone]
    )
    assert 0.0 <= fold["metrics"]["least_angle/wa"] <= 1.0
    assert (out / "folds.csv").read_text().count("\n") == 3  # header + 2 folds
    assert "- fold(s) 0, 1 scored on" in (out / "summary.md").read_text()


def test_one_member_answers_exactly_as_its_own_cv_test(two_seeds: list[Path], tmp_path: Path):
    out = tmp_path / "alone"
    dispatch(["ensemble", str(two_seeds[0]), "--out", str(out)])
    for fold in (0, 1):
        ours = json.loads((out / f"fold_{fold}/result.json").read_text())["metrics"]
        cv = json.loads((two_seeds[0] / f"fold_{fold}/result.json").read_text())["metrics"]
        for key in ("least_angle/wa", "least_angle/macro_f1", "softmax/wa", "softmax/ua"):
            assert ours[key] == pytest.approx(cv[key]), key


def test_a_run_rescored_on_crops_says_so(two_seeds: list[Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "crops"
    assert main(["ensemble", str(two_seeds[0]), "--eval-crops", "2", "--out", str(out)]) == 0
    fold = json.loads((out / "fold_0/result.json").read_text())
    assert fold["eval_crops"] == 2 and 0.0 <= fold["metrics"]["least_angle/wa"] <= 1.0
    assert main(["ensemble", str(two_seeds[0]), "--eval-crops", "-1", "--out", str(out)]) == 1
    assert "--eval-crops must be >= 0, got -1" in capsys.readouterr().err


def test_validation_parts_are_printed_never_written(two_seeds: list[Path], tmp_path: Path, capsys):
    result = dispatch(["ensemble", *map(str, two_seeds), "--part", "val", "--checkpoint", "last"])
    assert [r["part"] for r in result["folds"]] == ["val", "val"]
    assert "fold 0 (val): least-angle WA" in capsys.readouterr().out
    assert main(["ensemble", str(two_seeds[0]), "--part", "val", "--out", str(tmp_path / "x")])
    assert "validation scores (--part val) are printed only" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_trainings_of_another_split_are_refused(cv_args, two_seeds, tmp_path, capsys) -> None:
    other = tmp_path / "other-split"
    dispatch(["cv", *cv_args, "--data.seed", "5", "--out", str(other)])
    assert main(["ensemble", str(two_seeds[0]), str(other), "--out", str(tmp_path / "e")]) == 1
    assert "trained on another split than" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_a_refit_has_no_validation_part_to_score(cv_args, tmp_path: Path, capsys) -> None:
    refit = tmp_path / "refit"
    dispatch(["cv", *cv_args, "--data.val_size", "0", "--out", str(refit)])
    assert main(["ensemble", str(refit), "--part", "val"]) == 1
    assert "has no validation part (it trained with data.val_size 0)" in capsys.readouterr().err


def test_test_numbers_are_written_and_a_run_counts_once(two_seeds, tmp_path, capsys) -> None:
    assert main(["ensemble", str(two_seeds[0])]) == 1
    assert "test parts are scored into --out DIR" in capsys.readouterr().err
    twice = ["ensemble", str(two_seeds[0]), str(two_seeds[0]), "--out", str(tmp_path / "e")]
    assert main(twice) == 1
    assert "a run is given twice" in capsys.readouterr().err


def test_results_of_another_ensemble_are_never_overwritten(two_seeds, tmp_path, capsys) -> None:
    out = tmp_path / "e"
    assert main(["ensemble", *map(str, two_seeds), "--out", str(out)]) == 0
    assert main(["ensemble", *map(str, two_seeds), "--out", str(out)]) == 0  # the same again
    before = (out / "summary.json").read_text()
    assert main(["ensemble", str(two_seeds[0]), "--out", str(out)]) == 1
    assert "holds the results of `lightning-ser ensemble" in capsys.readouterr().err
    assert (out / "summary.json").read_text() == before


def test_a_fold_still_training_is_not_a_member(two_seeds: list[Path], tmp_path, capsys) -> None:
    (two_seeds[1] / "fold_1" / "result.json").unlink()  # as while fold 1 still trains
    out = tmp_path / "e"
    summary = dispatch(["ensemble", *map(str, two_seeds), "--out", str(out)])
    assert summary["least_angle/wa"]["n"] == 1 and not (out / "fold_1").exists()
    assert "fold(s) [1] left out (not in every run)" in capsys.readouterr().out


def test_a_folder_without_trained_runs_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["ensemble", str(tmp_path), "--out", str(tmp_path / "e")]) == 1
    assert "no trained run" in capsys.readouterr().err


def test_a_cv_keeps_each_folds_answers(two_seeds: list[Path]) -> None:
    split = json.loads((two_seeds[0] / "fold_0" / "split.json").read_text())
    with (two_seeds[0] / "fold_0" / "answers.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    kept = {(r["checkpoint"], r["part"]) for r in rows}
    assert kept == {(c, p) for c in ("best.ckpt", "last.ckpt") for p in ("val", "test")}
    assert len(rows) == 2 * (len(split["val"]) + len(split["test"]))
    cosines = [float(v) for k, v in rows[0].items() if k.startswith("cosine/")]
    assert len(cosines) == 8 and all(-1.0 <= c <= 1.0 for c in cosines)  # eight emotions


def test_trainings_whose_checkpoints_are_gone_answer_from_their_answers(
    two_seeds: list[Path], tmp_path: Path, capsys
) -> None:
    with_checkpoints = dispatch(["ensemble", *map(str, two_seeds), "--out", str(tmp_path / "a")])
    for seed in two_seeds:  # as in a results folder committed without its checkpoints
        for fold in seed.glob("fold_*"):
            shutil.rmtree(fold / "checkpoints")
    kept = dispatch(["ensemble", *map(str, two_seeds), "--out", str(tmp_path / "b")])
    for key in ("least_angle/wa", "least_angle/ua", "softmax/wa"):
        assert kept[key]["mean"] == pytest.approx(with_checkpoints[key]["mean"]), key
    crops = ["ensemble", str(two_seeds[0]), "--eval-crops", "2", "--out", str(tmp_path / "c")]
    assert main(crops) == 1
    assert "--eval-crops 2 needs checkpoints/best.ckpt (gone" in capsys.readouterr().err


def test_a_fold_finished_before_answers_were_kept_gets_them(cv_args, two_seeds) -> None:
    answers = two_seeds[0] / "fold_1" / "answers.csv"
    before = answers.read_text()
    answers.unlink()
    dispatch(["cv", *cv_args, "--seed_everything", "0", "--out", str(two_seeds[0])])
    assert answers.read_text() == before
    answers.unlink()  # a cv whose config has changed since is refused; `answers` needs none
    assert main(["answers", str(two_seeds[0])]) == 0
    assert answers.read_text() == before


def test_the_mean_cosine_decides() -> None:
    labels = torch.tensor([1])  # the utterance is "sad" (class 1)
    flat = torch.full((1, 2), 0.5)

    def member(cosines: list[float]) -> MemberAnswers:
        return MemberAnswers(Path("run"), ["a.wav"], torch.tensor([cosines]), flat, labels, (0, 0))

    confident_wrong, mildly_right = member([0.9, 0.0]), member([0.0, 0.95])
    assert ensemble_metrics([confident_wrong], 2)["least_angle/wa"] == 0.0
    assert ensemble_metrics([confident_wrong, mildly_right], 2)["least_angle/wa"] == 1.0


def test_a_run_without_checkpoint_or_answers_is_named_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no checkpoints/best.ckpt, nor its val answers"):
        kept_answers(tmp_path, "best.ckpt", "val", None)
    (tmp_path / "answers.csv").write_text("checkpoint,part,path\nbest.ckpt,test,a.wav\n")
    with pytest.raises(ValueError, match="no checkpoints/best.ckpt, nor its val answers"):
        kept_answers(tmp_path, "best.ckpt", "val", None)
