"""Callbacks: per-stage early stopping (the paper's schedule), weight averaging and the paper's
analyses."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import WeightAveraging
from pytorch_lightning.loggers import WandbLogger
from torch.optim.swa_utils import get_ema_multi_avg_fn
from torchmetrics.aggregation import CatMetric

from .report import log_report_to_wandb, write_report

log = logging.getLogger(__name__)


class StageEarlyStopping(pl.Callback):
    """Early stopping applied to each training stage in turn.

    When the monitored metric has not improved by more than `min_delta` for `patience`
    validation checks (the paper: 0.0005 within 15 epochs), the softmax stage ends and the metric
    stage starts with a fresh patience; when that happens in the metric stage, training stops.
    The module owns the stages (`end_stage`); this callback only keeps the plateau count, and
    saves it in checkpoints so a resumed run continues it.
    """

    def __init__(
        self,
        monitor: str = "val/least_angle/wa",
        min_delta: float = 0.0005,
        patience: int = 15,
        mode: str = "max",
    ) -> None:
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"StageEarlyStopping: mode must be 'max' or 'min', got {mode!r}")
        self.monitor, self.min_delta, self.patience, self.mode = monitor, min_delta, patience, mode
        self.reset()

    def reset(self) -> None:
        """A fresh patience: no best value yet, no checks without improvement."""
        self.best = -math.inf if self.mode == "max" else math.inf
        self.wait = 0

    def improved(self, value: float) -> bool:
        """Whether `value` beats the best by more than `min_delta`."""
        if self.mode == "max":
            return value - self.min_delta > self.best
        return value + self.min_delta < self.best

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or trainer.fast_dev_run or value is None:
            return
        value = float(value)
        if self.improved(value):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            pl_module.end_stage(
                f"{self.monitor} did not improve by more than {self.min_delta} in "
                f"{self.patience} checks; best {self.best:.4f}"
            )
            self.reset()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A stage switched by the module's epoch cap starts with a fresh patience, too.
        if getattr(pl_module, "epochs_in_stage", 1) == 0 and trainer.current_epoch > 0:
            self.reset()

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.wait = float(state_dict["best"]), int(state_dict["wait"])


class ExponentialWeightAveraging(WeightAveraging):
    """Validate, checkpoint and test an exponential moving average of the weights.

    Lightning's WeightAveraging with torch's EMA update after every optimiser step: the average
    replaces the weights during validation (so the class embeddings of a validation are the
    average's, and checkpoint selection judges the average), checkpoints hold the average as
    their `state_dict` (the raw weights under `current_model_state`, for resuming), and training
    ends with the average in the model. Added by the module when `model.ema_decay` > 0.

    Args:
        decay: weight of the old average per step; 1 / (1 - decay) steps is its memory
            (0.998 with 19 batches per epoch: about 26 epochs).
    """

    def __init__(self, decay: float = 0.998) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"model.ema_decay must lie in (0, 1), got {decay}")
        super().__init__(multi_avg_fn=get_ema_multi_avg_fn(decay))
        self.decay = decay


def dataset_description(datamodule: Any) -> str:
    """The corpus and folder of a report, and whether its features were normalised per speaker
    (transductive for test speakers)."""
    if datamodule is None:
        return "unknown"
    text = f"{datamodule.corpus} ({datamodule.root})"
    if getattr(datamodule, "transductive", False):
        text += (
            "; features normalised per speaker with each speaker's own audio (transductive: "
            "test speakers' unlabelled test utterances shaped their features)"
        )
    return text


class EmbeddingReport(pl.Callback):
    """Writes the paper's analyses (angle matrix, deviations, t-SNE, confusion) and logs them.

    At the end of `test` it reports on the test part into `<run dir>/report/`, from the outputs
    `test_step` returns (collected on every rank with torchmetrics' CatMetric, which gathers
    ranks of unequal sizes). While training it reports on the validation part at the end of each
    stage (`at_stage_end`, into `<run dir>/report_val/epoch_<n>/`) and every
    `every_n_val_epochs` validations (into `<run dir>/report_val/latest/`). With a W&B logger
    the figures go to W&B as images at the training step, so the W&B UI shows the embeddings
    evolving, and the tables as W&B tables.
    """

    KEYS = ("embeddings", "labels", "softmax")

    def __init__(
        self,
        every_n_val_epochs: int = 10,
        at_stage_end: bool = True,
        tsne_perplexity: float = 30.0,
        dirname: str = "report",
    ) -> None:
        super().__init__()
        self.every_n_val_epochs = every_n_val_epochs
        self.at_stage_end = at_stage_end
        self.tsne_perplexity = tsne_perplexity
        self.dirname = dirname
        self.written: dict[str, Path] = {}
        self._val_count = 0
        self._collected = {key: CatMetric() for key in self.KEYS}

    def _run_dir(self, trainer: pl.Trainer) -> Path:
        return Path(trainer.log_dir or trainer.default_root_dir)

    def _write(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        out_dir: Path,
        outputs: dict[str, torch.Tensor],
        split_name: str,
    ) -> None:
        datamodule = trainer.datamodule
        scalars = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith(f"{split_name}/") and torch.as_tensor(v).numel() == 1
        }
        ckpt = getattr(trainer, "ckpt_path", None)
        note = (
            "evaluated on another split than the checkpoint's (--evaluate_elsewhere)"
            if getattr(module, "evaluated_elsewhere", False)
            else None
        )
        self.written = write_report(
            out_dir,
            embeddings=outputs["embeddings"].cpu(),
            labels=outputs["labels"].cpu(),
            class_emb=module.class_embeddings.cpu(),
            class_names=module.class_names,
            metrics=scalars,
            protocol=datamodule.split.protocol if datamodule is not None else "unknown",
            dataset=dataset_description(datamodule),
            checkpoint=(f"{ckpt} ({note})" if note else str(ckpt)) if ckpt else note,
            split_name=split_name,
            softmax_preds=outputs["softmax"].cpu(),
            tsne_perplexity=self.tsne_perplexity,
            seed=datamodule.split.seed if datamodule is not None else 0,
        )
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                log_report_to_wandb(
                    logger.experiment,
                    self.written,
                    prefix=split_name,
                    global_step=trainer.global_step,
                )

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for metric in self._collected.values():
            metric.reset()

    def on_test_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if isinstance(outputs, dict):
            for key, metric in self._collected.items():
                metric.update(outputs[key].float() if key == "embeddings" else outputs[key])

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        out_dir = self._run_dir(trainer) / self.dirname  # trainer.log_dir: every rank must ask
        if self._collected["labels"].update_count == 0 and trainer.world_size == 1:
            return
        outputs = {k: m.compute() for k, m in self._collected.items()}  # every rank: a gather
        if not trainer.is_global_zero:
            return
        outputs["labels"] = outputs["labels"].long()
        outputs["softmax"] = outputs["softmax"].long()
        self._write(trainer, pl_module, out_dir, outputs, "test")
        log.info("report written to %s", out_dir / "report.md")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        self._val_count += 1
        if self.every_n_val_epochs > 0 and self._val_count % self.every_n_val_epochs == 0:
            self.report_validation(trainer, pl_module, None)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A stage that ended (at its cap or by early stopping) is reported before the next
        # stage trains its first batch, so the report shows the model the stage left.
        stage = (getattr(pl_module, "stage", None), getattr(pl_module, "stage_start_epoch", 0))
        seen, self._stage_seen = getattr(self, "_stage_seen", None), stage
        if self.at_stage_end and seen is not None and stage != seen:
            self.report_validation(trainer, pl_module, trainer.current_epoch - 1)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.at_stage_end:  # the last stage ends with training (current_epoch: epochs done)
            self.report_validation(trainer, pl_module, max(trainer.current_epoch - 1, 0))

    def report_validation(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, epoch: int | None
    ) -> None:
        """Report on the whole validation part with class embeddings of the current weights
        (rank 0 writes; a few seconds for RAVDESS on a CPU) into `report_val/epoch_<epoch>/`,
        or for periodic reports (`epoch` None) into `report_val/latest/`, overwritten each
        time so a long run does not fill the disk (W&B keeps every one)."""
        run_dir = self._run_dir(trainer)  # trainer.log_dir: every rank must ask
        if not trainer.is_global_zero or trainer.fast_dev_run or trainer.datamodule is None:
            return
        if not getattr(pl_module, "validates", True):  # data.val_size: 0
            return
        was_training = pl_module.training
        pl_module.refresh_class_embeddings()
        pl_module.eval()
        outputs = pl_module.embed_batches(trainer.datamodule.iter_part("val", pl_module.device))
        pl_module.train(was_training)
        folder = "latest" if epoch is None else f"epoch_{epoch}"
        out_dir = run_dir / f"{self.dirname}_val" / folder
        self._write(trainer, pl_module, out_dir, outputs, "val")
