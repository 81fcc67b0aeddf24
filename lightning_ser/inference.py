"""Phase III on files and folders: emotions, embeddings and exported models of new audio.

The paper's Phase III (Sec. III.B.3): an unseen utterance is turned into features, embedded by the
trained network, and classified into the emotion whose class embedding makes the least angle with
it. Everything here works from a training checkpoint alone, loaded with ``torch.load(...,
weights_only=True)`` so that no code stored in the file ever runs:

- :func:`load_checkpoint` -> :class:`EmotionModel` (network, softmax head, normalisation, class
  embeddings, feature settings);
- :meth:`EmotionModel.predict_files` -> one :class:`Prediction` per file; a bad file (unreadable,
  empty, silent) gives a row with status "error" and never stops the run;
- :func:`write_predictions` / :func:`predictions_to_json`, :func:`embed_files`;
- :func:`export_torchscript` / :func:`export_onnx`: normalisation + network + L2 normalisation as
  one graph for use outside this package. The MFCC front end is not part of the exported graph:
  it stays in Python (:class:`~lightning_ser.data.features.FeatureExtractor`), and ``export.json``
  (see :mod:`lightning_ser.inference_cli`) records its settings.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import pickle
import re
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data.batching import length_buckets
from .data.corpora.base import AUDIO_EXTENSIONS
from .data.features import AudioError, FeatureConfig, FeatureExtractor, read_audio
from .embeddings import cosine_to_classes, least_angle_predict
from .models.crops import crop_mean
from .models.embedding_net import EmbeddingNet

__all__ = [
    "INFERENCE_EXTENSIONS",
    "CheckpointError",
    "EmotionModel",
    "ExportableEmbedder",
    "Prediction",
    "embed_files",
    "export_onnx",
    "export_torchscript",
    "find_audio",
    "load_checkpoint",
    "predictions_to_json",
    "write_predictions",
]

#: The checkpoint format this version reads (``module.CHECKPOINT_FORMAT`` writes it).
CHECKPOINT_FORMAT = 1
#: Extensions `find_audio` picks up in folders: the corpus adapters' plus other soundfile formats.
INFERENCE_EXTENSIONS = tuple(AUDIO_EXTENSIONS) + (".au", ".caf", ".w64", ".rf64", ".opus")
#: Default bound on padded frames (batch size x longest utterance) per forward pass.
DEFAULT_BATCH_FRAMES = 100_000
#: Columns of the predictions CSV around the per-emotion angle columns.
CSV_HEAD = ("path", "status", "emotion", "cosine", "softmax_emotion")
CSV_TAIL = ("frames", "duration_s", "error")
_HPARAM_KEYS = ("num_classes", "class_names", "backbone", "layers", "embedding_dim")
_BUFFERS = ("feature_mean", "feature_std", "class_embeddings")


class CheckpointError(ValueError):
    """A checkpoint unusable for inference; the message names the file and the problem."""


# ---------------------------------------------------------------------------- atomic writes
def _temp_name(path: Path) -> Path:
    """A fresh hidden name next to `path` (same folder, so os.replace is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to `path`; move it onto `path` only when the block succeeds.

    Text mode writes UTF-8 with newline="" (as the csv module wants). The file gets the usual
    permissions (umask), unlike tempfile.mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    kwargs = {"newline": "", "encoding": "utf-8"} if "b" not in mode else {}
    try:
        with open(tmp, mode.replace("w", "x"), **kwargs) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _atomic_via(path: Path, write: Callable[[str], None]) -> Path:
    """Let `write(temporary_path)` produce the file, then move it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------- predictions
@dataclass
class Prediction:
    """Phase III result for one file.

    Attributes:
        path: the audio file.
        status: "ok", or "error" when the file could not be turned into features.
        emotion: the least-angle emotion (None on error).
        angles: degrees between the utterance's embedding and each emotion's class embedding.
        cosine: cosine of the least angle (None on error).
        softmax_emotion: the softmax head's answer (None on error).
        error: why the file failed (None when ok).
        duration_s: audio duration in seconds before silence trimming (None when undecodable).
        frames: feature frames the network saw (None on error).
    """

    path: str
    status: Literal["ok", "error"]
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


@dataclass
class _Result:
    """Network outputs for one file that worked."""

    item: _Item
    embedding: Tensor  # [D], L2-normalised
    logits: Tensor  # [C]
    frames: int


# ---------------------------------------------------------------------------- the model
@dataclass(eq=False)
class EmotionModel:
    """The inference-only part of a trained EmotionEmbeddingModule (see :func:`load_checkpoint`).

    Attributes:
        net: the embedding network, in eval mode.
        head: the softmax head (raw embedding -> logits).
        mean: per-feature mean of the training frames [F].
        std: per-feature standard deviation of the training frames [F].
        class_embeddings: L2-normalised class embeddings [C, D].
        class_names: emotion names in class order.
        features: the feature front end's settings used in training.
        hparams: the module's hyperparameters as stored in the checkpoint.
        device: where the network runs.
    """

    net: EmbeddingNet
    head: nn.Linear
    mean: Tensor
    std: Tensor
    class_embeddings: Tensor
    class_names: list[str]
    features: FeatureConfig
    hparams: dict[str, Any]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.net = self.net.to(self.device).eval()
        self.head = self.head.to(self.device).eval()
        self.mean = self.mean.to(self.device)
        self.std = self.std.to(self.device)
        self.class_embeddings = self.class_embeddings.to(self.device)
        self._extractor = FeatureExtractor(self.features)

    @property
    def n_features(self) -> int:
        """Values per input frame."""
        return self.net.in_features

    @property
    def embedding_dim(self) -> int:
        """Dimension of the emotion embedding."""
        return self.net.embedding_dim

    def features_of(self, path: str | Path) -> tuple[Tensor, float]:
        """Features [T, F] of one file and its duration in seconds; AudioError on bad audio."""
        wave, rate = read_audio(path)
        duration = wave.numel() / rate
        return self._extractor.from_waveform(wave, rate, name=str(path)), duration

    def normalise(self, x: Tensor, lengths: Tensor) -> Tensor:
        """(x - mean) / std with padded frames set to exactly zero (as the training module)."""
        x = (x - self.mean) / self.std
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        return x * valid[..., None]

    def _embed(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        raw = self.net(self.normalise(x, lengths), lengths)
        return F.normalize(raw.float(), dim=-1), self.head(raw)

    @torch.no_grad()
    def forward_frames(
        self, frames_list: Sequence[Tensor], batch_frames: int = DEFAULT_BATCH_FRAMES
    ) -> tuple[Tensor, Tensor]:
        """Whole utterances [T_i, F] -> (L2-normalised embeddings [N, D], logits [N, C]) on CPU.

        A checkpoint trained with `data.eval_crops` > 0 (model hyperparameter `eval_crops`)
        embeds the mean over that many windows, exactly as its validation and test did.
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
        for idx in _length_batches(lengths, batch_frames):
            batch = [frames_list[i] for i in idx]
            lens = torch.tensor([lengths[i] for i in idx], device=self.device)
            x = nn.utils.rnn.pad_sequence(
                [f.to(device=self.device, dtype=torch.float32) for f in batch], batch_first=True
            )
            batch_emb, batch_logits = crop_mean(
                self._embed,
                x,
                lens,
                self.hparams.get("eval_crops", 0),
                self.hparams.get("crop_frames", 10),
            )
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
            try:
                item.features, item.duration_s = self.features_of(path)
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
                status="ok",
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


# ---------------------------------------------------------------------------- loading
def _load_dict(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, not a checkpoint file")
    if not zipfile.is_zipfile(path) and not _starts_like_pickle(path):
        raise CheckpointError(f"{path} is not a PyTorch checkpoint file (neither zip nor pickle)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        match = re.search(r"Unsupported global: (?:GLOBAL )?([\w.]+)", text)
        if match:
            raise CheckpointError(
                f"{path} cannot be loaded without running code stored in it (it holds "
                f"{match.group(1)}, which weights_only=True refuses); it is not a lightning-ser "
                "checkpoint"
            ) from err
        raise CheckpointError(f"{path} is not a PyTorch checkpoint file (unreadable)") from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a PyTorch checkpoint file ({first})") from err
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"{path} is not a lightning-ser checkpoint (it holds a {type(ckpt).__name__}, "
            "not a checkpoint dictionary)"
        )
    if "lightning_ser_format" not in ckpt:
        raise CheckpointError(
            f"{path} is not a lightning-ser checkpoint (no 'lightning_ser_format' entry; "
            "use a .ckpt written by `lightning fit` of this project)"
        )
    fmt = ckpt["lightning_ser_format"]
    if fmt != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} was made by another version of lightning-ser (format {fmt}, this version "
            f"reads {CHECKPOINT_FORMAT})"
        )
    for key in ("hyper_parameters", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{path} is incomplete: it has no '{key}'")
    return ckpt


def _starts_like_pickle(path: Path) -> bool:
    """Whether the file begins with a pickle protocol 2+ header (a legacy torch.save file)."""
    with open(path, "rb") as handle:
        return handle.read(1) == b"\x80"


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> EmotionModel:
    """Load the inference model of a training checkpoint without running code stored in it.

    Raises:
        CheckpointError: missing file, not a checkpoint, another format, or incomplete contents.
    """
    path = Path(path).expanduser()
    ckpt = _load_dict(path)
    hp = dict(ckpt["hyper_parameters"])
    state = ckpt["state_dict"]
    missing = [k for k in _HPARAM_KEYS if k not in hp] + [k for k in _BUFFERS if k not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete: missing {', '.join(missing)}")
    class_names = [str(c) for c in hp["class_names"]]
    if len(class_names) != hp["num_classes"]:
        raise CheckpointError(
            f"{path}: {len(class_names)} class names for num_classes={hp['num_classes']}"
        )
    try:
        features = FeatureConfig(**(hp.get("feature_config") or {}))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: unusable feature_config ({err})") from err
    n_features = int(hp.get("n_features", features.n_features))
    if n_features != features.n_features:
        raise CheckpointError(
            f"{path}: the network takes {n_features} values per frame but its feature_config "
            f"makes {features.n_features}"
        )
    try:
        net = EmbeddingNet(
            backbone=hp["backbone"],
            layers=hp["layers"],
            in_features=n_features,
            channels=hp.get("channels", 128),
            kernel_size=hp.get("kernel_size", 3),
            blocks=hp.get("blocks", 2),
            negative_slope=hp.get("negative_slope", 0.01),
            dropout=hp.get("dropout", 0.0),
            bidirectional=hp.get("bidirectional", False),
            embedding_dim=hp["embedding_dim"],
        )
        head = nn.Linear(hp["embedding_dim"], hp["num_classes"])
        net.load_state_dict(_sub_state(state, "net."))
        head.load_state_dict(_sub_state(state, "head."))
    except (RuntimeError, ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: the network cannot be rebuilt from it ({err})") from err
    class_emb = state["class_embeddings"].float()
    if class_emb.shape != (len(class_names), hp["embedding_dim"]):
        raise CheckpointError(
            f"{path}: class_embeddings has shape {tuple(class_emb.shape)}, expected "
            f"{(len(class_names), hp['embedding_dim'])}"
        )
    if not bool(class_emb.abs().sum(dim=1).gt(0).any()):
        raise CheckpointError(
            f"{path} has no class embeddings (all zero): it was saved before the first "
            "validation, so it cannot classify"
        )
    return EmotionModel(
        net=net,
        head=head,
        mean=state["feature_mean"].float(),
        std=state["feature_std"].float(),
        class_embeddings=class_emb,
        class_names=class_names,
        features=features,
        hparams=hp,
        device=torch.device(device),
    )


def _sub_state(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------------- files
def find_audio(inputs: Iterable[str | Path]) -> list[Path]:
    """Audio files among `inputs` (files kept as given; folders searched recursively, sorted).

    Folders contribute files whose extension is in INFERENCE_EXTENSIONS; a file named directly is
    kept whatever its extension (a bad one becomes an error row later). Duplicates are dropped.

    Raises:
        FileNotFoundError: an input does not exist (the message names it).
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for given in inputs:
        path = Path(given).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"input not found: {given}")
        if path.is_dir():
            candidates = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in INFERENCE_EXTENSIONS
            )
        else:
            candidates = [path]
        for p in candidates:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                found.append(p)
    return found


def csv_columns(class_names: Sequence[str]) -> list[str]:
    """Columns of the predictions CSV for these emotions."""
    return [*CSV_HEAD, *(f"angle_{c}" for c in class_names), *CSV_TAIL]


def _fmt(value: float | None, digits: int = 6) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def write_predictions(
    preds: Sequence[Prediction], out_csv: str | Path, class_names: Sequence[str] | None = None
) -> Path:
    """Write predictions as CSV (one angle column per emotion), atomically; returns the path.

    `class_names` fixes the angle columns; by default they come from the first "ok" prediction.
    """
    if class_names is None:
        class_names = next((list(p.angles) for p in preds if p.angles), [])
    columns = csv_columns(class_names)
    out_csv = Path(out_csv)
    with atomic_open(out_csv) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for p in preds:
            row = {
                "path": p.path,
                "status": p.status,
                "emotion": p.emotion or "",
                "cosine": _fmt(p.cosine),
                "softmax_emotion": p.softmax_emotion or "",
                "frames": "" if p.frames is None else p.frames,
                "duration_s": _fmt(p.duration_s, 4),
                "error": p.error or "",
            }
            for c in class_names:
                row[f"angle_{c}"] = _fmt(p.angles.get(c), 4)
            writer.writerow(row)
    return out_csv


def predictions_to_json(preds: Sequence[Prediction]) -> list[dict[str, Any]]:
    """Predictions as JSON-ready dictionaries (field names as in Prediction, plus least_angle)."""
    out = []
    for p in preds:
        row = {f.name: getattr(p, f.name) for f in fields(p)}
        row["angles"] = dict(p.angles)
        row["least_angle"] = p.least_angle
        out.append(row)
    return out


def ravdess_label(path: str | Path) -> str:
    """The emotion a RAVDESS file name encodes, or "" when the name is not of that form."""
    from .data.corpora.ravdess import parse_name

    try:
        return parse_name(Path(path).stem)["emotion"]
    except (ValueError, KeyError):
        return ""


def embed_files(
    model: EmotionModel,
    paths: Iterable[str | Path],
    out_dir: str | Path,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
) -> dict[str, Any]:
    """Write `embeddings.npy` [N_ok, D] float32 and `index.csv` for `paths`, atomically.

    `index.csv` has one row per file (row, path, label, status, error): `row` indexes
    `embeddings.npy` for files that worked and is empty for files that failed; `label` is the
    emotion of a RAVDESS file name, else empty.

    Returns:
        {"embeddings": path, "index": path, "files": N, "ok": K, "errors": M}.
    """
    out_dir = Path(out_dir)
    rows: list[dict[str, Any]] = []
    vectors: list[Tensor] = []
    for out in model._run(paths, batch_frames):
        if isinstance(out, _Result):
            rows.append({"row": len(vectors), "path": out.item.path, "status": "ok", "error": ""})
            vectors.append(out.embedding)
        else:
            rows.append({"row": "", "path": out.path, "status": "error", "error": out.error})
    for row in rows:
        row["label"] = ravdess_label(row["path"])
    array = (
        torch.stack(vectors).numpy().astype(np.float32)
        if vectors
        else np.zeros((0, model.embedding_dim), dtype=np.float32)
    )
    npy, index = out_dir / "embeddings.npy", out_dir / "index.csv"
    with atomic_open(npy, "wb") as handle:
        np.save(handle, array)
    with atomic_open(index) as handle:
        writer = csv.DictWriter(handle, fieldnames=["row", "path", "label", "status", "error"])
        writer.writeheader()
        writer.writerows(rows)
    ok = len(vectors)
    return {
        "embeddings": npy,
        "index": index,
        "files": len(rows),
        "ok": ok,
        "errors": len(rows) - ok,
    }


# ---------------------------------------------------------------------------- export
class ExportableEmbedder(nn.Module):
    """Raw frames [B, T, F] -> L2-normalised emotion embedding [B, D], in one traceable graph.

    Normalisation with the training statistics (buffers `mean`, `std`), the embedding network and
    the L2 normalisation. Every frame of every row counts as valid (no padding: export one
    utterance per row, or equal lengths). The MFCC front end is not included: compute the features
    in Python with FeatureExtractor (or reproduce its settings from export.json).
    """

    def __init__(self, net: EmbeddingNet, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).cpu().eval()
        self.register_buffer("mean", mean.detach().float().cpu().clone())
        self.register_buffer("std", std.detach().float().cpu().clone())

    def forward(self, frames: Tensor) -> Tensor:
        """`frames` [B, T, F] raw features -> [B, D] unit-norm embeddings."""
        raw = self.net((frames - self.mean) / self.std)
        return F.normalize(raw.float(), dim=-1)


def crops_note(hparams: dict[str, Any]) -> str:
    """How the exported graph relates to the checkpoint's `eval_crops` setting."""
    crops = int(hparams.get("eval_crops", 0))
    if not crops:
        return "none: the model was evaluated on whole utterances, as the graph embeds them"
    window = int(hparams.get("crop_frames", 10))
    return (
        f"the model was evaluated on the mean of {crops} evenly spaced windows of {window} "
        f"frames (lightning_ser.models.crops); to match, run the graph on those windows, "
        f"average their embeddings and L2-normalise the mean"
    )


def exportable(model: EmotionModel) -> ExportableEmbedder:
    """The model's exportable embedder (a CPU copy in eval mode)."""
    return ExportableEmbedder(model.net, model.mean, model.std).eval()


def _example_frames(model: EmotionModel, frames: int, batch: int = 1) -> Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, model.n_features, generator=gen)
    return x * model.std.cpu() + model.mean.cpu()


def export_torchscript(model: EmotionModel, path: str | Path) -> Path:
    """Save a traced TorchScript embedder ([B, T, F] raw frames -> [B, D]) atomically.

    The trace is checked against eager execution on a second utterance length. The MFCC front end
    stays in Python and is not part of the file.
    """
    wrapper = exportable(model)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        traced = torch.jit.trace(
            wrapper,
            _example_frames(model, 50),
            check_inputs=[(_example_frames(model, 73, batch=2),)],
            check_tolerance=1e-4,
        )

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
            torch.jit.save(traced, tmp)

    return _atomic_via(Path(path), write)


def export_onnx(model: EmotionModel, path: str | Path, opset_version: int = 17) -> Path:
    """Save an ONNX embedder (input "frames" [batch, time, F] -> output "embedding") atomically.

    Batch and time are dynamic axes. Uses the TorchScript-based exporter (``dynamo=False``). The
    MFCC front end stays in Python and is not part of the graph.
    """
    wrapper = exportable(model)

    def write(tmp: str) -> None:
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                (_example_frames(model, 50),),
                tmp,
                input_names=["frames"],
                output_names=["embedding"],
                dynamic_axes={"frames": {0: "batch", 1: "time"}, "embedding": {0: "batch"}},
                opset_version=opset_version,
                dynamo=False,
            )

    return _atomic_via(Path(path), write)


def export_metadata(model: EmotionModel) -> dict[str, Any]:
    """Everything besides the graph a non-Python user needs: classes, front end, statistics."""
    return {
        "lightning_ser_format": CHECKPOINT_FORMAT,
        "input": {
            "name": "frames",
            "shape": ["batch", "time", model.n_features],
            "meaning": "raw (unnormalised) feature frames of the front end below",
        },
        "output": {
            "name": "embedding",
            "shape": ["batch", model.embedding_dim],
            "meaning": "L2-normalised emotion embedding",
        },
        "classify": "emotion = class whose class_embeddings row makes the least angle "
        "(largest cosine) with the embedding",
        "class_names": list(model.class_names),
        "class_embeddings": model.class_embeddings.cpu().tolist(),
        "feature_config": asdict(model.features),
        "feature_front_end": "lightning_ser.data.features.FeatureExtractor (torchaudio MFCC + "
        "deltas, computed by lightning_ser.data.dsp); not part of the exported graph",
        "mean": model.mean.cpu().tolist(),
        "std": model.std.cpu().tolist(),
        "normalisation": "(frames - mean) / std, done inside the exported graph",
        "crops": crops_note(model.hparams),
        "hparams": {k: v for k, v in model.hparams.items() if not k.startswith("_")},
    }
