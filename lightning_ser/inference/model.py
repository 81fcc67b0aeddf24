"""Phase III model: the trained embedder of a checkpoint applied to audio files.

An unseen utterance is turned into features, embedded by the trained network, and classified into
the emotion whose class embedding makes the least angle with it (the paper's Sec. III.B.3). A bad
file (unreadable, empty, silent) gives a row with status "error" and never stops the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import soundfile as sf
import torch
from torch import Tensor, nn

from ..data.batching import length_buckets
from ..data.features import AudioError, FeatureConfig, FeatureExtractor, read_audio, truncation
from ..embedder import Embedder
from ..embeddings import cosine_to_classes, least_angle_predict

#: Default bound on padded frames (batch size x longest utterance) per forward pass.
DEFAULT_BATCH_FRAMES = 100_000


@dataclass
class Prediction:
    """Phase III result for one file.

    Attributes:
        path: the audio file.
        status: "ok"; "truncated" when a WAV file holds less audio than its header promises
            (the prediction is made on what is there, `error` says how much is missing); or
            "error" when the file could not be turned into features (missing, unreadable, ...).
        emotion: the least-angle emotion (None on error).
        angles: degrees between the utterance's embedding and each emotion's class embedding.
        cosine: cosine of the least angle (None on error).
        softmax_emotion: the softmax head's answer (None on error).
        error: why the file failed (None when ok).
        duration_s: audio duration in seconds before silence trimming (None when undecodable).
        frames: feature frames the network saw (None on error).
    """

    path: str
    status: Literal["ok", "truncated", "error"]
    emotion: str | None = None
    angles: dict[str, float] = field(default_factory=dict)
    cosine: float | None = None
    softmax_emotion: str | None = None
    error: str | None = None
    duration_s: float | None = None
    frames: int | None = None

    @property
    def least_angle(self) -> float | None:
        """The smallest angle (degrees), i.e. the angle to `emotion`'s class embedding."""
        return min(self.angles.values()) if self.angles else None


@dataclass
class _Item:
    """One file on its way through the model."""

    path: str
    features: Tensor | None = None
    duration_s: float | None = None
    error: str | None = None
    note: str | None = None  # a usable file with a problem (truncated)


@dataclass
class _Result:
    """Network outputs for one file that worked."""

    item: _Item
    embedding: Tensor  # [D], L2-normalised
    logits: Tensor  # [C]
    frames: int


@dataclass(eq=False)
class EmotionModel:
    """The trained embedder of a checkpoint with what inference needs around it (see
    :func:`~lightning_ser.inference.checkpoint.load_checkpoint`).

    Attributes:
        embedder: the trained network (normalisation, embedding network, softmax head, class
            embeddings, crop setting), in eval mode.
        class_names: emotion names in class order.
        features: the feature front end's settings used in training.
        hparams: the module's hyperparameters as stored in the checkpoint.
        device: where the network runs.
    """

    embedder: Embedder
    class_names: list[str]
    features: FeatureConfig
    hparams: dict[str, Any]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.embedder = self.embedder.to(self.device).eval()
        self._extractor = FeatureExtractor(self.features)

    @property
    def class_embeddings(self) -> Tensor:
        """L2-normalised class embeddings [C, D]."""
        return self.embedder.class_embeddings

    @property
    def n_features(self) -> int:
        """Values per input frame."""
        return self.embedder.n_features

    @property
    def embedding_dim(self) -> int:
        """Dimension of the emotion embedding."""
        return self.embedder.embedding_dim

    def features_of(self, path: str | Path) -> tuple[Tensor, float]:
        """Features [T, F] of one file and its duration in seconds; AudioError on bad audio."""
        wave, rate = read_audio(path)
        duration = wave.numel() / rate
        return self._extractor.from_waveform(wave, rate, name=str(path)), duration

    @torch.no_grad()
    def forward_frames(
        self, frames_list: Sequence[Tensor], batch_frames: int = DEFAULT_BATCH_FRAMES
    ) -> tuple[Tensor, Tensor]:
        """Whole utterances [T_i, F] -> (L2-normalised embeddings [N, D], logits [N, C]) on CPU.

        A checkpoint trained with `data.eval_crops` > 0 embeds the mean over that many windows,
        exactly as its validation and test did (the embedder holds the setting).
        """
        n = len(frames_list)
        emb = torch.zeros(n, self.embedding_dim)
        logits = torch.zeros(n, len(self.class_names))
        lengths = []
        for i, frames in enumerate(frames_list):
            if frames.dim() != 2 or frames.shape[1] != self.n_features or frames.shape[0] < 1:
                raise ValueError(
                    f"utterance {i}: expected features of shape [T >= 1, {self.n_features}], "
                    f"got {tuple(frames.shape)}"
                )
            lengths.append(int(frames.shape[0]))
        if self.hparams.get("feature_normalisation", "train") == "speaker":
            frames_list = speaker_normalised(frames_list)
        for idx in _length_batches(lengths, batch_frames):
            batch = [frames_list[i] for i in idx]
            lens = torch.tensor([lengths[i] for i in idx], device=self.device)
            x = nn.utils.rnn.pad_sequence(
                [f.to(device=self.device, dtype=torch.float32) for f in batch], batch_first=True
            )
            batch_emb, batch_logits = self.embedder(x, lens)
            emb[idx] = batch_emb.cpu()
            logits[idx] = batch_logits.float().cpu()
        return emb, logits

    def embed(
        self, frames_list: Sequence[Tensor], batch_frames: int = DEFAULT_BATCH_FRAMES
    ) -> Tensor:
        """L2-normalised embeddings [N, D] of utterances given as features [T_i, F].

        Whole utterances, or the checkpoint's `eval_crops` windows averaged (see forward_frames).
        """
        return self.forward_frames(frames_list, batch_frames)[0]

    def _items(self, paths: Iterable[str | Path]) -> Iterator[_Item]:
        """Features of each file, or the reason they could not be computed."""
        for path in paths:
            item = _Item(str(path))
            if not Path(path).exists():
                item.error = "input not found"
                yield item
                continue
            try:
                item.features, item.duration_s = self.features_of(path)
                item.note = truncation(path)
            except AudioError as err:
                item.error = err.reason
                item.duration_s = _duration(path)
            except (RuntimeError, ValueError, OSError) as err:  # decoder / resampler trouble
                item.error = f"{type(err).__name__}: {err}"
                item.duration_s = _duration(path)
            yield item

    def _run(self, paths: Iterable[str | Path], batch_frames: int) -> Iterator[_Item | _Result]:
        """Files in order, as `_Result` (worked) or `_Item` with an error, in bounded batches."""
        pending: list[_Item] = []
        pending_frames = 0

        def flush() -> Iterator[_Item | _Result]:
            ok = [it for it in pending if it.features is not None]
            emb, logits = self.forward_frames([it.features for it in ok], batch_frames)
            results = {
                id(it): _Result(it, emb[k], logits[k], int(it.features.shape[0]))
                for k, it in enumerate(ok)
            }
            for it in ok:
                it.features = None  # done with them: keep memory flat over long runs
            for it in pending:
                yield results.get(id(it), it)

        for item in self._items(paths):
            pending.append(item)
            if item.features is not None:
                pending_frames += item.features.shape[0]
            if pending_frames >= batch_frames:
                yield from flush()
                pending, pending_frames = [], 0
        if pending:
            yield from flush()

    def _predictions(self, outs: Sequence[_Item | _Result]) -> list[Prediction]:
        results = [o for o in outs if isinstance(o, _Result)]
        if results:
            emb = torch.stack([r.embedding for r in results])
            ce = self.class_embeddings.cpu()
            pred, angles = least_angle_predict(emb, ce)
            cosine = cosine_to_classes(emb, ce).gather(1, pred[:, None]).squeeze(1)
            soft = torch.stack([r.logits for r in results]).argmax(dim=1)
        done = {}
        for k, r in enumerate(results):
            done[id(r)] = Prediction(
                path=r.item.path,
                status="truncated" if r.item.note else "ok",
                error=r.item.note,
                emotion=self.class_names[int(pred[k])],
                angles={
                    c: float(a) for c, a in zip(self.class_names, angles[k].tolist(), strict=True)
                },
                cosine=float(cosine[k]),
                softmax_emotion=self.class_names[int(soft[k])],
                duration_s=r.item.duration_s,
                frames=r.frames,
            )
        return [
            done[id(o)]
            if isinstance(o, _Result)
            else Prediction(path=o.path, status="error", error=o.error, duration_s=o.duration_s)
            for o in outs
        ]

    def predict_files(
        self, paths: Iterable[str | Path], batch_frames: int = DEFAULT_BATCH_FRAMES
    ) -> list[Prediction]:
        """Phase III for each file, in order; bad files give status "error" with the reason.

        Args:
            paths: audio files (see :func:`find_audio` for folders).
            batch_frames: bound on padded frames per forward pass (memory); results do not
                depend on it.
        """
        outs: list[_Item | _Result] = []
        predictions: list[Prediction] = []
        for out in self._run(paths, batch_frames):
            outs.append(out)
            if len(outs) >= 1024:
                predictions += self._predictions(outs)
                outs = []
        return predictions + self._predictions(outs)


def speaker_normalised(frames_list: Sequence[Tensor]) -> list[Tensor]:
    """Standardise utterances with the statistics of all of them, taken as one speaker's: what a
    model trained with data.normalisation=speaker expects (pass one speaker's files together)."""
    if not frames_list:
        return []
    every = torch.cat([f.float() for f in frames_list])
    mean, std = every.mean(dim=0), every.std(dim=0).clamp_min(1e-5)
    return [(f.float() - mean) / std for f in frames_list]


def _duration(path: str | Path) -> float | None:
    """Duration in seconds from the file header, None when it cannot be read."""
    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # noqa: BLE001 - any header trouble just means "unknown"
        return None


def _length_batches(lengths: Sequence[int], batch_frames: int) -> list[list[int]]:
    """Group indices by length so that each group's size x longest length <= batch_frames."""
    if batch_frames < 1:
        raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    return length_buckets(range(len(lengths)), torch.as_tensor(list(lengths)), batch_frames)
