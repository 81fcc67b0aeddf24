"""Loading a training checkpoint for inference, without running code stored in it.

The checkpoint is read with ``torch.load(..., weights_only=True)``; the network is rebuilt as an
`embedder.Embedder` from the checkpoint's `embedder` entry and its weights by `load_state_dict`
alone. Format-1 checkpoints (before the embedder existed) are upgraded on the fly.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.features import FeatureConfig
from ..embedder import CHECKPOINT_FORMAT, Embedder, config_from_hparams, upgrade_state_dict
from .model import EmotionModel

#: Checkpoint formats this version reads (it writes ``CHECKPOINT_FORMAT``).
READABLE_FORMATS = (1, CHECKPOINT_FORMAT)
_HPARAM_KEYS = ("num_classes", "class_names", "backbone", "layers", "embedding_dim")
_BUFFERS = ("feature_mean", "feature_std", "class_embeddings")


class CheckpointError(ValueError):
    """A checkpoint unusable for inference; the message names the file and the problem."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A lightning-ser checkpoint as a dictionary, read with weights_only=True (no code runs).

    Raises:
        CheckpointError: missing, not a checkpoint, holding objects that would run code,
            truncated, or of another format; the message names the file.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, not a checkpoint file")
    if not zipfile.is_zipfile(path) and not _starts_like_pickle(path):
        raise CheckpointError(f"{path} is not a PyTorch checkpoint file (neither zip nor pickle)")
    if _is_torchscript(path):
        raise CheckpointError(
            f"{path} is a TorchScript export (`lightning-ser export`), not a training checkpoint: "
            "load it with torch.jit.load, or give the .ckpt it was exported from"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "truncated" in text or "EOF" in text:
            raise CheckpointError(f"{path} is not a PyTorch checkpoint file (truncated)") from err
        match = re.search(
            r"(?:Unsupported global|Trying to call reduce for): (?:GLOBAL )?([\w.]+)", text
        )
        what = f" ({match.group(1)})" if match else ""
        raise CheckpointError(
            f"{path} holds objects that would run code when loaded{what}; it was refused "
            "(a lightning-ser checkpoint holds only tensors and plain values)"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        first = first.split(". This is")[0]  # torch's long advice after the reason
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
    if fmt not in READABLE_FORMATS:
        raise CheckpointError(
            f"{path} was made by another version of lightning-ser (format {fmt}, this version "
            f"reads {', '.join(map(str, READABLE_FORMATS))})"
        )
    for key in ("hyper_parameters", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{path} is incomplete: it has no '{key}'")
    return ckpt


def _is_torchscript(path: Path) -> bool:
    """Whether a zip file is a TorchScript archive (it holds compiled code under `code/`)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())


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
    return model_of_checkpoint(read_checkpoint(path), path, device)


def model_of_checkpoint(
    ckpt: dict[str, Any], path: Path, device: str | torch.device = "cpu"
) -> EmotionModel:
    """The inference model of a checkpoint already read by `read_checkpoint` (`path` names it
    in errors)."""
    hp = dict(ckpt["hyper_parameters"])
    state = ckpt["state_dict"]
    if ckpt["lightning_ser_format"] < 2:
        state = upgrade_state_dict(state)
    missing = [k for k in _HPARAM_KEYS if k not in hp]
    missing += [k for k in _BUFFERS if f"embedder.{k}" not in state]
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
    config = ckpt.get("embedder") or config_from_hparams(hp)
    config = {**config, "n_features": n_features}
    try:
        embedder = Embedder(**config)
        embedder.load_state_dict(_sub_state(state, "embedder."))
    except (RuntimeError, ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: the network cannot be rebuilt from it ({err})") from err
    class_emb = embedder.class_embeddings
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
        embedder=embedder,
        class_names=class_names,
        features=features,
        hparams=hp,
        device=torch.device(device),
    )


def _sub_state(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
