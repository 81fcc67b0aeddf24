"""Export of the trained embedder as TorchScript or ONNX, and the metadata a non-Python user needs.

The graph is normalisation + embedding network + L2 normalisation (`embedder.ExportableEmbedder`:
the trained module itself, not a copy of its code). The MFCC front end stays in Python
(:class:`~lightning_ser.data.features.FeatureExtractor`); ``export.json`` records its settings.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..atomic import atomic_write_via
from ..embedder import CHECKPOINT_FORMAT, ExportableEmbedder
from .model import EmotionModel


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
    return ExportableEmbedder(copy.deepcopy(model.embedder).cpu()).eval()


def _example_frames(model: EmotionModel, frames: int, batch: int = 1) -> Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, frames, model.n_features, generator=gen)
    return x * model.embedder.feature_std.cpu() + model.embedder.feature_mean.cpu()


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

    return atomic_write_via(Path(path), write)


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

    return atomic_write_via(Path(path), write)


#: How the exported graph's input must be normalised, per `data.normalisation` of the training.
NORMALISATION_NOTES = {
    "train": "(frames - mean) / std, done inside the exported graph",
    "speaker": "per speaker: standardise each speaker's frames with that speaker's own mean and "
    "std before the graph (the model was trained with data.normalisation=speaker; the graph's "
    "mean and std are 0 and 1)",
    "utterance": "each utterance standardised with its own frames' mean and std, done inside "
    "the exported graph (mean and std unused)",
    "both": "(frames - mean) / std and each utterance standardised with its own frames' mean "
    "and std, side by side, done inside the exported graph",
}


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
        "mean": model.embedder.feature_mean.cpu().tolist(),
        "std": model.embedder.feature_std.cpu().tolist(),
        "normalisation": NORMALISATION_NOTES[model.hparams.get("feature_normalisation", "train")],
        "crops": crops_note(model.hparams),
        "hparams": {k: v for k, v in model.hparams.items() if not k.startswith("_")},
    }
