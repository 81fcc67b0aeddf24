"""What a user meets around the core: run folders that never overwrite, refused evaluations on
the wrong split, kept logs, and one-line errors. Each case failed before its fix."""

from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

import pytest
import torch

from lightning_ser.cli import main

CONF = Path(__file__).parent / "conf" / "tiny.yaml"
SHORT = ["--model.softmax_epochs", "1", "--model.triplet_epochs", "1"]


@pytest.fixture
def cli(tmp_path: Path, tiny_ravdess: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """`lightning SUBCOMMAND -c tiny.yaml ...` in a fresh folder; returns the exit status."""
    monkeypatch.chdir(tmp_path)

    def call(subcommand: str, *extra: str, root: Path | str = tiny_ravdess) -> int:
        args = [subcommand, "-c", str(CONF), "--data.root", str(root)]
        return main([*args, "--data.cache_dir", str(cache_dir), *extra])

    return call


def rows(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_every_fit_gets_its_own_run_folder(cli, tmp_path: Path, capsys) -> None:
    assert cli("fit", *SHORT) == 0
    assert cli("fit", *SHORT, "--data.split", "kfold", "--data.fold", "3") == 0
    assert cli("fit", *SHORT) == 0
    out = capsys.readouterr().out
    runs = tmp_path / "runs" / "ravdess"
    for folder in ("holdout/version_0", "holdout/version_1", "kfold/fold_3/version_0"):
        assert (runs / folder / "checkpoints" / "best.ckpt").exists(), folder
        assert f"run folder: runs/ravdess/{folder}" in out
    assert "best checkpoint:" in out


def test_test_best_uses_the_newest_run_and_prints_the_metrics(cli, tmp_path: Path, capsys) -> None:
    cli("fit", *SHORT)
    cli("fit", *SHORT)
    capsys.readouterr()
    assert cli("test", "--ckpt_path", "best") == 0
    out = capsys.readouterr().out
    assert "run folder: runs/ravdess/holdout/version_1" in out
    assert "[test] least_angle/wa" in out and "%" in out
    assert (tmp_path / "runs/ravdess/holdout/version_1/report/report.md").exists()
    assert not (tmp_path / "runs/ravdess/holdout/version_0/report").exists()


def test_a_second_fit_into_a_named_run_folder_is_refused(cli, tmp_path: Path, capsys) -> None:
    assert cli("fit", *SHORT, "--run_dir", "mine") == 0
    run = tmp_path / "mine"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert cli("fit", *SHORT, "--run_dir", "mine") == 1
    assert "--run_dir mine already holds a run" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert cli("fit", *SHORT, "--run_dir", "mine", "--ckpt_path", "last") == 0  # resuming is fine


def test_evaluation_and_resumes_keep_the_record_of_training(cli, tmp_path: Path, capsys) -> None:
    """config.yaml, hparams.yaml and split.json say how the run trained; `test`, a resume and
    a refused resume write their own files beside them."""
    cli("fit", *SHORT, "--data.batch_size", "16")
    run = tmp_path / "runs/ravdess/holdout/version_0"
    record = {
        name: (run / name).read_bytes() for name in ("config.yaml", "hparams.yaml", "split.json")
    }
    assert cli("test", "--ckpt_path", "best") == 0
    last = str(run / "checkpoints/last.ckpt")
    assert cli("fit", *SHORT, "--ckpt_path", last, "--model.channels", "12") == 1  # refused
    assert cli("fit", *SHORT, "--ckpt_path", last, "--data.split", "kfold") == 1  # refused
    assert "start a new fit without --ckpt_path" in capsys.readouterr().err  # no evaluate_elsewhere
    assert {name: (run / name).read_bytes() for name in record} == record
    assert (run / "test_config.yaml").exists() and (run / "test_hparams.yaml").exists()
    assert (run / "resume_config.yaml").exists()


def test_fit_from_the_best_checkpoint_into_its_own_run_is_refused(cli, tmp_path, capsys) -> None:
    """It would retrain the epochs after the best one over the run's last.ckpt and log."""
    cli("fit", *SHORT)
    run = tmp_path / "runs/ravdess/holdout/version_0"
    before = (run / "checkpoints/last.ckpt").read_bytes(), (run / "metrics.csv").read_text()
    for ckpt in ("best", str(run / "checkpoints/best.ckpt")):
        assert cli("fit", *SHORT, "--ckpt_path", ckpt) == 1
        assert "a run resumes from its last.ckpt" in capsys.readouterr().err
    assert (
        (run / "checkpoints/last.ckpt").read_bytes(),
        (run / "metrics.csv").read_text(),
    ) == before
    best = str(run / "checkpoints/best.ckpt")
    assert cli("fit", *SHORT, "--ckpt_path", best, "--run_dir", "from_best") == 0  # a new folder
    assert (tmp_path / "from_best" / "config.yaml").exists()  # a new run's own record


def test_ctrl_c_during_fit_says_how_to_resume(cli, tmp_path: Path, capsys, monkeypatch) -> None:
    """Lightning stops the fit itself and exits with status 1, without a word on resuming."""
    from lightning_ser.module import EmotionEmbeddingModule

    def pressed(self) -> None:
        if self.current_epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(EmotionEmbeddingModule, "on_train_epoch_end", pressed, raising=False)
    handler = signal.getsignal(signal.SIGINT)  # Lightning ignores Ctrl-C while it shuts down
    try:
        assert cli("fit", "--trainer.max_epochs", "4") == 130
    finally:
        signal.signal(signal.SIGINT, handler)
    run = tmp_path / "runs/ravdess/holdout/version_0"
    last = Path("runs/ravdess/holdout/version_0/checkpoints/last.ckpt")
    assert f"--ckpt_path {last} resumes it" in capsys.readouterr().err
    assert (run / "checkpoints/last.ckpt").exists() and (run / "metrics.csv").exists()


def test_sigterm_during_fit_exits_143_and_says_how_to_resume(cli, tmp_path, capsys, monkeypatch):
    """`kill`, `docker stop` or a batch system's limit: Lightning stops after the batch with a
    SystemExit whose status is 0; a scheduler must not take the stopped training for finished."""
    from lightning_ser.module import EmotionEmbeddingModule

    def killed(self) -> None:
        if self.current_epoch == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning's own handler catches it

    monkeypatch.setattr(EmotionEmbeddingModule, "on_train_epoch_end", killed, raising=False)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        assert cli("fit", "--trainer.max_epochs", "4") == 143
    finally:
        signal.signal(signal.SIGTERM, handler)
    last = Path("runs/ravdess/holdout/version_0/checkpoints/last.ckpt")
    said = capsys.readouterr().err
    assert f"stopped by SIGTERM; the same command with --ckpt_path {last} resumes it" in said
    assert "Traceback" not in said and (tmp_path / last).exists()
    monkeypatch.setattr(EmotionEmbeddingModule, "on_train_epoch_end", lambda self: None)
    assert cli("fit", "--trainer.max_epochs", "4", "--ckpt_path", str(last)) == 0  # resumed


def test_ctrl_c_during_a_cv_says_to_run_the_cv_again() -> None:
    from lightning_ser.cli import interrupted

    for command in ("cv", "sweep"):
        said = interrupted(command)
        assert f"the same {command} command resumes it" in said and "--ckpt_path" not in said
    assert interrupted("cv", 143).startswith("lightning-ser: stopped by SIGTERM; the same cv")


def test_a_second_config_replacing_the_callbacks_keeps_the_checkpoints(cli, tmp_path) -> None:
    """Lists replace lists when -c files compose; best.ckpt and last.ckpt are the run's own."""
    patient = tmp_path / "patient.yaml"
    patient.write_text(
        "trainer:\n  callbacks:\n    - class_path: lightning_ser.callbacks.StageEarlyStopping\n"
        "      init_args: {monitor: val/least_angle/wa, patience: 1000}\n"
    )
    assert cli("fit", "-c", str(patient), *SHORT) == 0
    saved = tmp_path / "runs/ravdess/holdout/version_0/checkpoints"
    assert sorted(p.name for p in saved.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert cli("test", "-c", str(patient), "--ckpt_path", "best") == 0


def test_run_dir_names_the_folder(cli, tmp_path: Path, capsys) -> None:
    assert cli("fit", *SHORT, "--run_dir", "elsewhere/mine") == 0
    assert (tmp_path / "elsewhere/mine/checkpoints/last.ckpt").exists()
    (tmp_path / "notes.txt").write_text("kept")
    capsys.readouterr()
    assert cli("fit", *SHORT, "--run_dir", "notes.txt") == 1
    assert "--run_dir notes.txt is a file; name a folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "kept"


def test_testing_on_another_split_is_refused_unless_asked(cli, tmp_path: Path, capsys) -> None:
    cli("fit", *SHORT)
    run = tmp_path / "runs/ravdess/holdout/version_0"
    best = str(run / "checkpoints/best.ckpt")
    split_before = (run / "split.json").read_text()
    capsys.readouterr()
    assert cli("test", "--ckpt_path", best, "--data.split", "kfold") == 1
    err = capsys.readouterr().err
    assert "trained on ravdess holdout fold 0" in err and "--evaluate_elsewhere" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert cli("test", "--ckpt_path", best, "--data.seed", "5") == 1  # another draw: refused
    assert (run / "split.json").read_text() == split_before  # never rewritten by evaluation
    assert cli("test", "--ckpt_path", best, "--data.seed", "5", "--evaluate_elsewhere", "true") == 0
    assert "evaluated on another split" in (run / "report" / "report.md").read_text()
    assert cli("predict", "--ckpt_path", best, "--data.seed", "5") == 1  # predict as test
    assert not (run / "test_predictions.csv").exists()
    assert (
        cli("predict", "--ckpt_path", best, "--data.seed", "5", "--evaluate_elsewhere", "true") == 0
    )
    assert (run / "test_predictions_elsewhere.csv").exists()
    saved = torch.load(best, weights_only=True)
    assert saved["split"]["protocol"] == "holdout" and len(saved["split"]["digest"]) == 16


def test_a_checkpoint_is_never_fed_other_features_than_it_trained_on(cli, tmp_path, capsys) -> None:
    cli("fit", *SHORT, "--data.features.fixed_seconds", "1.0")
    best = str(tmp_path / "runs/ravdess/holdout/version_0/checkpoints/best.ckpt")
    capsys.readouterr()
    assert cli("test", "--ckpt_path", best) == 1  # the config's features: variable lengths
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fixed_seconds=1.0 (data: None)" in err[0]
    assert cli("test", "--ckpt_path", best, "--data.features.fixed_seconds", "1.0") == 0


def test_resuming_keeps_the_rows_of_earlier_epochs(cli, tmp_path: Path) -> None:
    cli("fit", "--trainer.max_epochs", "3")
    run = tmp_path / "runs/ravdess/holdout/version_0"
    before = rows(run / "metrics.csv")
    assert cli("fit", "--ckpt_path", str(run / "checkpoints/last.ckpt")) == 0
    after = rows(run / "metrics.csv")
    epochs = {r["epoch"] for r in after}
    assert len(after) > len(before) and {"0", "1", "2", "3"} <= epochs


def test_a_failed_start_keeps_the_metrics(cli, tmp_path: Path) -> None:
    cli("fit", *SHORT)
    run = tmp_path / "runs/ravdess/holdout/version_0"
    before = (run / "metrics.csv").read_text()
    assert cli("fit", "--ckpt_path", str(run / "checkpoints/lats.ckpt")) == 1
    assert (run / "metrics.csv").read_text() == before


def test_last_checkpoint_is_written_after_every_epoch(cli, tmp_path: Path) -> None:
    assert cli("fit", "--trainer.max_epochs", "3", "--trainer.check_val_every_n_epoch", "2") == 0
    last = torch.load(
        tmp_path / "runs/ravdess/holdout/version_0/checkpoints/last.ckpt", weights_only=True
    )
    assert last["epoch"] == 2  # the third epoch, which ran no validation


@pytest.mark.parametrize(
    ("args", "root", "expected"),
    [
        ([], "/no/such/corpus", "/no/such/corpus"),
        (["--data.corpus", "nosuch"], None, "nosuch"),
        (["--data.split", "speaker_kfold", "--data.n_folds", "10"], None, "data.n_folds=10"),
        (["--data.split", "kfold", "--data.fold", "12"], None, "data.fold=12"),
        (["--ckpt_path", "missing.ckpt"], None, "missing.ckpt"),
        (
            ["--model.mixup_alpha", "-1"],
            None,
            "lightning-ser: error: model.mixup_alpha must be >= 0",
        ),
        (
            ["--data.features.fixed_seconds", "0.01"],
            None,
            "lightning-ser: error: bad feature setting: fixed_seconds=0.01",
        ),
        (["--model.layer", "7"], None, "error: model.layer: no such setting"),
        (
            ["--trainer.max_epochs", "abc"],
            None,
            "trainer.max_epochs: expected int (or null), got abc",
        ),
        (["--data.split", "kfld"], None, "data.split: expected one of 'holdout', 'kfold'"),
        (["--data.features.n_mfcc", "x"], None, "data.features.n_mfcc: expected int, got x"),
        (["--model.miner", "nonsense"], None, "model.miner: expected one of 'semihard'"),
        (["--model", "NoSuchModule"], None, "model: no such class 'NoSuchModule'"),
        (["-c", "no/such.yaml"], None, "no/such.yaml"),
        (
            ["-c", str(Path(__file__).parent / "conf" / "broken.yaml")],
            None,
            "broken.yaml: not valid YAML (line 4",
        ),
    ],
)
def test_mistakes_end_in_one_line(cli, tmp_path: Path, capsys, args, root, expected) -> None:
    status = cli("fit", *args) if root is None else cli("fit", *args, root=root)
    err = capsys.readouterr().err
    assert status == 1
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    runs = tmp_path / "runs"  # a failed start leaves no empty folder behind, nor its parents
    assert not runs.exists() or all(any(d.iterdir()) for d in runs.rglob("*") if d.is_dir()), err


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluation_without_a_checkpoint_is_refused(
    cli, tmp_path: Path, capsys, subcommand
) -> None:
    """It would evaluate an untrained network, and write its report into the newest run."""
    cli("fit", *SHORT)
    report = tmp_path / "runs/ravdess/holdout/version_0/report"
    assert cli("test", "--ckpt_path", "best") == 0
    before = {p.name: p.read_bytes() for p in report.iterdir() if p.is_file()}
    capsys.readouterr()
    assert cli(subcommand) == 1
    assert (
        f"{subcommand} needs --ckpt_path best, last or a checkpoint file" in capsys.readouterr().err
    )
    assert {p.name: p.read_bytes() for p in report.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("case", ["truncated", "malicious"])
def test_bad_checkpoints_end_in_one_line_without_torch_advice(
    cli, tmp_path: Path, capsys, case: str
) -> None:
    cli("fit", *SHORT)
    good = tmp_path / "runs/ravdess/holdout/version_0/checkpoints/best.ckpt"
    bad = tmp_path / f"{case}.ckpt"
    if case == "truncated":
        bad.write_bytes(good.read_bytes()[:3000])
    else:
        torch.save({"state_dict": {}, "payload": Path("/tmp")}, bad)  # a class that runs code
    capsys.readouterr()
    assert cli("test", "--ckpt_path", str(bad)) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "weights_only=False" not in err and "Traceback" not in err
    if case == "malicious":
        assert "would run code" in err


def test_debug_shows_the_traceback(cli) -> None:
    with pytest.raises(Exception, match="nosuch"):
        cli("fit", "--data.corpus", "nosuch", "--debug")


def test_a_symlinked_emotion_folder_is_data_like_any_other(tmp_path: Path, tone_writer) -> None:
    from lightning_ser.data.corpora import load_corpus

    store = tmp_path / "elsewhere" / "sad"
    tone_writer(store / "s1.wav")
    root = tmp_path / "corpus"
    tone_writer(root / "happy" / "h1.wav")
    (root / "sad").symlink_to(store, target_is_directory=True)
    (root / "happy" / "again").symlink_to(root, target_is_directory=True)  # a loop ends
    labels = sorted(u.label for u in load_corpus("folder", root))
    assert labels == ["happy", "sad"]


def test_manifest_labels_differing_only_in_case_are_one_emotion(
    tmp_path: Path, tone_writer, caplog
) -> None:
    from lightning_ser.data.corpora import load_corpus

    for name in ("a", "b", "c"):
        tone_writer(tmp_path / f"{name}.wav")
    (tmp_path / "manifest.csv").write_text("path,label\na.wav,Anger\nb.wav,anger\nc.wav,Calm\n")
    with caplog.at_level("WARNING"):
        labels = [u.label for u in load_corpus("manifest", tmp_path)]
    assert labels == ["anger", "anger", "calm"]
    assert "Anger / anger -> anger" in caplog.text


def test_skipped_files_are_all_counted(tmp_path: Path, tone_writer, cache_dir: Path) -> None:
    from lightning_ser.data.datamodule import EmotionDataModule

    for actor in (1, 2):
        for emotion in ("01", "03"):
            tone_writer(tmp_path / f"Actor_0{actor}" / f"03-01-{emotion}-01-01-01-0{actor}.wav")
    (tmp_path / "Actor_01" / "badly-named.wav").write_bytes(b"x")
    (tmp_path / "Actor_02" / "03-01-05-01-01-01-02.wav").write_text("not audio")
    dm = EmotionDataModule(
        root=str(tmp_path), cache_dir=str(cache_dir), on_bad_file="skip", progress=False, workers=1
    )
    summary = dm.summary()
    assert summary["skipped_files"] == 2 and summary["utterances"] == 4
    assert {p.rsplit("/", 1)[-1] for p, _ in dm.skipped_files} == {
        "badly-named.wav", "03-01-05-01-01-01-02.wav",
    }  # fmt: skip


def test_a_checkpoint_of_the_previous_format_still_tests(cli, tmp_path: Path) -> None:
    cli("fit", *SHORT)
    best = tmp_path / "runs/ravdess/holdout/version_0/checkpoints/best.ckpt"
    ckpt = torch.load(best, weights_only=True)
    ckpt["state_dict"] = {k.removeprefix("embedder."): v for k, v in ckpt["state_dict"].items()}
    ckpt["lightning_ser_format"] = 1
    for key in ("embedder", "split"):
        ckpt.pop(key)
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    assert cli("test", "--ckpt_path", str(old)) == 0


def test_ckpt_path_last_resumes_the_newest_run(cli, tmp_path: Path, capsys) -> None:
    cli("fit", "--trainer.max_epochs", "2")
    capsys.readouterr()
    assert cli("fit", "--ckpt_path", "last") == 0
    assert "run folder: runs/ravdess/holdout/version_0" in capsys.readouterr().out
    assert not (tmp_path / "runs/ravdess/holdout/version_1").exists()


def test_two_runs_never_share_a_version(tmp_path: Path) -> None:
    from lightning_ser import runs

    first = runs.claim(tmp_path / "x" / "version_0")
    second = runs.claim(tmp_path / "x" / "version_0")  # started at the same time: taken
    assert (first.name, second.name) == ("version_0", "version_1")


def test_only_launched_ranks_inherit_the_run_folder(cli, tmp_path: Path, monkeypatch, capsys):
    """Rank 0 itself runs with LOCAL_RANK=0 after a DDP launch: it must choose afresh."""
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("LIGHTNING_SER_RUN_DIR", str(tmp_path / "stale"))
    assert cli("fit", *SHORT) == 0
    assert "run folder: runs/ravdess/holdout/version_0" in capsys.readouterr().out


def test_resuming_from_a_checkpoint_file_keeps_the_configs_optimiser(cli, tmp_path: Path) -> None:
    # the checkpoint's saved hyperparameters hold no optimiser: applied over the config, they
    # turned an Adam run into SGD, which then crashed on Adam's state (KeyError: 'momentum')
    adam = ["--model.optimizer", "torch.optim.Adam", "--model.optimizer.lr", "0.01"]
    assert cli("fit", *adam, "--model.softmax_epochs", "2", "--model.triplet_epochs", "0") == 0
    last = tmp_path / "runs/ravdess/holdout/version_0/checkpoints/last.ckpt"
    resumed = [*adam, "--model.softmax_epochs", "2", "--model.triplet_epochs", "1"]
    assert cli("fit", *resumed, "--ckpt_path", str(last)) == 0
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 3  # epoch 2 ends the softmax stage, epoch 3 is the metric stage
    assert state["stage"] == {"name": "triplet", "start_epoch": 3}
    assert "exp_avg" in state["optimizer_states"][0]["state"][0]  # still Adam


def test_a_checkpoint_of_another_network_is_refused_in_one_line(
    cli, tmp_path: Path, capsys
) -> None:
    assert cli("fit", *SHORT) == 0
    last = tmp_path / "runs/ravdess/holdout/version_0/checkpoints/last.ckpt"
    capsys.readouterr()
    assert cli("fit", "--ckpt_path", str(last), "--model.channels", "12") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "channels=8 (config: 12)" in err[0], err


def test_resuming_by_an_absolute_path_keeps_the_best_score(cli, tmp_path: Path, recwarn) -> None:
    # the run was saved under `runs/...`; resumed as `/tmp/.../runs/...`, Lightning saw another
    # folder and forgot the best score, so the next validation replaced best.ckpt even if worse
    assert cli("fit", *SHORT, "--trainer.max_epochs", "1") == 0
    last = tmp_path / "runs/ravdess/holdout/version_0/checkpoints/last.ckpt"
    assert cli("fit", *SHORT, "--ckpt_path", str(last)) == 0
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["predict", "--ckpt"], "error: predict: argument --ckpt: expected one argument"),
        (["embed", "--ckpt", "x.ckpt", "a.wav"], "the following arguments are required: -o"),
        (["export", "--ckpt", "x.ckpt", "-o", "e", "--format", "tflite"], "invalid choice"),
        (["sweep"], "error: sweep: the following arguments are required: sweep"),
        (["download"], "error: download: the following arguments are required"),
    ],
)
def test_a_wrong_command_line_of_the_other_commands_is_one_line(argv, said, capsys) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and said in err[0] and "--help` lists the options" in err[0]


@pytest.mark.parametrize(
    ("flag", "source"),
    [("--model.eval_crops=5", "data.eval_crops"), ("--model.init_args.num_classes 4", "data")],
)
def test_a_model_setting_that_the_data_sets_is_refused(cli, flag, source, capsys) -> None:
    assert cli("fit", *SHORT, *flag.split(" ")) == 1
    err = capsys.readouterr().err
    assert f"is set from {source}" in err and len(err.strip().splitlines()) == 1


def test_a_second_test_keeps_the_first_report(cli, tmp_path: Path, capsys) -> None:
    cli("fit", *SHORT)
    run = tmp_path / "runs/ravdess/holdout/version_0"
    assert cli("test", "--ckpt_path", "best") == 0
    first = (run / "report" / "report.md").read_text()
    assert cli("test", "--ckpt_path", "best", "--data.eval_crops", "3") == 0
    assert (run / "report.previous-1" / "report.md").read_text() == first
    assert (run / "test_config.previous-1.yaml").exists() and (run / "test_config.yaml").exists()
    assert "eval_crops: 3" in (run / "test_config.yaml").read_text()
    assert "report.previous-1" in capsys.readouterr().out
    second = (run / "report" / "report.md").read_text()
    capsys.readouterr()
    assert cli("test", "--ckpt_path", "best", "--data.seed", "5") == 1  # refused: another split
    assert "kept in" not in capsys.readouterr().out  # nothing was moved for good
    assert (run / "report" / "report.md").read_text() == second  # put back, nothing lost
    assert "eval_crops: 3" in (run / "test_config.yaml").read_text()
    assert not (run / "report.previous-2").exists()
    rows = list(csv.DictReader((run / "test_metrics.csv").open()))
    assert [row["tested/crops"] for row in rows] == ["0.0", "3.0"]  # each test's row says which
    assert rows[0]["tested/checkpoint_epoch"] == rows[1]["tested/checkpoint_epoch"] != ""


def test_a_checkpoint_file_says_which_network_settings_it_brings(cli, tmp_path, capsys) -> None:
    cli("fit", *SHORT)
    ckpt = tmp_path / "runs/ravdess/holdout/version_0/checkpoints/best.ckpt"
    capsys.readouterr()
    assert cli("test", "--ckpt_path", str(ckpt), "--model.init_args.layers", "7") == 0
    said = "[test] the checkpoint's model settings replace the config's: layers=6 (config: 7)"
    assert said in capsys.readouterr().out.splitlines()  # the network only, not the schedule
