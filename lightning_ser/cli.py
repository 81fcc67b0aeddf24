"""Command line: `lightning` / `lightning-ser` / `python -m lightning_ser`.

`fit`, `validate`, `test` and `predict -c CONFIG` are LightningCLI's; the other subcommands are
tools of this project (`cache`, `download`, `predict --ckpt ...` for Phase III inference, `embed`,
`export`, `cv`, `sweep`). `main(args)` runs in-process, so tests drive the real CLI.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.cli import LightningCLI

from .data.datamodule import EmotionDataModule
from .module import EmotionEmbeddingModule

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


class SERCLI(LightningCLI):
    """LightningCLI with the data module's classes linked into the model and run-dir helpers."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        for source, target in (
            ("data.num_classes", "model.init_args.num_classes"),
            ("data.class_names", "model.init_args.class_names"),
            ("data.n_features", "model.init_args.n_features"),
            ("data.window_frames", "model.init_args.crop_frames"),
            # linked, not a model setting: `test --ckpt_path PATH` applies the checkpoint's model
            # hyperparameters over the command line, and this one must stay choosable at test
            ("data.eval_crops", "model.init_args.eval_crops"),
        ):
            parser.link_arguments(source, target, apply_on="instantiate")
        parser.link_arguments(
            "data.features", "model.init_args.feature_config", asdict, apply_on="instantiate"
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="after fit, test the best checkpoint in the same process (W&B sweeps use it)",
        )

    def after_fit(self) -> None:
        if self.config.fit.get("test_after_fit") and not self.trainer.fast_dev_run:
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path="best")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        trainer = config.trainer
        if trainer.get("precision") is None:
            # Mixed precision on a GPU, plain float32 (and no warnings) on a CPU.
            gpu = torch.cuda.is_available() and trainer.get("accelerator") in (
                "auto",
                "gpu",
                "cuda",
            )
            trainer.precision = "16-mixed" if gpu else "32-true"
        if self.subcommand != "fit":
            loggers = trainer.get("logger")
            for logger in loggers if isinstance(loggers, list) else [loggers]:
                if getattr(logger, "class_path", "").endswith("RunLogger"):
                    logger.init_args.metrics_file = f"{self.subcommand}_metrics.csv"

    def _resolve_ckpt(self) -> None:
        """`--ckpt_path best` in a new process: the run directory's `checkpoints/best.ckpt`."""
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") != "best":
            return
        callback = self.trainer.checkpoint_callback
        if callback is not None and callback.best_model_path:
            return
        run_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        candidate = run_dir / "checkpoints" / "best.ckpt"
        if not candidate.exists():
            raise SystemExit(
                f"--ckpt_path best: no best checkpoint at {candidate}; run `fit` with this config "
                "first, or pass the checkpoint file"
            )
        config.ckpt_path = str(candidate)

    def before_validate(self) -> None:
        self._resolve_ckpt()

    def before_test(self) -> None:
        self._resolve_ckpt()

    def before_predict(self) -> None:
        self._resolve_ckpt()


def lightning_main(args: list[str] | None = None, run: bool = True) -> SERCLI:
    """Run LightningCLI (fit / validate / test / predict) with this project's classes."""
    # main() always passes the arguments explicitly (so tests and subcommands share one path);
    # LightningCLI warns whenever sys.argv is not empty at the same time, which is expected here.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
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
    )


def dispatch(args: list[str] | None = None) -> Any:
    """Run one command and return what it made (the LightningCLI, a summary, an exit status)."""
    argv = list(sys.argv[1:] if args is None else args)
    command = argv[0] if argv else None
    from . import tools

    if command in tools.COMMANDS and not (
        command == "predict" and tools.is_lightning_predict(argv)
    ):
        return tools.COMMANDS[command](argv[1:])
    return lightning_main(argv)


def main(args: list[str] | None = None) -> int:
    """Entry point of the `lightning` and `lightning-ser` commands: returns the exit status."""
    result = dispatch(args)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


if __name__ == "__main__":
    sys.exit(main())
