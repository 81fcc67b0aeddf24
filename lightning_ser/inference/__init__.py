"""Phase III on files and folders: emotions, embeddings and exported models of new audio.

Everything here works from a training checkpoint alone, loaded with ``torch.load(...,
weights_only=True)`` so that no code stored in the file ever runs:

- :func:`load_checkpoint` -> :class:`EmotionModel` (the trained `Embedder` with class names and
  feature settings); :meth:`EmotionModel.predict_files` -> one :class:`Prediction` per file;
- :func:`write_predictions` / :func:`predictions_to_json`, :func:`embed_files`, :func:`find_audio`;
- :func:`export_torchscript` / :func:`export_onnx`: normalisation + network + L2 normalisation
  as one graph for use outside this package.
"""

from ..atomic import atomic_open
from ..embedder import CHECKPOINT_FORMAT, ExportableEmbedder
from .checkpoint import READABLE_FORMATS, CheckpointError, load_checkpoint
from .export import export_metadata, export_onnx, export_torchscript
from .files import (
    CSV_HEAD,
    INFERENCE_EXTENSIONS,
    embed_files,
    find_audio,
    predictions_to_json,
    write_predictions,
)
from .model import DEFAULT_BATCH_FRAMES, EmotionModel, Prediction, _length_batches

__all__ = [
    "CHECKPOINT_FORMAT",
    "CSV_HEAD",
    "DEFAULT_BATCH_FRAMES",
    "INFERENCE_EXTENSIONS",
    "READABLE_FORMATS",
    "CheckpointError",
    "EmotionModel",
    "ExportableEmbedder",
    "Prediction",
    "_length_batches",
    "atomic_open",
    "embed_files",
    "export_metadata",
    "export_onnx",
    "export_torchscript",
    "find_audio",
    "load_checkpoint",
    "predictions_to_json",
    "write_predictions",
]
