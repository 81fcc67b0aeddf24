"""LightningCLI for this project: `fit`, `validate`, `test` and `predict -c CONFIG`.

The data module's classes, feature settings and crops are linked into the model; every command
works in a run folder (see `runs.py`) that it prints at its start and end; a checkpoint is read
safely before Lightning touches it; `--evaluate_elsewhere` allows evaluating a checkpoint on
another split. `lightning_main(args)` runs in-process, so tests drive the real CLI.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import shutil
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import torch
import yaml
from pytorch_lightning.cli import LightningCLI

from . import runs
from .data.datamodule import EmotionDataModule
from .embedder import Embedder
from .inference.files import write_predictions
from .inference.model import Prediction
from .module import EmotionEmbeddingModule

#: Hands the run folder chosen by rank 0 to the DDP ranks its launcher starts.
RUN_DIR_ENV = "LIGHTNING_SER_RUN_DIR"


#: Model arguments that the data module sets (source, target): they are not settings of their own.
LINKED = (
    ("data.num_classes", "model.init_args.num_classes"),
    ("data.class_names", "model.init_args.class_names"),
    ("data.n_features", "model.init_args.n_features"),
    ("data.window_frames", "model.init_args.crop_frames"),
    # linked, not a model setting: `test --ckpt_path PATH` applies the checkpoint's model
    # hyperparameters over the command line, and this one must stay choosable at test
    ("data.eval_crops", "model.init_args.eval_crops"),
    ("data.normalisation", "model.init_args.feature_normalisation"),
)


class SERCLI(LightningCLI):
    """LightningCLI with the data module's classes linked into the model and run-dir helpers."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        for source, target in LINKED:
            parser.link_arguments(source, target, apply_on="instantiate")
        parser.link_arguments(
            "data.features", "model.init_args.feature_config", asdict, apply_on="instantiate"
        )
        parser.add_argument(
            "--run_dir",
            type=Optional[str],  # noqa: UP045 - jsonargparse reads typing's Optional
            default=None,
            help="the run folder (default: <save_dir>/<corpus>/<split>[/fold_<k>]/version_<n>, "
            "a new version for every fit; test/validate/predict use the checkpoint's folder)",
        )
        parser.add_argument(
            "--evaluate_elsewhere",
            type=bool,
            default=False,
            help="allow test/validate on data or a split other than the checkpoint's (the report "
            "says so); without it such a run is refused",
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="after fit, test the best checkpoint in the same process (W&B sweeps use it)",
        )

    def after_fit(self) -> None:
        callback = self.trainer.checkpoint_callback
        if callback is not None and callback.best_model_path:
            score = callback.best_model_score
            value = f" ({callback.monitor} {100 * float(score):.2f}%)" if score is not None else ""
            print(f"[fit] best checkpoint: {callback.best_model_path}{value}", flush=True)
        if getattr(self, "run_dir", None) is not None:
            print(f"[fit] run folder: {self.run_dir}", flush=True)
        if self.config.fit.get("test_after_fit") and not self.trainer.fast_dev_run:
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path="best")
            self.after_test()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        data = config.data.init_args if "init_args" in config.data else config.data
        if data.get("val_size") == 0 and self.subcommand == "validate":
            raise ValueError("validate: data.val_size=0 leaves no validation part to validate")
        ckpt = config.get("ckpt_path")
        in_its_run = ckpt not in (None, "last") and runs.checkpoint_run_dir(ckpt) is not None
        earlier = ckpt == "best" or (in_its_run and Path(ckpt).name != "last.ckpt")
        if self.subcommand == "fit" and earlier and not config.get("run_dir"):
            raise ValueError(
                f"fit --ckpt_path {ckpt}: a run resumes from its last.ckpt (--ckpt_path last); "
                "training on from an earlier checkpoint would overwrite the epochs after it: "
                "to train on from it in a new folder, pass the checkpoint file "
                "(.../checkpoints/best.ckpt) with --run_dir NEW_FOLDER"
            )
        if self.subcommand in ("validate", "test", "predict") and not config.get("ckpt_path"):
            raise ValueError(
                f"{self.subcommand} needs --ckpt_path best, last or a checkpoint file: without "
                "one it would evaluate an untrained network"
            )
        if self.subcommand:
            self._place_run(config)
        if trainer.get("precision") is None:
            # Mixed precision on a GPU, plain float32 (and no warnings) on a CPU.
            gpu = torch.cuda.is_available() and trainer.get("accelerator") in (
                "auto",
                "gpu",
                "cuda",
            )
            trainer.precision = "16-mixed" if gpu else "32-true"
        if data.get("val_size") == 0:
            without_validation(trainer)  # test / predict: the checkpoint's callbacks, quietly
            if self.subcommand == "fit":
                print(
                    "[fit] data.val_size=0: no validation part; the whole training part trains, "
                    "the last epoch is the model (best.ckpt), and early stopping is off",
                    flush=True,
                )
        if self.subcommand == "fit":
            say_if_the_trainer_cuts_the_stages(trainer, config.model)
        # config.yaml records how a run trained: evaluating it, or a resume (even a refused
        # one), writes <subcommand>_config.yaml / resume_config.yaml beside it instead
        run_dir = getattr(self, "run_dir", None)
        resumed = bool(
            self.subcommand == "fit"
            and config.get("ckpt_path")
            and run_dir is not None
            and (run_dir / "config.yaml").exists()
        )
        record = "resume" if resumed else self.subcommand
        if record != "fit":
            self.save_config_kwargs["config_filename"] = f"{record}_config.yaml"
            loggers = trainer.get("logger")
            for logger in loggers if isinstance(loggers, list) else [loggers]:
                if getattr(logger, "class_path", "").endswith("RunLogger"):
                    logger.init_args.hparams_file = f"{record}_hparams.yaml"
                    if not resumed:  # a resumed fit continues metrics.csv
                        logger.init_args.metrics_file = f"{self.subcommand}_metrics.csv"

    def _place_run(self, config: Any) -> None:
        """Point the run's loggers at its run folder (unless the config fixes a version)."""
        loggers = config.trainer.get("logger")
        loggers = loggers if isinstance(loggers, list) else [loggers]
        run_logger = next(
            (lg for lg in loggers if getattr(lg, "class_path", "").endswith("RunLogger")), None
        )
        if run_logger is None:
            self.run_dir = None
            return
        args = run_logger.init_args
        # a DDP rank started by rank 0's launcher (local rank 1, 2, ...): rank 0 chose the folder
        launched = os.environ.get("LOCAL_RANK", "0") != "0" and RUN_DIR_ENV in os.environ
        fresh = False
        if launched:
            run_dir = Path(os.environ[RUN_DIR_ENV])
        elif config.get("run_dir"):
            run_dir = Path(config.run_dir)
            if run_dir.exists() and not run_dir.is_dir():
                raise ValueError(f"--run_dir {run_dir} is a file; name a folder")
            trained = sorted(run_dir.glob("checkpoints/*.ckpt"))
            if self.subcommand == "fit" and not config.get("ckpt_path") and trained:
                raise ValueError(
                    f"--run_dir {run_dir} already holds a run ({trained[-1].name}): resume it "
                    f"with --ckpt_path {run_dir / 'checkpoints' / 'last.ckpt'}, or name "
                    "another folder"
                )
        elif args.get("version") is not None:
            run_dir = Path(args.save_dir) / (args.get("name") or "") / str(args.version)
        else:
            data = config.data.init_args if "init_args" in config.data else config.data
            run_dir = runs.resolve_run_dir(
                args.save_dir,
                data.corpus,
                data.split,
                data.fold,
                config.get("ckpt_path"),
            )
            fresh = not run_dir.exists()
        if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID") and not launched:
            run_dir = run_dir.with_name(f"{run_dir.name}-{os.environ['WANDB_RUN_ID']}")
        missing = [p for p in reversed(run_dir.parents) if not p.exists()]  # outermost first
        run_dir = runs.claim(run_dir) if fresh else run_dir
        runs.CREATED.extend(missing)  # runs/<corpus>/<split>/ made for this run go with it
        if fresh or not run_dir.exists():
            runs.CREATED.append(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)  # W&B looks for a git root from here
        args.save_dir, args.name, args.version = str(run_dir.parent), "", run_dir.name
        # where files go when Lightning drops the loggers (`fast_dev_run`): the same folder
        config.trainer.default_root_dir = str(run_dir)
        for logger in loggers:
            if getattr(logger, "class_path", "") == "pytorch_lightning.loggers.WandbLogger":
                logger.class_path = "lightning_ser.loggers.RunWandbLogger"  # same arguments
            if getattr(logger, "class_path", "").endswith("WandbLogger"):
                logger.init_args.save_dir = str(run_dir)
                if not logger.init_args.get("name"):
                    logger.init_args.name = str(run_dir)
        self.run_dir = run_dir
        if not launched:
            os.environ[RUN_DIR_ENV] = str(run_dir)  # inherited by the DDP ranks launched later
            print(f"[{self.subcommand}] run folder: {run_dir}", flush=True)

    def _resolve_ckpt(self) -> None:
        """`--ckpt_path best|last` in a new process: the run folder's `checkpoints/<name>.ckpt`
        (the run folder is the newest version that has one, see runs.resolve_run_dir)."""
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") == "last":
            config.ckpt_path = str(Path(self.trainer.log_dir) / "checkpoints" / "last.ckpt")
            return
        if config.get("ckpt_path") != "best":
            return
        callback = self.trainer.checkpoint_callback
        if callback is not None and callback.best_model_path:
            return
        run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        candidate = run_dir / "checkpoints" / "best.ckpt"
        if not candidate.exists():
            raise ValueError(
                f"--ckpt_path best: no best checkpoint at {candidate}; run `fit` with this config "
                "first, or pass the checkpoint file"
            )
        config.ckpt_path = str(candidate)

    def _parse_ckpt_path(self) -> None:
        """`validate`/`test`/`predict --ckpt_path FILE` take the checkpoint's model settings over
        the command line (LightningCLI's behaviour: the network must match the weights). `fit`
        keeps the config's: the hyperparameters saved in a checkpoint hold no optimiser, so
        applying them would resume an Adam run with the default SGD (and crash on its state),
        and a run resumed or fine-tuned from a file may change its training settings on
        purpose; `--ckpt_path last` never applied them, and a file now behaves the same. A
        network that differs from the checkpoint's is refused in one line (the module's
        on_load_checkpoint). Overrides LightningCLI's private hook: no public one exists.
        Where the checkpoint's settings replace other values of the config, one line says which
        about the network (`test --model.backbone lstm --ckpt_path FILE` of a TIM run tests the
        TIM network); training settings (epochs, losses) do not matter to an evaluation."""
        subcommand = self.config.get("subcommand")
        if subcommand == "fit":
            return
        before = self._model_settings(subcommand)
        super()._parse_ckpt_path()
        after = self._model_settings(subcommand)
        linked = {target.rsplit(".", 1)[1] for _, target in LINKED}  # the data's, not settings
        network = set(inspect.signature(Embedder).parameters) - linked  # what the weights fix
        replaced = [
            f"{key}={after[key]!r} (config: {before[key]!r})"
            for key in sorted(network & set(before) & set(after))
            if before[key] != after[key]
        ]
        if replaced:
            print(
                f"[{subcommand}] the checkpoint's model settings replace the config's: "
                + ", ".join(replaced),
                flush=True,
            )

    def _model_settings(self, subcommand: str | None) -> dict[str, Any]:
        """The model's init arguments in the parsed config (empty before a subcommand)."""
        if not subcommand:
            return {}
        model = self.config[subcommand].get("model")
        args = model.get("init_args", model) if model is not None else {}
        return dict(args or {})

    def parse_arguments(self, parser: Any, args: Any) -> None:
        """Parse, then read a given checkpoint safely before Lightning does, so that a missing,
        truncated or code-carrying file ends in one clear line (see inference.checkpoint)."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path and path not in ("best", "last", "hpc", "registry"):
            from .inference.checkpoint import read_checkpoint

            read_checkpoint(path)

    def before_fit(self) -> None:
        self._resolve_ckpt()
        self.model.evaluate_elsewhere = bool(self.config_init["fit"].evaluate_elsewhere)

    def _before_evaluation(self) -> None:
        self._resolve_ckpt()
        self.model.evaluate_elsewhere = bool(self.config_init[self.subcommand].evaluate_elsewhere)

    def before_validate(self) -> None:
        self._before_evaluation()

    def before_test(self) -> None:
        self._before_evaluation()
        self._keep_the_earlier_test()

    def _keep_the_earlier_test(self) -> None:
        """A second `test` of a run (other crops, another checkpoint) moves the first one's
        `report/`, `test_config.yaml` and `test_hparams.yaml` to `*.previous-<n>` instead of
        overwriting them (`test_metrics.csv` keeps a row per test); a test that is refused or
        fails puts them back (`_run_subcommand`)."""
        run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        earlier = [run_dir / n for n in ("report", "test_config.yaml", "test_hparams.yaml")]
        if not self.trainer.is_global_zero or not earlier[0].is_dir():
            return
        # said once the test has run (`after_test`): a refusal puts them back
        self._moved_aside = runs.keep_earlier(earlier)

    def _run_subcommand(self, subcommand: str) -> None:
        self._moved_aside: list[tuple[Path, Path]] = []
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            for path, aside in self._moved_aside:  # the failed test's files give way
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
                aside.rename(path)
            raise

    def before_predict(self) -> None:
        self._before_evaluation()

    def after_predict(self) -> None:
        """Write the test part's predictions into the run folder. Each device predicts its own
        utterances, so on several devices each writes its own file (`...rank<r>.csv`)."""
        batches = self.trainer.predict_loop.predictions or []
        if not batches:  # ddp_spawn: the predictions stayed in the spawned processes
            print("[predict] no predictions came back to this process: nothing written")
            return
        stem = "test_predictions" + ("_elsewhere" if self.model.evaluated_elsewhere else "")
        world, rank = self.trainer.world_size, self.trainer.global_rank
        name = f"{stem}.rank{rank}.csv" if world > 1 else f"{stem}.csv"
        out = Path(self.trainer.log_dir or ".") / name
        count = write_test_predictions(batches, self.datamodule, out)
        part = f" (this device's share of {world}: one file per device)" if world > 1 else ""
        print(
            f"[predict] {count} test utterances predicted{part}: {out} (true label in its last "
            "column); `lightning-ser predict --ckpt CKPT FILES... -o CSV` predicts other audio",
            flush=True,
        )

    def after_test(self) -> None:
        for path, aside in getattr(self, "_moved_aside", []):
            if path.name == "report":
                print(f"[test] the earlier test's report is kept in {aside}", flush=True)
        metrics = self.trainer.callback_metrics
        head = ", ".join(
            f"{key.removeprefix('test/')} {100 * float(metrics[key]):.2f}%"
            for key in ("test/least_angle/wa", "test/least_angle/ua", "test/softmax/wa")
            if key in metrics
        )
        print(f"[test] {head}", flush=True)
        report = Path(self.trainer.log_dir or ".") / "report" / "report.md"
        if report.exists():
            print(f"[test] report: {report}", flush=True)


def write_test_predictions(
    batches: list[dict[str, torch.Tensor]], datamodule: EmotionDataModule, out: Path
) -> int:
    """Write `predict_step`'s outputs on the test part as a predictions CSV (the columns of
    `lightning-ser predict -o`, plus each utterance's true `label`); returns the row count."""
    names = datamodule.class_names
    utterances = datamodule.utterances
    preds, labels = [], []
    for batch in batches:
        for k, index in enumerate(batch["index"].tolist()):
            angles = batch["angles"][k].tolist()
            least = int(batch["prediction"][k])
            utterance = utterances[index]
            preds.append(
                Prediction(
                    path=utterance.path,
                    status="ok",
                    emotion=names[least],
                    angles=dict(zip(names, angles, strict=True)),
                    cosine=math.cos(math.radians(angles[least])),
                    softmax_emotion=names[int(batch["softmax_prediction"][k])],
                    frames=int(batch["frames"][k]),
                )
            )
            labels.append(utterance.label)
    write_predictions(preds, out, class_names=names, labels=labels)
    return len(preds)


def without_validation(trainer: Any) -> None:
    """Train on the whole training part (`data.val_size: 0`, scikit-learn's `refit`): no
    validation loop, and the checkpoints that a validation metric would select (`best.ckpt`)
    hold the last epoch instead. The schedule must have been fixed on validation beforehand;
    early stopping, which needs validations, does nothing."""
    trainer.limit_val_batches = 0
    for callback in trainer.get("callbacks") or []:
        args = callback.get("init_args") if hasattr(callback, "get") else None
        if str(callback.get("class_path", "")).endswith("ModelCheckpoint") and args is not None:
            if args.get("monitor"):
                args.monitor = None
                args.save_on_train_epoch_end = True


def _drop_tips(record: logging.LogRecord) -> bool:
    """Logging filter: drop Lightning's product tips (e.g. the litlogger one)."""
    return "Tip:" not in str(record.msg)


def refuse_linked_settings(args: list[str]) -> None:
    """Refuse, in one line, a command-line value for a model argument that the data module
    sets (it would be accepted and then silently replaced by the data's value)."""
    linked = {t.replace(".init_args", ""): s for s, t in LINKED}
    linked["model.feature_config"] = "data.features"
    for arg in args:
        key = arg.partition("=")[0].removeprefix("--").replace(".init_args", "")
        if key in linked:
            raise ValueError(f"{key} is set from {linked[key]}: give --{linked[key]} instead")


def check_config_files(args: list[str]) -> None:
    """Refuse, in one line naming the file and line, a `-c` file that is not valid YAML
    (jsonargparse's own error names only "<unicode string>")."""
    for flag, value in zip(args, args[1:], strict=False):
        if flag in ("-c", "--config") and Path(value).is_file():
            try:
                yaml.safe_load(Path(value).read_text())
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                problem = getattr(err, "problem", None) or str(err).splitlines()[0]
                raise ValueError(f"{value}: not valid YAML{where}: {problem}") from None


def lightning_main(args: list[str] | None = None, run: bool = True) -> SERCLI:
    """Run LightningCLI (fit / validate / test / predict) with this project's classes."""
    check_config_files(list(args or []))
    refuse_linked_settings(list(args or []))
    # main() always passes the arguments explicitly (so tests and subcommands share one path);
    # LightningCLI warns whenever sys.argv is not empty at the same time, which is expected here.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    # Noise a user cannot act on: a deprecation inside Lightning, and an advertisement.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_drop_tips)
    return SERCLI(
        EmotionEmbeddingModule,
        EmotionDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        run=run,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        # a parse error raises (cli.main turns it into one line) instead of printing the usage
        parser_kwargs={"exit_on_error": False}
        | {command: {"exit_on_error": False} for command in SERCLI.subcommands()},
    )


def say_if_the_trainer_cuts_the_stages(trainer: Any, model: Any) -> None:
    """One line when `trainer.max_epochs` ends training before the two stages' epoch caps (a
    longer schedule given on the command line under the config's safety cap would otherwise be
    cut short without a word; a deliberately short run just gets the line)."""
    options = model.get("init_args", model)
    max_epochs, softmax, metric = (
        trainer.get("max_epochs"),
        options.get("softmax_epochs"),
        options.get("triplet_epochs"),
    )
    if max_epochs is None and trainer.get("max_steps") in (None, -1):
        max_epochs = 1000  # Lightning's own cap when neither is set
    if None in (max_epochs, softmax, metric) or max_epochs < 0 or max_epochs >= softmax + metric:
        return
    print(
        f"[fit] trainer.max_epochs={max_epochs} ends training before the stages' caps "
        f"({softmax} softmax + {metric} metric epochs): raise it to run the whole schedule",
        flush=True,
    )
