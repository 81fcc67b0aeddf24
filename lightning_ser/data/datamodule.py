"""EmotionDataModule: corpus -> feature cache -> split -> batches of windows or whole utterances."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from .batching import (
    BatchList,
    SamplingMode,
    TrainBatchSampler,
    UtteranceDataset,
    WindowDataset,
    gather_utterances,
    gather_windows,
    length_buckets,
)
from .cache import CacheInfo, FeatureTable, cache_key, load_or_build, stale_caches
from .corpora import CorpusError, Utterance, class_names_for, load_corpus
from .corpora.base import OnBadFile
from .features import FeatureConfig
from .normalisation import per_speaker_normalised, training_statistics
from .perturbation import speakers_of, with_training_copies
from .splits import Protocol, SpeakerFolds, Split, make_split

log = logging.getLogger(__name__)

Part = Literal["train", "val", "test"]
Normalisation = Literal["train", "speaker", "utterance", "both"]


class EmotionDataModule(pl.LightningDataModule):
    """Cached MFCC features of an emotional speech corpus, split by a named protocol.

    Training batches are random windows of `window_frames` consecutive frames (the paper: 10);
    validation and test batches are whole utterances (temporal average pooling takes any length).

    Args:
        root: corpus folder.
        corpus: adapter name (ravdess, iemocap, emodb, tess, cremad, folder, manifest).
        corpus_options: extra adapter options, e.g. {"classes": "four"} for IEMOCAP.
        features: the feature front end (MFCC + deltas by default: 39 values per frame).
        cache_dir: where feature caches live (default `$XDG_CACHE_HOME/lightning_ser`).
        split: evaluation protocol (holdout, kfold, speaker_holdout, speaker_kfold, loso,
            speaker_folds).
        fold: fold under test for kfold / speaker_kfold / loso / speaker_folds.
        speaker_folds: the speakers of each fold for `split: speaker_folds`, e.g. EmoBox's
            RAVDESS folds [[1, 11, 20, 21], [4, 10, 12, 14], ...] (numbers or speaker names).
        n_folds: folds of kfold / speaker_kfold (the paper: 10).
        test_size: test fraction of the holdout protocols (the paper: 0.3).
        val_size: fraction of the training part held out for early stopping and the choice of
            checkpoint; 0: none, the whole training part trains and the last epoch is the model.
        group_by: utterance field that defines a speaker group: "speaker", or a metadata key
            such as "session" (IEMOCAP leave-one-session-out).
        seed: seed of the split.
        window_frames: frames per training window (the paper: 10).
        eval_crops: 0 (the paper) evaluates whole utterances; k > 0 the mean direction of k
            evenly spaced windows of `window_frames` (linked into the model, so it also holds
            for class embeddings and for Phase III prediction from the checkpoint).
        windows_per_epoch: windows drawn from each training utterance per epoch.
        batch_size: training windows per batch (the paper: 900).
        triplet_sampling: how the metric (triplet) stage draws its batches: "m_per_class" (the
            paper: `m_per_class` utterances of every class per batch, so each has positives) or
            "random". The softmax stage always draws at random (see `set_sampling`).
        m_per_class: utterances per class in an m-per-class batch.
        eval_batch_frames: upper bound on batch size x longest utterance in evaluation batches.
        features_on_device: keep the frame table on the training device and cut batches there.
        on_bad_file: "error" stops at the first unusable file; "skip" drops it with a warning.
        normalisation: "train" (default) standardises frames with the training part's statistics;
            "speaker" standardises each utterance with the statistics of its own speaker's
            utterances (all of them). For test speakers this uses their unlabelled test audio:
            transductive, and every report of such a run says so. "utterance" standardises
            each utterance with its own frames' statistics, inside the model (so inference does
            the same): nothing but the utterance itself, not transductive. "both" gives the
            network the "train" and the "utterance" views side by side (not transductive).
        speed_perturbation: speeds of extra training copies (e.g. [0.9, 1.1], the usual choice):
            every training utterance also enters training at each speed (FeatureConfig.speed:
            tempo and pitch change together), so an epoch holds (1 + len(speeds)) times as many
            windows. Each speed has its own feature cache (built once for the whole corpus), so
            training decodes no audio; validation and test parts never see a copy.
        workers: processes for building the cache (default: all cores).
        progress: show a progress bar while building the cache.
    """

    def __init__(
        self,
        root: str = "../shared/data/ravdess",
        corpus: str = "ravdess",
        corpus_options: dict[str, Any] | None = None,
        features: FeatureConfig | None = None,
        cache_dir: str | None = None,
        split: Protocol = "holdout",
        fold: int = 0,
        n_folds: int = 10,
        speaker_folds: SpeakerFolds | None = None,
        test_size: float = 0.3,
        val_size: float = 0.1,
        group_by: str = "speaker",
        seed: int = 0,
        window_frames: int = 10,
        eval_crops: int = 0,
        windows_per_epoch: int = 1,
        batch_size: int = 128,
        triplet_sampling: SamplingMode = "m_per_class",
        m_per_class: int = 16,
        eval_batch_frames: int = 100_000,
        features_on_device: bool = True,
        on_bad_file: OnBadFile = "error",
        normalisation: Normalisation = "train",
        speed_perturbation: list[float] | None = None,
        workers: int | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__()
        if window_frames < 1:
            raise ValueError(f"data.window_frames must be >= 1, got {window_frames}")
        if eval_crops < 0:
            raise ValueError(f"data.eval_crops must be >= 0, got {eval_crops}")
        if batch_size < 2:
            raise ValueError(f"data.batch_size must be >= 2, got {batch_size}")
        if windows_per_epoch < 1:
            raise ValueError(f"data.windows_per_epoch must be >= 1, got {windows_per_epoch}")
        self.save_hyperparameters(ignore=["progress", "workers"])
        self.root = root
        self.corpus = corpus
        self.corpus_options = dict(corpus_options or {})
        self.features = features or FeatureConfig()
        self.cache_dir = cache_dir
        self.split_args = {
            "protocol": split,
            "fold": fold,
            "n_folds": n_folds,
            "speaker_folds": speaker_folds,
            "test_size": test_size,
            "val_size": val_size,
            "seed": seed,
        }
        self.group_by = group_by
        self.window_frames = window_frames
        self.eval_crops = eval_crops
        self.windows_per_epoch = windows_per_epoch
        self.batch_size = batch_size
        self.triplet_sampling = triplet_sampling
        self.m_per_class = m_per_class
        self.eval_batch_frames = eval_batch_frames
        self.features_on_device = features_on_device
        self.on_bad_file = on_bad_file
        if normalisation not in ("train", "speaker", "utterance", "both"):
            raise ValueError(
                "data.normalisation must be 'train', 'speaker', 'utterance' or 'both', "
                f"got {normalisation!r}"
            )
        self.normalisation = normalisation
        self.speed_perturbation = list(speed_perturbation or [])
        for speed in self.speed_perturbation:
            if speed == 1.0 or not 0.5 <= speed <= 2.0:
                raise ValueError(
                    f"data.speed_perturbation: {speed} is not a speed of a copy (0.5 .. 2.0, "
                    "not 1.0: the originals are always used)"
                )
        self.workers = workers
        self.progress = progress
        self.table: FeatureTable | None = None
        self.skipped_files: list[tuple[str, str]] = []  # (path, why): bad names or audio
        self.cache_info: CacheInfo | None = None
        self.split: Split | None = None
        self._train_sampler: TrainBatchSampler | None = None
        self._device_tables: dict[tuple[torch.device, bool], tuple[torch.Tensor, torch.Tensor]] = {}

    # ---- the utterance table and classes (cheap: no audio is read) ----
    @cached_property
    def utterances(self) -> list[Utterance]:
        """The corpus's utterance table (before files without usable audio are dropped)."""
        options = {"on_bad_file": self.on_bad_file} | self.corpus_options
        return load_corpus(self.corpus, self.root, **options)

    @cached_property
    def class_names(self) -> list[str]:
        """Emotion names in class-index order (linked into the model by the CLI); refused in
        one line when the corpus holds fewer than two (nothing to tell apart)."""
        names = class_names_for(self.corpus, self.utterances)
        if len(names) < 2:
            found = f"only {names[0]!r}" if names else "none"
            raise CorpusError(
                f"data.root {self.root}: {len(self.utterances)} utterances of one emotion at "
                f"most ({found}); a recogniser needs at least two"
            )
        return names

    @property
    def num_classes(self) -> int:
        """Number of emotion classes."""
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        """Values per frame."""
        return self.features.n_features

    # ---- Lightning hooks ----
    def prepare_data(self) -> None:
        """Build the feature cache once (rank 0 only under DDP)."""
        self.load_features()

    @property
    def cache_name(self) -> str:
        """Prefix of this corpus's cache files: `<corpus>-<root folder name>-<hash of its path>`.

        The hash keeps two folders of the same name apart (`cache --prune` and cache reuse only
        look at caches of this name).
        """
        root = Path(self.root).expanduser().resolve()
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:8]
        return f"{self.corpus}-{root.name}-{digest}"

    def speed_cache_name(self, speed: float) -> str:
        """Prefix of the cache files of this corpus played at `speed` (speed perturbation)."""
        return f"{self.cache_name}-speed{speed:g}"

    def speed_table(self, speed: float) -> FeatureTable:
        """Features of every usable utterance played at `speed` (cached like the table)."""
        return self._speed_cache(speed)[0]

    def speed_cache_path(self, speed: float) -> Path:
        """The cache file of the training copies at `speed` (built when missing)."""
        return self._speed_cache(speed)[1].path

    def _speed_cache(self, speed: float) -> tuple[FeatureTable, CacheInfo]:
        return load_or_build(
            self.load_features().paths,
            dataclasses.replace(self.features, speed=speed),
            self.cache_dir,
            self.speed_cache_name(speed),
            self.workers,
            self.progress,
            "skip",  # a file that decodes at 1.0 decodes at any speed
        )

    def stale_caches(self) -> list[Path]:
        """This corpus's cache files for other settings or file lists, speed copies included
        except those of this config's `speed_perturbation` (see `cache --prune`)."""
        usable = self.load_features().paths
        assert self.cache_info is not None
        current = self.cache_info.path
        speeds = {
            current.parent / f"{self.speed_cache_name(s)}-"
            f"{cache_key(usable, dataclasses.replace(self.features, speed=s), 'skip')}.pt"
            for s in self.speed_perturbation
        }
        return stale_caches(current.parent, self.cache_name, {current, *speeds})

    def load_features(self) -> FeatureTable:
        """Load (or build) the feature cache and align the utterance table with it."""
        if self.table is None:
            paths = [u.path for u in self.utterances]
            self.table, self.cache_info = load_or_build(
                paths,
                self.features,
                self.cache_dir,
                self.cache_name,
                self.workers,
                self.progress,
                self.on_bad_file,
            )
            self.skipped_files = [*getattr(self.utterances, "skipped", []), *self.table.failures]
            if len(self.table) != len(paths):
                kept = set(self.table.paths)
                self.__dict__["utterances"] = [u for u in self.utterances if u.path in kept]
            if self.cache_info.built and (stale := self.stale_caches()):
                log.info(
                    "%d older feature cache file(s) of %s remain in %s; "
                    "`lightning-ser cache -c CONFIG --prune` deletes them",
                    len(stale),
                    self.cache_name,
                    self.cache_info.path.parent,
                )
        return self.table

    def setup(self, stage: str | None = None) -> None:
        """Split, compute labels and the training-part normalisation statistics."""
        if self.split is not None:
            return
        table = self.load_features()
        labels = [u.label for u in self.utterances]
        self.labels = torch.tensor([self.class_names.index(lab) for lab in labels])
        self.groups = [self.group_of(u) for u in self.utterances]
        self.split = make_split(labels, self.groups, **self.split_args)
        speakers = [u.speaker for u in self.utterances]  # speakers, even with group_by
        if self.normalisation == "speaker":
            self.table = per_speaker_normalised(table, speakers)
            self.feature_mean = torch.zeros(table.frames.shape[1])
            self.feature_std = torch.ones(table.frames.shape[1])
        else:
            self.feature_mean, self.feature_std = training_statistics(table, self.split.train)
        self._set_training_table(table, speakers)
        self._save_split()

    def _set_training_table(self, raw: FeatureTable, speakers: list[str]) -> None:
        """What training batches are cut from: the table, plus speed-perturbed copies of the
        training part appended after it (`train_indices` lists the rows training draws)."""
        copies = [self.speed_table(speed) for speed in self.speed_perturbation]
        if self.normalisation == "speaker":
            copies = [per_speaker_normalised(c, speakers_of(c, raw, speakers), raw, speakers)
                      for c in copies]  # fmt: skip
        self.train_table, self.train_labels, self.train_indices = with_training_copies(
            self.table, self.labels, self.split.train, copies
        )

    @property
    def has_validation(self) -> bool:
        """Whether a validation part is carved out (`val_size: 0` trains on all of training)."""
        return self.split_args["val_size"] > 0

    @property
    def transductive(self) -> bool:
        """True when test utterances shaped the features the model sees: per-speaker statistics
        of a test speaker come from that speaker's own (unlabelled) test audio."""
        return self.normalisation == "speaker"

    def group_of(self, u: Utterance) -> str:
        """The speaker group of an utterance: its speaker, or the `group_by` metadata field."""
        if self.group_by == "speaker":
            return u.speaker
        if self.group_by not in u.meta:
            raise ValueError(f"data.group_by={self.group_by!r} is not a field of {u.path}")
        return str(u.meta[self.group_by])

    @property
    def split_identity(self) -> dict[str, Any]:
        """The split's identity (protocol, fold, seed, digest of the file lists, relative to the
        corpus folder so that `../data` and `/abs/data` agree), the corpus and the feature
        normalisation."""
        split = self._require_split()
        if getattr(self, "_split_identity", (None,))[0] is split:  # written with every checkpoint
            return self._split_identity[1]
        root = Path(self.root).expanduser().resolve()
        paths = []
        for p in self.table.paths:
            try:
                paths.append(str(Path(p).resolve().relative_to(root)))
            except ValueError:  # a manifest may list files elsewhere
                paths.append(str(Path(p).resolve()))
        identity = {"corpus": self.corpus, **split.identity(paths)}
        self._split_identity = (split, identity | {"normalisation": self.normalisation})
        return self._split_identity[1]

    def _save_split(self) -> None:
        """Write split.json into the run folder when it has none: the split a run trained on is
        never rewritten (a resume must keep it, and the split guard refuses one that does not)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return
        run_dir = Path(trainer.log_dir or trainer.default_root_dir)  # a collective: every rank
        target = run_dir / "split.json"
        if not trainer.is_global_zero or target.exists():
            return
        self.split.to_json(target, self.table.paths, self.groups)

    def train_dataloader(self) -> DataLoader:
        self._require_split()
        self._train_sampler = TrainBatchSampler(
            self.train_indices,
            self.train_labels[self.train_indices].tolist(),
            self.batch_size,
            self.windows_per_epoch,
            self.m_per_class,
            self._train_sampler.mode if self._train_sampler else "random",
        )
        dataset = WindowDataset(self.train_table.lengths, self.train_labels, self.window_frames)
        return DataLoader(dataset, sampler=self._train_sampler, batch_size=None)

    def set_sampling(self, mode: SamplingMode) -> None:
        """Switch how training batches are drawn from the next epoch on (used at stage changes)."""
        if mode == "m_per_class" and self.triplet_sampling != "m_per_class":
            mode = "random"
        if self._train_sampler is not None:
            self._train_sampler.mode = mode

    def _eval_batches(self, part: Part, rank: int = 0, world_size: int = 1) -> list[list[int]]:
        """Length-bucketed batches of a part; with world_size > 1, this rank's share of them."""
        split = self._require_split()
        lengths = self.table.lengths
        indices = sorted(getattr(split, part), key=lambda i: int(lengths[i]))
        return length_buckets(indices[rank::world_size], lengths, self.eval_batch_frames)

    def _eval_loader(self, part: Part) -> DataLoader:
        """Whole utterances of a part; under DDP each rank gets its own utterances, none twice.

        Utterances (not batches) are dealt round-robin, so every rank has work as long as there
        are as many utterances as ranks (a rank without batches would leave the others waiting).
        An iterable dataset, so that Lightning does not wrap it in a DistributedSampler, which
        pads ranks with repeated utterances and would count them twice in the metrics.
        """
        trainer = getattr(self, "trainer", None)
        world = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        batches = self._eval_batches(part, rank, world)
        return DataLoader(BatchList(UtteranceDataset(self.labels), batches), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def _require_split(self) -> Split:
        if self.split is None:
            self.setup()
        assert self.split is not None
        return self.split

    # ---- cutting batches ----
    def _table_on(self, device: torch.device, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(frames, offsets) on `device`: of the training table (copies included) or the table."""
        training = training and self.train_table is not self.table  # one copy when the same
        if (device, training) not in self._device_tables:
            table = self.train_table if training else self.table
            self._device_tables[device, training] = (
                table.frames.to(device),
                table.offsets.to(device),
            )
        return self._device_tables[device, training]

    def cut(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add features `x` [B, T, F] and `lengths` [B] to a batch of utterance indices.

        Training batches (they carry window starts) index the training table, others the table.
        """
        if "x" in batch:
            return batch
        training = "start" in batch
        frames, offsets = self._table_on(batch["index"].device, training)
        if training:
            x, lengths = gather_windows(
                frames, offsets, batch["index"], batch["start"], self.window_frames
            )
        else:
            x, lengths = gather_utterances(frames, offsets, batch["index"])
        return batch | {"x": x, "lengths": lengths}

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return batch if self.features_on_device else self.cut(batch)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return self.cut(batch)

    def iter_part(self, part: Part, device: torch.device | str = "cpu") -> Iterator[dict]:
        """Whole-utterance batches of a whole part (every rank sees all), cut, on `device`."""
        dataset = UtteranceDataset(self.labels)
        for indices in self._eval_batches(part):
            yield self.cut({k: v.to(device) for k, v in dataset[indices].items()})

    def summary(self) -> dict[str, Any]:
        """What the cache holds: utterances, speakers, counts per emotion, frames, path, seconds."""
        table = self.load_features()
        stale = self.stale_caches()
        counts = {c: 0 for c in self.class_names}
        for u in self.utterances:
            counts[u.label] += 1
        return {
            "corpus": self.corpus,
            "root": str(self.root),
            "utterances": len(table),
            "speakers": len({u.speaker for u in self.utterances}),
            "emotions": counts,
            "frames": int(table.frames.shape[0]),
            "features_per_frame": int(table.frames.shape[1]),
            "skipped_files": len(self.skipped_files),
            "cache": str(self.cache_info.path),
            "built": self.cache_info.built,
            "seconds": round(self.cache_info.seconds, 3),
            "speed_caches": {
                str(speed): str(self.speed_cache_path(speed)) for speed in self.speed_perturbation
            },
            "stale_caches": len(stale),
            "stale_cache_mb": round(sum(p.stat().st_size for p in stale if p.exists()) / 2**20, 1),
        }
