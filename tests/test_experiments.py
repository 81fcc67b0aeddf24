"""Cross-validation and local sweeps: expansion, aggregation and resuming, on the tiny corpus."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from lightning_ser import experiments
from lightning_ser.cli import dispatch

CONF = Path(__file__).parent / "conf" / "tiny.yaml"
FAST = ["--model.softmax_epochs", "1", "--model.triplet_epochs", "1"]


def test_grid_expansion_and_command_rendering() -> None:
    spec = {
        "method": "grid",
        "command": ["${env}", "lightning", "fit", "-c", "conf/ravdess.yaml", "${args}"],
        "parameters": {
            "model.backbone": {"values": ["fc", "lstm"]},
            "model.layers": {"values": [6, 7, 8]},
            "data.split": {"value": "holdout"},
        },
    }
    grid = experiments.expand_sweep(spec)
    assert len(grid) == 6
    assert {"model.backbone": "lstm", "model.layers": 7, "data.split": "holdout"} in grid
    args = experiments.sweep_arguments(spec, grid[0])
    assert args == [
        "-c",
        "conf/ravdess.yaml",
        "--model.backbone=fc",
        "--model.layers=6",
        "--data.split=holdout",
    ]
    assert experiments.slug(grid[0]) == "backbone-fc_layers-6_split-holdout"


def test_only_grid_sweeps_run_locally() -> None:
    with pytest.raises(ValueError, match="grid"):
        experiments.expand_sweep({"method": "bayes", "parameters": {}})


def test_summary_is_mean_and_std_over_folds() -> None:
    results = [{"metrics": {"least_angle/wa": v}} for v in (0.5, 0.7, 0.9)]
    summary = experiments.summarise(results)["least_angle/wa"]
    assert summary["mean"] == pytest.approx(0.7)
    assert summary["std"] == pytest.approx(0.2)
    assert summary["n"] == 3


def test_a_resumed_folds_minutes_say_they_count_from_the_resume(tmp_path: Path) -> None:
    def fold(k: int, resumed_after: int | None) -> dict:
        return {"fold": k, "metrics": {"least_angle/wa": 0.5}, "seconds": 1544.3,
                "resumed_after_epoch": resumed_after}  # fmt: skip

    experiments.write_cv_summary([fold(0, None), fold(1, 29)], tmp_path, "ravdess", "kfold", 2, [])
    rows = [line for line in (tmp_path / "summary.md").read_text().splitlines() if "25.7" in line]
    assert rows[0].startswith("| 0 |") and "| 25.7 |" in rows[0]
    assert rows[1].startswith("| 1 |") and "| 25.7 (after epoch 29) |" in rows[1]


@pytest.fixture
def cli_args(tmp_path: Path, tiny_ravdess: Path, cache_dir: Path, monkeypatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    return ["-c", str(CONF), "--data.root", str(tiny_ravdess), "--data.cache_dir", str(cache_dir)]


def test_table_i_chooses_x_on_validation_and_never_without_it() -> None:
    def run(layers: int, val_best: float | None, wa: float) -> dict:
        return {"model.backbone": "fc", "model.layers": layers, "val_best": val_best,
                "least_angle/wa": wa}  # fmt: skip

    validated = experiments.beside_the_paper([run(6, 0.30, 0.40), run(7, 0.35, 0.20)])
    assert "| FC | 7 | 47.22% | 20.00% | 7 (35.00%) | 20.00% | 2 |" in validated  # not 40%
    unvalidated = experiments.beside_the_paper([run(6, None, 0.40), run(7, None, 0.20)])
    assert "| FC | 7 | 47.22% | 20.00% | none |  | 2 |" in unvalidated  # data.val_size 0


def test_cv_runs_every_fold_aggregates_and_resumes(cli_args, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "cv"
    common = [*cli_args, *FAST, "--data.split", "speaker_kfold", "--data.n_folds", "3"]
    dispatch(["cv", *common, "--out", str(out), "--folds", "0"])
    first = (out / "fold_0" / experiments.RESULT_FILE).stat().st_mtime_ns

    calls = []
    real = experiments.run_experiment

    def counting(args, run_dir, *rest):
        calls.append(run_dir.name)
        return real(args, run_dir, *rest)

    monkeypatch.setattr(experiments, "run_experiment", counting)
    summary = dispatch(["cv", *common, "--out", str(out)])
    assert (out / "fold_0" / experiments.RESULT_FILE).stat().st_mtime_ns == first  # not redone
    assert summary["least_angle/wa"]["n"] == 3
    assert (out / "folds.csv").read_text().count("\n") == 4  # header + 3 folds
    assert "speaker_kfold" in (out / "summary.md").read_text()
    result = json.loads((out / "fold_2" / experiments.RESULT_FILE).read_text())
    assert result["protocol"] == "speaker_kfold" and result["fold"] == 2
    assert 0.0 <= result["metrics"]["least_angle/wa"] <= 1.0
    # every number says where it came from
    assert result["command"].startswith("lightning-ser experiment") and result["commit"]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["command"].startswith("lightning-ser cv") and saved["folds"] == [0, 1, 2]
    assert {"commit", "date", "machine", "commits", "per_fold"} <= set(saved)
    assert [f["fold"] for f in saved["per_fold"]] == [0, 1, 2]
    assert all(f["machine"] == result["machine"] for f in saved["per_fold"])
    assert f"fold(s) 0, 1, 2 trained on {result['machine']}" in (out / "summary.md").read_text()


def mini_sweep(tmp_path: Path, backbones: str, layers: bool = True) -> Path:
    """A grid sweep file over `model.backbone` (`backbones`: "[fc, gru]"), layers 6 by default."""
    sweep = tmp_path / "mini.yaml"
    sweep.write_text(
        "method: grid\n"
        'command: ["${env}", lightning, fit, "${args}"]\n'
        "parameters:\n"
        f"  model.backbone: {{values: {backbones}}}\n"
        + ("  model.layers: {values: [6]}\n" if layers else "")
    )
    return sweep


def test_local_sweep_runs_grid_writes_table_i_and_skips_done(cli_args, tmp_path: Path) -> None:
    sweep = mini_sweep(tmp_path, "[fc, gru]")
    out = tmp_path / "sweep"
    results = dispatch(["sweep", str(sweep), "--out", str(out), *cli_args, *FAST])
    assert len(results) == 2
    table = (out / "results.md").read_text()
    assert "| FC-x | 6 |" in table and "| GRU-x | 6 |" in table
    assert (out / "accuracy_by_depth.png").exists()  # Table I as a plot
    assert "| FC | 7 | 47.22% | not run yet | 6 (" in table  # beside the paper's best x
    assert "val_best" in (out / "results.csv").read_text().splitlines()[0]
    again = dispatch(["sweep", str(sweep), "--out", str(out), "--dry-run", *cli_args])
    assert again == []
    with pytest.raises(ValueError, match="fc_layers-6 was run with other settings"):
        dispatch(["sweep", str(sweep), "--out", str(out), *cli_args])  # without FAST now
    shutil.rmtree(out / "backbone-gru_layers-6")  # as if that run had not finished yet
    partial = dispatch(["sweep", str(sweep), "--out", str(out), "--summarise", *cli_args])
    assert [r["model.backbone"] for r in partial] == ["fc"]  # nothing was trained
    assert (out / "results.md").read_text().startswith("1 of 2 configurations done")
    assert "GRU-x" not in (out / "results.md").read_text()
    with pytest.raises(ValueError, match="no finished runs of .*mini.yaml in .*swep"):
        dispatch(["sweep", str(sweep), "--out", str(tmp_path / "swep"), "--summarise"])  # typo
    assert not (tmp_path / "swep").exists()


@pytest.mark.parametrize("parallel", ["1", "2"])
def test_a_failed_sweep_run_is_named_and_the_others_go_on(cli_args, tmp_path, parallel) -> None:
    sweep = mini_sweep(tmp_path, "[nosuch, fc]")
    out = tmp_path / "sweep"
    command = ["sweep", str(sweep), "--out", str(out), "--parallel", parallel, *cli_args, *FAST]
    with pytest.raises(ValueError, match=r"1 of 2 configurations failed \(backbone-nosuch"):
        dispatch(command)
    said = "Traceback" if parallel == "1" else "error: unknown backbone 'nosuch'"
    assert said in (out / "backbone-nosuch_layers-6" / "log.txt").read_text()
    assert (out / "backbone-fc_layers-6" / experiments.RESULT_FILE).exists()
    assert "1 of 2 configurations done" in (out / "results.md").read_text()
    if parallel == "2":  # each run's output in its log.txt, kept when the run is started again
        with pytest.raises(ValueError, match="1 of 1 configurations failed"):
            dispatch(command)
        log = (out / "backbone-nosuch_layers-6" / "log.txt").read_text()
        assert log.count("[sweep] ") == 2 and "nosuch" in log


def test_a_training_config_given_as_the_sweep_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"tiny.yaml is not a W&B sweep file"):
        dispatch(["sweep", str(CONF)])
    with pytest.raises(ValueError, match=r"nowhere.yaml: no such sweep file"):
        dispatch(["sweep", str(tmp_path / "nowhere.yaml")])


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "parameters:\n  model.layers: {values: [6, 7\n",
            r"bad.yaml: not valid YAML \(line 5, column 1\)",
        ),
        ("parameters:\n  model.layers: 6\n", r"'model.layers': 6 is not a mapping"),
    ],
)
def test_a_malformed_sweep_file_is_named_with_what_is_wrong(tmp_path, text, said) -> None:
    sweep = tmp_path / "bad.yaml"
    sweep.write_text('method: grid\ncommand: ["${env}", lightning, fit, "${args}"]\n' + text)
    with pytest.raises(ValueError, match=said):
        dispatch(["sweep", str(sweep), "--dry-run"])


def test_a_misspelt_grid_key_is_refused_before_any_run(cli_args, tmp_path: Path) -> None:
    sweep = tmp_path / "mini.yaml"
    sweep.write_text(
        'method: grid\ncommand: ["${env}", lightning, fit, "${args}"]\n'
        "parameters:\n  model.layerz: {values: [6, 7]}\n"
    )
    with pytest.raises(ValueError, match=r"mini.yaml: model.layerz: no such setting"):
        dispatch(["sweep", str(sweep), "--out", str(tmp_path / "out"), "--dry-run", *cli_args])
    assert not (tmp_path / "out").exists()


def test_a_grid_parameter_on_the_command_line_is_refused(cli_args, tmp_path: Path) -> None:
    sweep = tmp_path / "mini.yaml"
    sweep.write_text("program: lightning\nparameters:\n  model.layers: {values: [6, 7]}\n")
    with pytest.raises(ValueError, match="--model.layers is a parameter of .*mini.yaml"):
        dispatch(["sweep", str(sweep), *cli_args, "--model.layers=8"])


def test_a_tree_without_git_names_the_commit_it_was_copied_from(tmp_path, monkeypatch) -> None:
    from lightning_ser.provenance import COMMIT_ENV, git_commit

    monkeypatch.delenv(COMMIT_ENV, raising=False)
    assert git_commit(tmp_path) == "unknown"
    monkeypatch.setenv(COMMIT_ENV, "b888917")
    assert git_commit(tmp_path) == "b888917 (copied tree)"


def test_an_interrupted_fold_resumes_from_its_last_checkpoint(cli_args, tmp_path: Path) -> None:
    from lightning_ser.lightning_cli import lightning_main

    run_dir = tmp_path / "cv" / "fold_0"
    schedule = [*cli_args, "--model.softmax_epochs", "2", "--model.triplet_epochs", "1"]
    loggers = ["-c", str(experiments.logger_override(run_dir, False, "cv"))]
    lightning_main(["fit", *schedule, *loggers, "--trainer.max_epochs", "1"])  # killed after 0
    assert not (run_dir / experiments.RESULT_FILE).exists()

    result = experiments.run_experiment([*schedule, "--data.fold", "0"], run_dir)
    assert result["resumed_after_epoch"] == 0 and result["epochs"] == 3
    with open(run_dir / "metrics.csv") as handle:
        trained = [r["epoch"] for r in csv.DictReader(handle) if r.get("train/loss")]
    assert trained == ["0", "1", "2"]  # every epoch once: continued, not started again


def test_a_fold_that_died_before_its_first_checkpoint_starts_again(cli_args, tmp_path) -> None:
    run_dir = tmp_path / "cv" / "fold_0"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"truncated")
    (run_dir / "metrics.csv").write_text("epoch,train/loss\n0,1.0\n")
    result = experiments.run_experiment([*cli_args, *FAST], run_dir)
    assert result["resumed_after_epoch"] is None
    assert (run_dir / "metrics.interrupted-1.csv").read_text() == "epoch,train/loss\n0,1.0\n"


def test_a_run_that_failed_at_start_up_does_not_hold_its_folder(cli_args, tmp_path) -> None:
    run_dir = tmp_path / "exp"
    with pytest.raises((SystemExit, ValueError)):  # `lightning-ser experiment` says it in a line
        experiments.run_experiment([*cli_args, *FAST, "--model.backbone", "transformer"], run_dir)
    assert (run_dir / experiments.ARGS_FILE).exists()  # what was tried, for the record
    result = experiments.run_experiment([*cli_args, *FAST], run_dir)  # corrected: runs
    assert result["args"] == [*cli_args, *FAST]
    recorded = json.loads((run_dir / experiments.ARGS_FILE).read_text())
    assert recorded["args"] == [*cli_args, *FAST]  # the record follows the run that trained


def test_a_cv_run_again_with_other_settings_is_refused(cli_args, tmp_path: Path) -> None:
    """Its finished folds would otherwise stand in the summary under the new command."""
    out = tmp_path / "cv"
    common = [*cli_args, *FAST, "--data.split", "kfold", "--out", str(out), "--folds", "0"]
    dispatch(["cv", *common])
    result = (out / "fold_0" / experiments.RESULT_FILE).read_bytes()
    with pytest.raises(
        ValueError, match=r"fold_0 was run with other settings \(.*--model.layers=8"
    ):
        dispatch(["cv", *common, "--model.layers", "8"])
    assert (out / "fold_0" / experiments.RESULT_FILE).read_bytes() == result
    dispatch(["cv", *common, "--data.cache_dir", str(tmp_path / "elsewhere")])  # not a setting
    assert (out / "fold_0" / experiments.RESULT_FILE).read_bytes() == result  # counted, not redone


def test_a_cv_summary_counts_the_folds_of_earlier_calls_once(cli_args, tmp_path: Path) -> None:
    out = tmp_path / "cv"
    common = [*cli_args, *FAST, "--data.split", "kfold", "--out", str(out)]
    dispatch(["cv", *common, "--folds", "0"])
    log = (out / "fold_0" / "log.txt").read_text()  # what the fold printed, kept beside it
    assert "--data.fold 0" in log and "[test] run folder" in log
    dispatch(["cv", *common, "--folds", "1,1"])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["folds"] == [0, 1]
    assert (out / "summary.md").read_text().startswith("# ravdess: kfold, 2 of 10 fold(s)")


def test_an_edited_config_is_another_setting_the_same_file_named_otherwise_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("tiny.yaml").write_text("model:\n  layers: 6\n")
    first = experiments.settings(["-c", "tiny.yaml"])
    assert experiments.settings(["-c", "./tiny.yaml"]) == first
    Path("tiny.yaml").write_text("# a comment\nmodel: {layers: 6}\ndata: {root: /elsewhere}\n")
    assert experiments.settings(["-c", "tiny.yaml"]) == first  # layout, comments, where: not
    Path("tiny.yaml").write_text("model:\n  layers: 7\n")
    assert experiments.settings(["-c", "tiny.yaml"]) != first
    run_dir = tmp_path / "fold_0"
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save({"epoch": 3}, run_dir / "checkpoints" / "last.ckpt")  # a fit under way
    (run_dir / experiments.ARGS_FILE).write_text(json.dumps({"args": ["-c", "tiny.yaml"]}))
    experiments.refuse_other_settings(run_dir, ["-c", "tiny.yaml"])  # older folders: by path
    (run_dir / experiments.ARGS_FILE).write_text(
        json.dumps({"args": ["-c", "tiny.yaml"], "settings": first})
    )
    with pytest.raises(ValueError, match=r"other settings \(-c=tiny.yaml@\w+ there"):
        experiments.refuse_other_settings(run_dir, ["-c", "tiny.yaml"])


def test_folds_outside_the_protocol_are_refused_before_any_folder(cli_args, tmp_path) -> None:
    out = tmp_path / "cv"
    for folds in ("12", "a"):
        with pytest.raises(ValueError, match=f"--folds {folds}: kfold has folds 0 to"):
            dispatch(
                ["cv", *cli_args, "--data.split", "kfold", "--out", str(out), "--folds", folds]
            )
    assert not out.exists()


def test_experiment_help_makes_no_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert dispatch(["experiment", "--help"]) == 0
    assert "usage: lightning-ser experiment RUN_DIR" in capsys.readouterr().out
    with pytest.raises(ValueError, match="RUN_DIR comes first"):
        dispatch(["experiment", "-c", "conf.yaml"])
    assert list(tmp_path.iterdir()) == []


def test_settings_pair_each_option_with_its_value_in_either_form() -> None:
    same = experiments.settings(["-c", "a.yaml", "--model.margin=-0.2", "--data.seed", "-1"])
    assert same == experiments.settings(
        ["-c", "a.yaml", "--data.seed=-1", "--model.margin", "-0.2"]
    )
    swapped = experiments.settings(["-c", "a.yaml", "--model.margin", "-1", "--data.seed", "-0.2"])
    assert same != swapped
    later_wins = experiments.settings(
        ["-c", "a.yaml", "--model.layers", "7", "--model.layers", "8"]
    )
    assert "--model.layers=8" in later_wins and "--model.layers=7" not in later_wins
    assert experiments.settings(["-c", "a.yaml", "-c", "b.yaml"]) != experiments.settings(
        ["-c", "b.yaml", "-c", "a.yaml"]
    )  # the later config wins, so their order is a setting
    assert experiments.settings(["--data.root", "/here"]) == experiments.settings([])


def test_a_runs_log_keeps_what_it_printed_and_the_terminal_still_shows_it(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from lightning_ser.runlog import logged_to

    monkeypatch.setattr(logging.getLogger(), "handlers", [])  # as outside pytest: no handler
    with logged_to(tmp_path, ["fit", "-c", "a.yaml"]):
        print("a line")
        logging.getLogger("lightning_ser.data").warning("a warning")
    with pytest.raises(RuntimeError), logged_to(tmp_path, ["fit"]):
        raise RuntimeError("broke")
    log = (tmp_path / "log.txt").read_text()
    assert "fit -c a.yaml" in log and "a line" in log and "a warning" in log
    assert "RuntimeError: broke" in log and log.count("] fit") == 2  # appended
    shown = capsys.readouterr()
    assert "a line" in shown.out and "a warning" in shown.err


def test_a_sweep_stopped_by_sigterm_stops_instead_of_starting_the_next_run(
    cli_args, tmp_path, monkeypatch
) -> None:
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    sweep = mini_sweep(tmp_path, "[fc, gru]", layers=False)
    started = []

    def killed(args, run_dir, **_):  # Lightning's exit after `kill`: a SystemExit of status 0
        started.append(run_dir.name)
        raise SIGTERMException

    monkeypatch.setattr(experiments, "run_experiment", killed)
    with pytest.raises(SIGTERMException):
        dispatch(["sweep", str(sweep), "--out", str(tmp_path / "sweep"), *cli_args, *FAST])
    assert started == ["backbone-fc"]
