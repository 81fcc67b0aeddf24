"""A CSV logger for a run folder that keeps every row it ever wrote."""

from __future__ import annotations

import csv
from typing import Any

from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics file is continued, not deleted.

    Lightning's writer removes `metrics.csv` whenever it opens a folder that is not empty, so a
    resumed `fit` (or one that failed at start-up) erased the epochs already logged. Here the
    existing header is read back and new rows are appended under it.
    """

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(next(csv.reader(handle), []))


class RunLogger(CSVLogger):
    """CSVLogger writing to `<save_dir>/<name>/<version>/<metrics_file>`, never erasing rows.

    The CLI sets save_dir / name / version to the run folder (see `lightning_ser.runs`; under a
    W&B sweep agent the folder name carries the W&B run id, so the runs of a sweep do not share
    one) and gives every subcommand its own files (`test_metrics.csv` and `test_hparams.yaml`
    for `test`, ...), so that evaluating a run never rewrites the record of its training.
    """

    def __init__(
        self,
        save_dir: str = "runs",
        name: str | None = None,
        version: str | None = None,
        metrics_file: str = "metrics.csv",
        hparams_file: str = "hparams.yaml",
        **kwargs: Any,
    ) -> None:
        super().__init__(save_dir, name=name or "", version=version, **kwargs)
        self.metrics_file = metrics_file
        self.hparams_file = hparams_file

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            names = {"NAME_METRICS_FILE": self.metrics_file, "NAME_HPARAMS_FILE": self.hparams_file}
            writer = type("RunWriter", (AppendingWriter,), names)
            self._experiment = writer(log_dir=self.log_dir)
        return self._experiment


class RunWandbLogger(WandbLogger):
    """Lightning's WandbLogger without the `anonymous` setting, which W&B no longer reads and
    warns about on every run. The CLI uses it wherever a config names WandbLogger."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)
