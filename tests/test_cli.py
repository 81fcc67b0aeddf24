"""The command line, run in-process exactly as `lightning ...` runs it, on a synthetic corpus."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from jsonargparse import ArgumentError

from lightning_ser.cli import dispatch

CONF = Path(__file__).parent / "conf" / "tiny.yaml"


@pytest.fixture
def run(tmp_path: Path, tiny_ravdess: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Call the CLI in a fresh working folder with the tiny config and corpus."""
    monkeypatch.chdir(tmp_path)

    def call(subcommand: str, *extra: str):
        args = [subcommand, "-c", str(CONF), "--data.root", str(tiny_ravdess)]
        return dispatch([*args, "--data.cache_dir", str(cache_dir), *extra])

    return call


def metrics_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("fit", "test", "predict", "embed", "export", "cv", "sweep", "cache"):
        assert f"\n  {command} " in out, command


@pytest.mark.parametrize(
    ("command", "expected"),
    [("cache", "--prune"), ("predict", "--ckpt"), ("cv", "runs/cv-<corpus>-<split>")],
)
def test_each_command_has_its_own_help(command, expected, capsys) -> None:
    try:
        dispatch([command, "--help"])
    except SystemExit as done:
        assert done.code in (0, None)
    assert expected in capsys.readouterr().out


def test_print_config_is_complete(run, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("fit", "--print_config")
    printed = capsys.readouterr().out
    for key in ("EmotionEmbeddingModule", "EmotionDataModule", "window_frames", "miner", "margin"):
        assert key in printed


def test_eval_crops_use_the_training_window(run) -> None:
    cli = run("fit", "--trainer.fast_dev_run", "true", "--data.eval_crops", "2")
    assert cli.model.hparams.eval_crops == 2
    assert cli.model.hparams.crop_frames == cli.datamodule.window_frames


def test_fast_dev_run(run, tmp_path: Path) -> None:
    cli = run("fit", "--trainer.fast_dev_run", "true")
    assert cli.trainer.state.finished
    assert not (tmp_path / "split.json").exists()  # Lightning drops the loggers: still the run's
    assert (tmp_path / "runs" / "ravdess" / "holdout" / "version_0" / "split.json").exists()


def test_fit_runs_both_stages_then_test_writes_report(run, tmp_path: Path, capsys) -> None:
    cli = run("fit")
    run_dir = tmp_path / "runs" / "ravdess" / "holdout" / "version_0"
    module = cli.model
    assert module.stage == "triplet"
    assert cli.trainer.current_epoch == 4  # 2 softmax + 2 triplet epochs (the caps)
    assert module.class_names == cli.datamodule.class_names  # linked, never typed twice
    for name in ("config.yaml", "split.json", "metrics.csv", "checkpoints/best.ckpt"):
        assert (run_dir / name).exists(), name
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    split = json.loads((run_dir / "split.json").read_text())
    assert split["protocol"] == "holdout" and not split["speaker_independent"]
    stages = [float(r["stage"]) for r in metrics_rows(run_dir) if r.get("stage")]
    assert stages == [0.0, 0.0, 1.0, 1.0]
    triplet_losses = [float(r["train/triplet"]) for r in metrics_rows(run_dir) if r["stage"]]
    assert all(v >= 0 for v in triplet_losses)

    tested = run("test", "--ckpt_path", "best")
    results = tested.trainer.callback_metrics
    for key in ("test/least_angle/wa", "test/least_angle/ua", "test/softmax/macro_f1"):
        assert 0.0 <= float(results[key]) <= 1.0
    report = (run_dir / "report" / "report.md").read_text()
    assert "holdout" in report
    assert (run_dir / "report" / "angle_matrix.png").exists()

    capsys.readouterr()
    predicted = run("predict", "--ckpt_path", "best")
    batches = predicted.trainer.predict_loop.predictions
    assert sum(len(b["prediction"]) for b in batches) == len(split["test"])
    assert f"[predict] {len(split['test'])} test utterances predicted" in capsys.readouterr().out
    assert batches[0]["angles"].shape[1] == 8
    with open(run_dir / "test_predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    utterances = predicted.datamodule.utterances
    assert [(r["path"], r["label"]) for r in rows] == [
        (utterances[i].path, utterances[i].label) for b in batches for i in b["index"].tolist()
    ]
    assert {(r["path"]) for r in rows} == {utterances[i].path for i in split["test"]}
    first = batches[0]
    assert rows[0]["emotion"] == cli.datamodule.class_names[int(first["prediction"][0])]
    assert float(rows[0][f"angle_{rows[0]['emotion']}"]) == pytest.approx(
        float(first["angles"][0].min()), abs=1e-3
    )

    # the same checkpoint tested over crops: class embeddings are recomputed the same way
    saved = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert saved["class_embeddings_from"] == [0, 0]
    best = str(run_dir / "checkpoints" / "best.ckpt")  # an explicit path: hparams from it
    cropped = run("test", "--ckpt_path", best, "--data.eval_crops", "3")
    window = cropped.datamodule.window_frames
    assert cropped.model.class_embeddings_from == (3, window)
    whole = saved["state_dict"]["embedder.class_embeddings"]
    assert not torch.allclose(cropped.model.class_embeddings.cpu(), whole)
    predicted = run("predict", "--ckpt_path", best, "--data.eval_crops", "3")
    assert predicted.model.class_embeddings_from == (3, window)


def test_rerun_into_same_run_dir_does_not_fail(run) -> None:
    run("fit", "--model.softmax_epochs", "1", "--model.triplet_epochs", "0")
    cli = run("fit", "--model.softmax_epochs", "1", "--model.triplet_epochs", "0")
    assert cli.trainer.state.finished


def test_stage_ends_by_early_stopping_before_its_cap(run, tmp_path: Path) -> None:
    # min_delta 2.0: nothing counts as an improvement, so each stage ends after patience + 1 checks.
    override = tmp_path / "impatient.yaml"
    override.write_text(
        "trainer:\n  callbacks:\n"
        "    - class_path: lightning_ser.callbacks.StageEarlyStopping\n"
        "      init_args: {patience: 1, min_delta: 2.0}\n"
    )
    cli = run(
        "fit", "-c", str(override), "--model.softmax_epochs", "50", "--model.triplet_epochs", "50"
    )
    assert cli.model.stage == "triplet"
    assert cli.model.stage_start_epoch == 2
    assert cli.trainer.current_epoch == 4


def test_resume_from_last_checkpoint_continues_stage_and_schedule(run, tmp_path: Path) -> None:
    run("fit", "--trainer.max_epochs", "3")
    last = tmp_path / "runs" / "ravdess" / "holdout" / "version_0" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    assert state["stage"] == {"name": "triplet", "start_epoch": 2}
    cli = run("fit", "--ckpt_path", str(last))
    assert cli.model.stage == "triplet"
    assert cli.model.stage_start_epoch == 2
    assert cli.trainer.current_epoch == 4
    lrs = [float(r["lr"]) for r in metrics_rows(last.parents[1]) if r.get("lr")]
    assert lrs[-1] == pytest.approx(0.005)  # the end of the triplet stage's linear decay


def test_an_unknown_command_lists_every_command() -> None:
    with pytest.raises(ValueError, match="unknown command 'fitt': one of fit, .*cv, sweep"):
        dispatch(["fitt"])


def test_a_bad_setting_raises_instead_of_printing_the_usage(run, capsys) -> None:
    """The parser raises (`main` turns the error into one line, tests/test_user_faults.py)
    rather than printing 60 lines of usage and exiting with status 2."""
    with pytest.raises(ArgumentError, match="miner"):
        run("fit", "--model.miner", "nonsense")
    assert "usage:" not in capsys.readouterr().err


def test_cache_prune_deletes_caches_of_old_settings_only(
    run, capsys: pytest.CaptureFixture[str]
) -> None:
    run("cache", "--json")
    current = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["cache"])
    name = current.name[: -len("-0123456789abcdef0123.pt")]
    stale = current.with_name(f"{name}-{'ab' * 10}.pt")  # as left by another n_mfcc, say
    stale.write_bytes(b"x" * 2048)
    run("cache", "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["stale_caches"] == 1
    run("cache", "--json", "--prune")
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["pruned"] == [str(stale)] and summary["stale_caches"] == 0
    assert not stale.exists() and current.exists()
    stale.write_bytes(b"x" * 2048)
    run("cache", "--prune")
    assert f"\n  {stale}\n" in capsys.readouterr().out  # the text names what it deleted


def test_cache_without_a_config_says_it_needs_one() -> None:
    with pytest.raises(ValueError, match=r"cache: needs -c CONFIG"):
        dispatch(["cache", "--data.root", "somewhere"])


def test_cache_command_prints_json_summary(run, capsys: pytest.CaptureFixture[str]) -> None:
    run("cache", "--json")
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["utterances"] == 96
    assert summary["speakers"] == 6
    assert summary["emotions"]["neutral"] == 12
    assert summary["features_per_frame"] == 39
    assert summary["speed_caches"] == {}


def test_cache_builds_the_speed_copies_a_fit_will_read(run, capsys) -> None:
    run("cache", "--json", "--data.speed_perturbation", "[0.9]")
    cached = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["speed_caches"]
    assert list(cached) == ["0.9"] and Path(cached["0.9"]).is_file()


def test_cache_prune_keeps_the_speed_copies_this_config_trains_on_only(run, capsys) -> None:
    run("cache", "--json", "--data.speed_perturbation", "[0.9]")
    speed_copy = Path(json.loads(capsys.readouterr().out.splitlines()[-1])["speed_caches"]["0.9"])
    run("cache", "--json", "--prune", "--data.speed_perturbation", "[0.9]")
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["pruned"] == []
    run("cache", "--json", "--data.speed_perturbation", "[1.1]")
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["stale_caches"] == 1  # 0.9's
    run("cache", "--json", "--prune")  # a config without speed perturbation
    pruned = json.loads(capsys.readouterr().out.splitlines()[-1])["pruned"]
    assert len(pruned) == 2 and str(speed_copy) in pruned and not speed_copy.exists()


def test_schedule_needs_no_callbacks_in_the_config(run, tmp_path: Path) -> None:
    """The module brings its stage early stopping and LR monitor; the LR follows the stages."""
    bare = tmp_path / "bare.yaml"
    bare.write_text("trainer:\n  callbacks: []\n")
    cli = run("fit", "-c", str(bare))
    from lightning_ser.callbacks import StageEarlyStopping

    assert any(isinstance(c, StageEarlyStopping) for c in cli.trainer.callbacks)
    run_dir = Path(cli.trainer.log_dir)
    lrs = [float(r["lr"]) for r in metrics_rows(run_dir) if r.get("lr")]
    assert lrs == pytest.approx([0.05, 0.005, 0.05, 0.005])  # two stages, each decaying


def test_validation_reports_at_each_stage_end_and_every_n_validations(run) -> None:
    """What the W&B images show while training: the validation part's embeddings as they evolve."""
    cli = run(
        "fit",
        "--trainer.callbacks+=lightning_ser.callbacks.EmbeddingReport",
        "--trainer.callbacks.at_stage_end=true",
        "--trainer.callbacks.every_n_val_epochs=3",
    )
    reports = Path(cli.trainer.log_dir) / "report_val"
    # stage ends after epochs 1 (softmax cap) and 3 (the end); every 3rd validation: latest/
    assert sorted(p.name for p in reports.iterdir()) == ["epoch_1", "epoch_3", "latest"]
    for folder in reports.iterdir():
        assert (folder / "tsne.png").exists() and (folder / "angle_matrix.png").exists()


def test_the_same_seed_gives_the_same_model(run) -> None:
    """What lets `make run` repeat the README's number: one thread, one seed, the same weights."""
    first = run("fit", "--run_dir", "runs/a", "--model.softmax_epochs", "2")
    second = run("fit", "--run_dir", "runs/b", "--model.softmax_epochs", "2")
    for (name, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_weight_averaging_validates_and_keeps_the_average(run, tmp_path: Path) -> None:
    cli = run("fit", "--model.ema_decay", "0.9", "--trainer.max_epochs", "4")
    run_dir = tmp_path / "runs" / "ravdess" / "holdout" / "version_0"
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    raw, average = best["current_model_state"], best["state_dict"]
    assert any(not torch.equal(raw[k], average[k]) for k in average if "net." in k)
    logged = {int(r["epoch"]): float(r["val/least_angle/wa"])
              for r in metrics_rows(run_dir) if r.get("val/least_angle/wa")}  # fmt: skip
    validated = run("validate", "--ckpt_path", "best")  # the checkpoint holds what was judged
    again = float(validated.trainer.callback_metrics["val/least_angle/wa"])
    assert again == pytest.approx(logged[best["epoch"]], abs=1e-6)
    assert cli.model.hparams.ema_decay == 0.9


@pytest.mark.parametrize("max_epochs", [10, 3])  # training ends with its stages, or earlier
def test_without_a_validation_part_the_last_epoch_is_the_model(
    run, tmp_path: Path, max_epochs: int
) -> None:
    cli = run("fit", "--data.val_size", "0", "--trainer.max_epochs", str(max_epochs))
    run_dir = tmp_path / "runs" / "ravdess" / "holdout" / "version_0"
    assert cli.datamodule.split.val == []
    assert cli.trainer.current_epoch == min(max_epochs, 4)  # 4: both stages to their caps
    assert not any(r.get("val/least_angle/wa") for r in metrics_rows(run_dir))
    best = torch.load(run_dir / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["epoch"] == cli.trainer.current_epoch - 1  # the last, not one a validation chose
    # its class embeddings are those of its own weights over the whole training part
    stored = best["state_dict"]["embedder.class_embeddings"]
    cli.model.refresh_class_embeddings()
    assert torch.allclose(cli.model.class_embeddings.cpu(), stored, atol=1e-6)

    tested = run("test", "--data.val_size", "0", "--ckpt_path", "best")
    assert 0.0 <= float(tested.trainer.callback_metrics["test/least_angle/wa"]) <= 1.0


def test_without_a_validation_part_validate_and_weight_averaging_are_refused(
    run, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="no validation part"):
        run("validate", "--data.val_size", "0", "--ckpt_path", "best")
    with pytest.raises(ValueError, match=r"model\.ema_decay needs a validation part"):
        run("fit", "--data.val_size", "0", "--model.ema_decay", "0.9")


def test_a_trainer_cap_below_the_stages_is_said_at_the_start(run, capsys) -> None:
    """A 500-epoch schedule asked for under the config's cap of 400 must not be cut silently."""
    run("fit", "--trainer.max_epochs", "1")
    said = capsys.readouterr().out
    assert (
        "[fit] trainer.max_epochs=1 ends training before the stages' caps (2 softmax + 2 metric"
        in said
    )
    run("fit", "--trainer.max_epochs", "4")
    assert "ends training before the stages' caps" not in capsys.readouterr().out


def test_lightnings_own_cap_counts_when_max_epochs_is_unset(capsys) -> None:
    from lightning_ser.lightning_cli import say_if_the_trainer_cuts_the_stages

    stages = {"init_args": {"softmax_epochs": 1000, "triplet_epochs": 1000}}
    say_if_the_trainer_cuts_the_stages({"max_epochs": None, "max_steps": -1}, stages)
    assert (
        "trainer.max_epochs=1000 ends training before the stages' caps" in capsys.readouterr().out
    )
    say_if_the_trainer_cuts_the_stages({"max_epochs": None, "max_steps": 50}, stages)
    assert capsys.readouterr().out == ""  # a step cap: not this line's business


def test_a_closed_pipe_ends_quietly(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`lightning-ser ... | head`: once head exits, the next print raises BrokenPipeError."""
    from lightning_ser import cli

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    redirected = []
    monkeypatch.setattr(cli, "dispatch", closed)
    monkeypatch.setattr(cli.os, "dup2", lambda fd, to: redirected.append(to))
    monkeypatch.setattr(cli.sys.stdout, "fileno", lambda: 1, raising=False)
    assert cli.main(["sweep", "x.yaml", "--summarise"]) == 141
    assert redirected == [1] and "error" not in capsys.readouterr().err
