"""EmotionEmbeddingModule: the embedding network, the two training stages and the metrics.

Stage 1 ("softmax") trains with cross-entropy only (the paper's softmax pre-training); stage 2
("triplet") adds the metric loss: the paper's mined triplet loss on cosine similarity, or an
additive angular margin loss (`metric_loss`). The network itself is an `embedder.Embedder`.
Which stage runs, and when each ends, is decided by `callbacks.StageEarlyStopping` (validation
plateau) and the per-stage epoch caps here; the learning rate decays within each stage (the
paper: linearly, 0.05 -> 0.005).
Classification is by the least angle to each emotion's class embedding (the paper's Phase III).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, WeightAveraging
from pytorch_lightning.utilities import rank_zero_info

from .augment import SpecMasking, mixup
from .compiling import compile_for_any_length
from .data.features import FeatureConfig
from .embedder import CHECKPOINT_FORMAT, Embedder, config_from_hparams, upgrade_state_dict
from .losses import MetricLossName, MinerName, build_metric_loss
from .metrics import confusion_metric, scores
from .models.pooling import PoolingName
from .split_guard import refuse_other_split

OptimizerCallable = Callable[[Iterable], torch.optim.Optimizer]
Stage = Literal["softmax", "triplet"]
STAGES: tuple[Stage, Stage] = ("softmax", "triplet")
LrDecay = Literal["linear", "cosine"]
CentreInit = Literal["random", "class_embeddings"]


def refuse_differences(
    what: str, saved: dict[str, Any], ours: dict[str, Any], ours_name: str, advice: str = ""
) -> None:
    """Raise one line, `what: k=saved (ours_name: ours), ...[; advice]`, when a checkpoint's
    settings differ from this run's (the network's, or the features')."""
    differ = [
        f"{k}={v!r} ({ours_name}: {ours.get(k)!r})" for k, v in saved.items() if v != ours.get(k)
    ]
    if differ:
        raise ValueError(f"{what}: " + ", ".join(differ) + (f"; {advice}" if advice else ""))


def run_checkpoints(monitor: str | None) -> list[ModelCheckpoint]:
    """`checkpoints/best.ckpt` (the best `monitor`, or the last epoch without validation) and
    `checkpoints/last.ckpt` after every epoch: what `--ckpt_path best|last` and `cv` read."""
    return [
        ModelCheckpoint(
            monitor=monitor,
            mode="max",
            filename="best",
            enable_version_counter=False,
            save_on_train_epoch_end=monitor is None,
        ),
        ModelCheckpoint(
            filename="last", enable_version_counter=False, save_on_train_epoch_end=True
        ),
    ]


def default_optimizer(params: Iterable) -> torch.optim.Optimizer:
    """SGD with momentum at the paper's starting learning rate, 0.05."""
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)


class EmotionEmbeddingModule(pl.LightningModule):
    """Emotion embeddings trained by softmax pre-training then triplet loss (Kumar et al.).

    Args:
        num_classes: number of emotions (linked from the data module).
        class_names: emotion names in class order (linked from the data module).
        n_features: values per input frame (linked from the data module).
        feature_config: the feature front end's settings, kept for inference (linked).
        backbone: fc, cnn, rnn, lstm, gru or resnet (the paper's; Table I's ablation family).
        layers: x of Table I: weight layers including the embedding and softmax layers.
        channels: width of the backbone.
        kernel_size: convolution kernel (frames).
        blocks: residual blocks of the ResNet (the paper: 2 for 11 layers).
        embedding_dim: dimension of the emotion embedding.
        dropout: dropout in the backbone.
        negative_slope: slope of LeakyReLU.
        bidirectional: recurrent backbones read both directions (rnn, lstm, gru).
        pooling: temporal pooling: mean (the paper's) or attentive_stats.
        optimizer: optimiser factory; its learning rate is the start of each stage's decay.
        lr_end_factor: the learning rate at the end of a stage, relative to the start (0.1:
            0.05 -> 0.005 as in the paper).
        lr_decay: shape of the decay within a stage: linear (the paper) or cosine.
        triplet_lr_scale: the triplet stage's decay starts at this fraction of the optimiser's
            rate (1.0: both stages decay from 0.05, as the paper describes).
        softmax_epochs: epoch cap of stage 1 (the paper: 1000).
        triplet_epochs: epoch cap of stage 2 (the paper: 1000); 0 trains softmax only.
        ce_weight: weight of cross-entropy in stage 2 (stage 1 uses cross-entropy alone).
        triplet_weight: weight of the metric loss in stage 2.
        metric_loss: stage 2's metric loss: triplet (the paper), arcface or subcenter_arcface.
        margin: triplet margin on cosine similarity.
        miner: semihard (default), hard, all, batch_hard or multi_similarity.
        angular_margin: the additive angular margin of arcface losses, in degrees.
        angular_scale: the scale (inverse temperature) of arcface losses.
        centre_init: where the arcface losses' class centres start when the metric stage
            begins: "random" (pytorch-metric-learning's initialisation) or "class_embeddings"
            (the least-angle classifier's class embeddings of that moment, the mean training
            embedding of each emotion): the loss then sharpens the angles the network already
            has instead of first pulling the embeddings towards random directions. The triplet
            loss has no class centres, so with it the setting does nothing (said at the switch;
            a sweep over metric_loss can keep the recipe's value).
        label_smoothing: label smoothing of the cross-entropy (0: none, the paper).
        time_masks: SpecAugment time masks per training example (0: none, the paper).
        time_mask_frames: the longest time mask, in frames.
        feature_masks: masks over feature dimensions per training example (0: none).
        feature_mask_width: the widest feature mask, in values per frame.
        mixup_alpha: mixup in the softmax stage (0: none, the paper): each training batch is
            mixed with a shuffled copy of itself at a weight drawn from Beta(alpha, alpha), and
            the cross-entropy is the same mix of the two labels' cross-entropies. The metric
            stage never mixes (its losses need one label per example).
        ema_decay: 0 (the paper) trains and evaluates the weights themselves; a decay in (0, 1)
            validates, checkpoints and tests an exponential moving average of the weights
            (`callbacks.ExponentialWeightAveraging`), which smooths the epoch-to-epoch swings
            of a small corpus at a high learning rate.
        compile: compile the network with `torch.compile` (TorchInductor; needs a C++ compiler):
            the first training and evaluation steps take a minute or two, then a TIM step runs
            about 1.7 times faster on a CPU core and the GPU launches fewer kernels. Parameter
            names and checkpoints are unchanged (`nn.Module.compile` works in place).
        monitor: the validation metric the stage early stopping follows when the trainer has
            no StageEarlyStopping of its own.
        feature_normalisation: "train", "speaker", "utterance" or "both" (linked from
            data.normalisation; kept so that inference normalises new audio the same way).
        eval_crops: 0 (the paper) embeds whole utterances for evaluation, class embeddings and
            prediction; k > 0 uses the mean direction of k evenly spaced windows of
            `crop_frames` instead (training always uses single windows). Linked from
            data.eval_crops by the CLI.
        crop_frames: frames per evaluation window (linked from data.window_frames).
    """

    def __init__(
        self,
        num_classes: int = 8,
        class_names: list[str] | None = None,
        n_features: int = 39,
        feature_config: dict[str, Any] | None = None,
        backbone: str = "resnet",
        layers: int = 11,
        channels: int = 128,
        kernel_size: int = 3,
        blocks: int = 2,
        embedding_dim: int = 128,
        dropout: float = 0.0,
        negative_slope: float = 0.01,
        bidirectional: bool = False,
        pooling: PoolingName = "mean",
        optimizer: OptimizerCallable = default_optimizer,
        lr_end_factor: float = 0.1,
        lr_decay: LrDecay = "linear",
        triplet_lr_scale: float = 1.0,
        softmax_epochs: int = 1000,
        triplet_epochs: int = 1000,
        ce_weight: float = 1.0,
        triplet_weight: float = 1.0,
        metric_loss: MetricLossName = "triplet",
        margin: float = 0.2,
        miner: MinerName = "semihard",
        angular_margin: float = 28.6,
        angular_scale: float = 30.0,
        centre_init: CentreInit = "random",
        label_smoothing: float = 0.0,
        time_masks: int = 0,
        time_mask_frames: int = 20,
        feature_masks: int = 0,
        feature_mask_width: int = 6,
        mixup_alpha: float = 0.0,
        ema_decay: float = 0.0,
        compile: bool = False,
        monitor: str = "val/least_angle/wa",
        feature_normalisation: str = "train",
        eval_crops: int = 0,
        crop_frames: int = 10,
    ) -> None:
        super().__init__()
        if softmax_epochs < 1 or triplet_epochs < 0:
            raise ValueError("model.softmax_epochs must be >= 1 and model.triplet_epochs >= 0")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"model.label_smoothing must lie in [0, 1), got {label_smoothing}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"model.ema_decay must lie in [0, 1), got {ema_decay}")
        if mixup_alpha < 0:
            raise ValueError(f"model.mixup_alpha must be >= 0, got {mixup_alpha}")
        class_names = list(class_names or [str(i) for i in range(num_classes)])
        if len(class_names) != num_classes:
            raise ValueError(f"model.class_names has {len(class_names)} names for {num_classes}")
        self.save_hyperparameters(ignore=["optimizer"])
        self.hparams["class_names"] = class_names
        self.class_names = class_names
        self.embedder = Embedder(**config_from_hparams(self.hparams))
        if compile:
            compile_for_any_length(self.embedder.net)
        self.metric_loss = build_metric_loss(
            metric_loss, num_classes, embedding_dim, margin, miner, angular_margin, angular_scale
        )
        self.augment = SpecMasking(time_masks, time_mask_frames, feature_masks, feature_mask_width)
        self.optimizer_factory = optimizer
        self.stage: Stage = "softmax"
        self.stage_start_epoch = 0
        self.class_embeddings_from: tuple[int, int] = (0, 0)  # embedding_view they were made with
        self.trained_on: dict[str, Any] | None = None  # the split of a loaded checkpoint
        self.checkpoint_epoch: int | None = None  # the epoch a loaded checkpoint was saved at
        self.evaluate_elsewhere = False  # set by the CLI's --evaluate_elsewhere
        self.val_metrics = torch.nn.ModuleDict(
            {k: confusion_metric(num_classes) for k in ("least_angle", "softmax")}
        )
        self.test_metrics = torch.nn.ModuleDict(
            {k: confusion_metric(num_classes) for k in ("least_angle", "softmax")}
        )

    # ---- model ----
    @property
    def class_embeddings(self) -> torch.Tensor:
        """The least-angle classifier's class embeddings [C, D] (held by the embedder)."""
        return self.embedder.class_embeddings

    def normalise(self, x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """Standardise frames with the training statistics; padded frames stay exactly zero."""
        return self.embedder.normalise(x, lengths)

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw features [B, T, F] -> (L2-normalised embedding [B, D], softmax logits [B, C])."""
        return self.embedder(x, lengths)

    # ---- stages ----
    @property
    def epochs_in_stage(self) -> int:
        """Completed epochs of the current stage, counting the running one."""
        return self.current_epoch - self.stage_start_epoch

    def stage_cap(self) -> int:
        """Epoch cap of the current stage."""
        return (
            self.hparams.softmax_epochs if self.stage == "softmax" else self.hparams.triplet_epochs
        )

    def end_stage(self, reason: str = "its epoch cap") -> None:
        """Move from softmax pre-training to the metric stage, or stop after the last stage."""
        ended = self.stage if self.stage == "softmax" else self.hparams.metric_loss
        if self.stage == "softmax" and self.hparams.triplet_epochs > 0:
            self.stage = "triplet"
            self.stage_start_epoch = self.current_epoch + 1
            self.sync_schedule(self.stage_start_epoch)
            then = f"the {self.hparams.metric_loss} stage begins at epoch {self.stage_start_epoch}"
            if self.hparams.centre_init == "class_embeddings" and not self.metric_loss.has_centres:
                then += " (model.centre_init does not apply: the triplet loss has no centres)"
            elif self.hparams.centre_init == "class_embeddings":
                self.refresh_class_embeddings()
                self.metric_loss.set_centres(self.class_embeddings)
                then += ", its class centres at the class embeddings"
        else:
            self.trainer.should_stop = True
            then = "training stops"
        rank_zero_info(
            f"[fit] epoch {self.current_epoch}: the {ended} stage ends ({reason}); {then}"
        )

    def lr_factor(self, epoch: int) -> float:
        """The learning rate of `epoch` relative to the optimiser's: within each stage a decay
        from 1 to `lr_end_factor` over the stage's cap (linear or cosine, `lr_decay`); the
        metric stage's decay starts at `triplet_lr_scale`. The stage schedule of this module
        drives it, so an early stage end restarts the decay at once."""
        stage, start = self.stage, self.stage_start_epoch
        if stage == "triplet" and epoch < start:  # an epoch before the switch
            stage, start = "softmax", 0
        cap = self.hparams.softmax_epochs if stage == "softmax" else self.hparams.triplet_epochs
        scale = self.hparams.triplet_lr_scale if stage == "triplet" else 1.0
        progress = min(max(epoch - start, 0) / max(cap - 1, 1), 1.0)
        if self.hparams.lr_decay == "cosine":
            progress = (1 - math.cos(math.pi * progress)) / 2
        return scale * (1 + (self.hparams.lr_end_factor - 1) * progress)

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimiser, and the stage schedule as a LambdaLR stepped every epoch (logged as
        `lr` by LearningRateMonitor)."""
        optimizer = self.optimizer_factory(self.parameters())
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": schedule, "interval": "epoch", "name": "lr"},
        }

    def configure_callbacks(self) -> list[pl.Callback]:
        """What the two-stage schedule needs, unless the trainer's config already has it: the
        per-stage early stopping (the paper's 0.0005 within 15 validations), the learning
        rate monitor, the weight averaging that `ema_decay` asks for, and the run's best and
        last checkpoints."""
        from .callbacks import ExponentialWeightAveraging, StageEarlyStopping

        have = {type(c) for c in self.trainer.callbacks}
        callbacks: list[pl.Callback] = []
        if not any(issubclass(t, StageEarlyStopping) for t in have):
            callbacks.append(StageEarlyStopping(monitor=self.hparams.monitor))
        averaging = any(issubclass(t, WeightAveraging) for t in have)
        if self.hparams.ema_decay > 0 and not self.validates:
            raise ValueError("model.ema_decay needs a validation part (data.val_size > 0)")
        if self.hparams.ema_decay > 0 and self.trainer.state.fn == "fit" and not averaging:
            callbacks.append(ExponentialWeightAveraging(self.hparams.ema_decay))
        if self.trainer.loggers and LearningRateMonitor not in have:
            callbacks.append(LearningRateMonitor(logging_interval="epoch"))
        saving = [c for c in self.trainer.callbacks if isinstance(c, ModelCheckpoint)]
        lightnings_own = len(saving) == 1 and not saving[0].filename and not saving[0].monitor
        if self.trainer.state.fn == "fit" and lightnings_own:
            # a config that lists no checkpoint (a second -c replacing the callbacks) gets the
            # run's own files in place of Lightning's default epoch=N-step=M.ckpt
            callbacks += run_checkpoints(self.hparams.monitor if self.validates else None)
        return callbacks

    def sync_schedule(self, epoch: int) -> None:
        """Set the learning rate to `epoch`'s. Lightning steps the schedule at an epoch's last
        batch, before a stage can end (cap or early stopping) and before a checkpoint is
        resumed; `end_stage` and `on_train_start` call this so the next epoch gets its rate."""
        trainer = self._trainer
        for config in trainer.lr_scheduler_configs if trainer is not None else []:
            config.scheduler.last_epoch = epoch - 1
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                config.scheduler.step()

    @property
    def validates(self) -> bool:
        """Whether the data has a validation part (`data.val_size: 0` has none)."""
        return getattr(getattr(self.trainer, "datamodule", None), "has_validation", True)

    def on_train_start(self) -> None:
        self.check_split(resuming=True)  # resuming on another split is refused, always
        self.sync_schedule(self.current_epoch)

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "set_sampling"):
            datamodule.set_sampling("m_per_class" if self.stage == "triplet" else "random")
        self.log("stage", float(STAGES.index(self.stage)), on_epoch=True, on_step=False)

    def on_train_epoch_end(self) -> None:
        if self.epochs_in_stage + 1 >= self.stage_cap():
            self.end_stage()
        last = self.trainer.should_stop or self.current_epoch + 1 == self.trainer.max_epochs
        if last and not self.validates:  # no validation refreshed them for the last checkpoint
            self.refresh_class_embeddings()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["stage"] = {"name": self.stage, "start_epoch": self.stage_start_epoch}
        checkpoint["lightning_ser_format"] = CHECKPOINT_FORMAT
        checkpoint["embedder"] = dict(self.embedder.config)
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if hasattr(datamodule, "split_identity") and datamodule.split is not None:
            checkpoint["split"] = datamodule.split_identity
        checkpoint["class_embeddings_from"] = list(self.class_embeddings_from)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("stage", {"name": "softmax", "start_epoch": 0})
        self.stage, self.stage_start_epoch = state["name"], state["start_epoch"]
        self.class_embeddings_from = tuple(checkpoint.get("class_embeddings_from", (0, 0)))
        self.trained_on = checkpoint.get("split")
        self.checkpoint_epoch = checkpoint.get("epoch")
        self.check_emotions(checkpoint.get("hyper_parameters", {}).get("class_names"))
        self.check_network(checkpoint.get("embedder"))
        self.check_features(checkpoint.get("hyper_parameters", {}).get("feature_config"))
        self.match_checkpoint_folders(checkpoint)
        if checkpoint.get("lightning_ser_format", 1) < 2:  # format 1: no `embedder.` prefix
            checkpoint["state_dict"] = upgrade_state_dict(checkpoint["state_dict"])

    @property
    def embedding_view(self) -> tuple[int, int]:
        """(crops, frames per crop) evaluation embeds with now; (0, 0) for whole utterances."""
        return self.embedder.view

    # ---- training ----
    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The training losses of a batch in the current stage: `loss` (what is optimised),
        `ce` and `metric` (the triplet or ArcFace loss; in the softmax stage logged and not
        trained on, as the paper)."""
        centre = self.embedder.feature_mean
        x, lengths, labels = self.augment(batch["x"], centre), batch["lengths"], batch["label"]
        weight, partner = 1.0, None
        if self.training and self.stage == "softmax" and self.hparams.mixup_alpha > 0:
            alpha = torch.tensor(float(self.hparams.mixup_alpha))
            weight = float(torch.distributions.Beta(alpha, alpha).sample())
            partner = torch.randperm(len(labels), device=labels.device)
            x, lengths = mixup(x, lengths, centre, weight, partner)
        emb, logits = self(x, lengths)
        smoothing = self.hparams.label_smoothing
        ce = F.cross_entropy(logits.float(), labels, label_smoothing=smoothing)
        if partner is not None:
            other = F.cross_entropy(logits.float(), labels[partner], label_smoothing=smoothing)
            ce = weight * ce + (1 - weight) * other
            labels = labels if weight >= 0.5 else labels[partner]  # for the logged metric loss
        if self.stage == "triplet":
            metric = self.metric_loss(emb, labels)
            loss = self.hparams.ce_weight * ce + self.hparams.triplet_weight * metric
        else:  # logged, not trained on
            with torch.no_grad():
                metric = self.metric_loss(emb, labels)
            # the metric loss's own parameters (ArcFace's class centres) get zero gradients, so
            # DDP does not wait for gradients they would otherwise never produce
            loss = ce + sum(p.sum() for p in self.metric_loss.parameters()) * 0.0
        return {"loss": loss, "ce": ce, "metric": metric}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        for name, key in (("train/ce", "ce"), ("train/triplet", "metric"), ("train/loss", "loss")):
            self.log(
                name,
                losses[key],
                on_step=False,
                on_epoch=True,
                batch_size=len(batch["label"]),
                sync_dist=True,
            )
        return losses["loss"]

    def match_checkpoint_folders(self, checkpoint: dict[str, Any]) -> None:
        """Let ModelCheckpoint recognise its own folder when a run is resumed by another
        spelling of its path (`runs/...` then `/home/.../runs/...`): Lightning compares the
        strings, and on a mismatch forgets the best score, so the first validation after the
        resume overwrote best.ckpt even when worse."""
        trainer = self._trainer
        states = checkpoint.get("callbacks", {})
        for callback in trainer.checkpoint_callbacks if trainer is not None else []:
            state = states.get(callback.state_key)
            saved, ours = (state or {}).get("dirpath"), getattr(callback, "dirpath", None)
            if saved and ours and Path(saved).resolve() == Path(ours).resolve():
                state["dirpath"] = ours

    def check_emotions(self, saved: list[str] | None) -> None:
        """Refuse, in one line, a checkpoint trained on other emotions (or another order) than
        this data's: its softmax head and class embeddings would answer with the wrong names
        (even `--evaluate_elsewhere` cannot map one onto the other)."""
        if saved is not None and list(saved) != list(self.class_names):
            raise ValueError(
                f"the checkpoint was trained on the emotions {', '.join(saved)}; this data has "
                f"{', '.join(self.class_names)}"
            )

    def check_network(self, saved: dict[str, Any] | None) -> None:
        """Refuse, in one line, weights of another network than this one (a `fit --ckpt_path`
        whose config names another backbone or size); how evaluation crops is not the network."""
        if saved is None:
            return
        ignore = ("eval_crops", "crop_frames")
        refuse_differences(
            "the checkpoint holds another network than the config",
            {k: v for k, v in saved.items() if k not in ignore},
            self.embedder.config,
            "config",
        )

    def check_features(self, saved: dict[str, Any] | None) -> None:
        """Refuse, in one line, a checkpoint trained on other features than this run's data
        computes (e.g. `--data.features.fixed_seconds` at fit but not at test): the network
        would be fed inputs it never saw, and every number would be silently wrong."""
        ours = self.hparams.get("feature_config")
        if saved is None or ours is None:
            return
        refuse_differences(
            "the checkpoint was trained on other features than this run's data gives",
            asdict(FeatureConfig(**saved)),
            asdict(FeatureConfig(**ours)),
            "data",
            "pass the training's --data.features settings",
        )

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if stage == "fit" and hasattr(datamodule, "feature_mean"):
            self.embedder.feature_mean.copy_(datamodule.feature_mean)
            self.embedder.feature_std.copy_(datamodule.feature_std)

    # ---- class embeddings and evaluation ----
    def embed_batches(self, batches: Iterable[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Embeddings, labels and softmax predictions of whole-utterance batches."""
        outs = self.embedder.embed_batches(batches)
        return {
            "embeddings": outs["embeddings"],
            "labels": outs["labels"],
            "softmax": outs["logits"].argmax(dim=-1),
        }

    def refresh_class_embeddings(self) -> None:
        """Class embeddings from the whole training utterances (the paper's emotion embeddings)."""
        train = self.trainer.datamodule.iter_part("train", self.device)
        self.embedder.refresh_class_embeddings(train)
        self.class_embeddings_from = self.embedding_view

    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking or self.class_embeddings.abs().sum() == 0:
            self.refresh_class_embeddings()

    def _eval_step(self, batch: dict[str, torch.Tensor], metrics: torch.nn.ModuleDict) -> dict:
        emb, logits = self(batch["x"], batch["lengths"])
        angle_pred, _ = self.embedder.classify(emb)
        metrics["least_angle"].update(angle_pred, batch["label"])
        metrics["softmax"].update(logits.argmax(dim=-1), batch["label"])
        return {"embeddings": emb, "labels": batch["label"], "softmax": logits.argmax(dim=-1)}

    def _log_metrics(self, prefix: str, metrics: torch.nn.ModuleDict) -> None:
        """Log WA, UA and macro-F1 of each classifier from its (synchronised) confusion matrix."""
        for name, confusion in metrics.items():
            result = scores(confusion.compute())
            for key in ("wa", "ua", "macro_f1"):
                value = torch.tensor(result[key], device=self.device)
                self.log(f"{prefix}/{name}/{key}", value, prog_bar=key == "wa")
            confusion.reset()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, self.val_metrics)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_metrics)

    def _ensure_class_embeddings(self) -> None:
        """Recompute the class embeddings when missing, or when the checkpoint's were embedded
        another way (a model trained on whole utterances tested with --data.eval_crops, or the
        reverse)."""
        stale = self.class_embeddings_from != self.embedding_view
        if self.class_embeddings.abs().sum() == 0 or stale:
            self.refresh_class_embeddings()

    def check_split(self, resuming: bool = False) -> None:
        """Refuse to evaluate a checkpoint on another split than the one it was trained on: its
        test part could hold training utterances. `--evaluate_elsewhere true` allows an
        evaluation; a resumed fit is always refused."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.trained_on is None or not hasattr(datamodule, "split_identity"):
            return
        if resuming or not self.evaluate_elsewhere:
            refuse_other_split(self.trained_on, datamodule.split_identity, resuming)

    @property
    def evaluated_elsewhere(self) -> bool:
        """Whether this evaluation runs on another split than the checkpoint's (allowed)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.trained_on is None or not hasattr(datamodule, "split_identity"):
            return False
        return datamodule.split_identity != self.trained_on

    def on_test_start(self) -> None:
        self.check_split()

    def on_validation_start(self) -> None:
        if self.trainer.state.fn == "validate":
            self.check_split()

    def on_test_epoch_start(self) -> None:
        self._ensure_class_embeddings()

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """Metrics of a batch; returns its embeddings, labels and softmax answers, which
        callbacks (the report) collect in `on_test_batch_end`."""
        return self._eval_step(batch, self.test_metrics)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_metrics)
        self._log_what_was_tested()

    def _log_what_was_tested(self) -> None:
        """Label the test's row of `test_metrics.csv`: the epoch of the tested weights (a row
        per test, so `--ckpt_path best` and `last` tell apart) and how utterances were embedded
        (`crops` 0: whole utterances, else that many crops of `crop_frames`)."""
        crops, frames = self.embedding_view
        label = {"tested/crops": crops, "tested/crop_frames": frames}
        if self.checkpoint_epoch is not None:
            label["tested/checkpoint_epoch"] = self.checkpoint_epoch
        for key, value in label.items():
            self.log(key, float(value))

    def on_predict_start(self) -> None:
        self.check_split()

    def on_predict_epoch_start(self) -> None:
        self._ensure_class_embeddings()

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, Any]:
        emb, logits = self(batch["x"], batch["lengths"])
        pred, angles = self.embedder.classify(emb)
        return {
            "index": batch["index"],
            "prediction": pred,
            "angles": angles,
            "embeddings": emb,
            "softmax_prediction": logits.argmax(dim=1),
            "frames": batch["lengths"],
        }
