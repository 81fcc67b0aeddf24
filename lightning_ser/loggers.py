"""A CSV logger for a named run directory that keeps each subcommand's metrics in its own file."""

from __future__ import annotations

import os
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class RunLogger(CSVLogger):
    """CSVLogger writing to `<save_dir>/<name>/<version>/<metrics_file>`.

    Lightning's CSVLogger deletes `metrics.csv` whenever it opens a run directory that is not empty,
    so `lightning test` into the run that `lightning fit` made would erase the training curves.
    Here every subcommand gets its own file (the CLI sets `test_metrics.csv` for `test`, ...), and
    a fixed `version` makes the run directory predictable for `--ckpt_path best`. Under a W&B
    sweep agent the W&B run id is appended, so the runs of a sweep do not share a folder.
    """

    def __init__(
        self,
        save_dir: str = "runs",
        name: str = "run",
        version: str = "default",
        metrics_file: str = "metrics.csv",
        **kwargs: Any,
    ) -> None:
        if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
            version = f"{version}-{os.environ['WANDB_RUN_ID']}"  # one folder per sweep run
        super().__init__(save_dir, name=name, version=version, **kwargs)
        self.metrics_file = metrics_file

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            writer = type(
                "RunWriter", (ExperimentWriter,), {"NAME_METRICS_FILE": self.metrics_file}
            )
            self._experiment = writer(log_dir=self.log_dir)
        return self._experiment
