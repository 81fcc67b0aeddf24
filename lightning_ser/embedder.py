"""The trained network as one Lightning-free module: raw frames in, embeddings and answers out.

`Embedder` holds everything between feature frames and an emotion: the training statistics that
normalise the frames, the embedding network (backbone + pooling + embedding FC), the softmax head,
the class embeddings of the least-angle classifier and the evaluation crop setting. The training
module owns one; inference and export rebuild it from a checkpoint with `Embedder(**config)` and
`load_state_dict` alone (the shape of speechbrain's EncoderClassifier), so a new backbone or
pooling is added in `models/` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .embeddings import class_embeddings, least_angle_predict
from .models import EmbeddingNet
from .models.crops import crop_mean
from .models.layers import sequence_mask
from .models.pooling import PoolingName

#: Bumped whenever what a checkpoint holds for inference changes. Format 1 (no `embedder`
#: entry, keys without the `embedder.` prefix) is still read.
CHECKPOINT_FORMAT = 2
#: Default number of evaluation crops: 0 embeds whole utterances (the paper).
DEFAULT_EVAL_CROPS = 0
#: Default frames per evaluation crop (the paper's training window).
DEFAULT_CROP_FRAMES = 10


class Embedder(nn.Module):
    """Normalise -> embedding network -> (L2-normalised embedding, softmax logits).

    Example::

        embedder = Embedder(num_classes=8, backbone="resnet", layers=11)
        emb, logits = embedder(x, lengths)              # x: raw frames [B, T, 39]
        emotion, angles = embedder.classify(emb)        # least angle to each class embedding
        twin = Embedder(**embedder.config)              # the same network, e.g. from a checkpoint
        twin.load_state_dict(embedder.state_dict())

    Args:
        num_classes: number of emotions (rows of the class embeddings, outputs of the head).
        n_features: values per input frame.
        backbone, layers, channels, kernel_size, blocks, negative_slope, dropout, bidirectional,
            pooling, embedding_dim: the embedding network (see `models.EmbeddingNet`).
        eval_crops: 0 embeds whole utterances in eval mode; k > 0 the mean direction of k evenly
            spaced windows of `crop_frames` frames (training always sees the batch as given).
        crop_frames: frames per evaluation window.
        feature_normalisation: "utterance" standardises each utterance (each crop) with its own
            frames' mean and std (cepstral mean and variance normalisation: no other audio
            involved, so it holds for new speakers and at inference alike); otherwise frames
            are standardised with the training statistics ("speaker": the data module has
            already standardised each speaker, and the statistics are 0 and 1). "both" feeds
            the network the two side by side (2 x `n_features` values per frame): the level
            and spectral balance of an utterance against the training part, and its shape
            with those removed; the network learns what to take from each.
    """

    def __init__(
        self,
        num_classes: int = 8,
        n_features: int = 39,
        backbone: str = "resnet",
        layers: int = 11,
        channels: int = 128,
        kernel_size: int = 3,
        blocks: int = 2,
        negative_slope: float = 0.01,
        dropout: float = 0.0,
        bidirectional: bool = False,
        pooling: PoolingName = "mean",
        embedding_dim: int = 128,
        eval_crops: int = DEFAULT_EVAL_CROPS,
        crop_frames: int = DEFAULT_CROP_FRAMES,
        feature_normalisation: str = "train",
    ) -> None:
        super().__init__()
        if eval_crops < 0 or crop_frames < 1:
            raise ValueError(
                f"model.eval_crops must be >= 0 (got {eval_crops}) and "
                f"model.crop_frames >= 1 (got {crop_frames})"
            )
        self.config: dict[str, Any] = {
            "num_classes": num_classes,
            "n_features": n_features,
            "backbone": backbone,
            "layers": layers,
            "channels": channels,
            "kernel_size": kernel_size,
            "blocks": blocks,
            "negative_slope": negative_slope,
            "dropout": dropout,
            "bidirectional": bidirectional,
            "pooling": pooling,
            "embedding_dim": embedding_dim,
            "eval_crops": eval_crops,
            "crop_frames": crop_frames,
            "feature_normalisation": feature_normalisation,
        }
        self.net = EmbeddingNet(
            backbone=backbone,
            layers=layers,
            in_features=2 * n_features if feature_normalisation == "both" else n_features,
            channels=channels,
            kernel_size=kernel_size,
            blocks=blocks,
            negative_slope=negative_slope,
            dropout=dropout,
            bidirectional=bidirectional,
            embedding_dim=embedding_dim,
            pooling=pooling,
        )
        self.head = nn.Linear(embedding_dim, num_classes)
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.register_buffer("class_embeddings", torch.zeros(num_classes, embedding_dim))
        self.eval_crops = eval_crops
        self.crop_frames = crop_frames
        self.per_utterance = feature_normalisation in ("utterance", "both")
        self.against_training = feature_normalisation != "utterance"

    @property
    def n_features(self) -> int:
        """Values per input frame (of the raw features, before normalisation)."""
        return self.feature_mean.numel()

    @property
    def embedding_dim(self) -> int:
        """Dimension of the emotion embedding."""
        return self.net.embedding_dim

    @property
    def view(self) -> tuple[int, int]:
        """(crops, frames per crop) that evaluation embeds with; (0, 0) for whole utterances."""
        return (self.eval_crops, self.crop_frames) if self.eval_crops else (0, 0)

    def set_crops(self, eval_crops: int, crop_frames: int) -> None:
        """Change how evaluation embeds an utterance (whole, or the mean of crops)."""
        self.eval_crops, self.crop_frames = eval_crops, crop_frames
        self.config |= {"eval_crops": eval_crops, "crop_frames": crop_frames}

    def normalise(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """Standardise frames with the training statistics, or each utterance with its own
        (`feature_normalisation: utterance`), or both side by side (`both`: [B, T, 2F]);
        padded frames stay exactly zero."""
        mask = None if lengths is None else sequence_mask(lengths, x.shape[1], x.device)[..., None]
        views = []
        if self.against_training:
            trained = (x - self.feature_mean) / self.feature_std
            views.append(trained if mask is None else trained * mask)
        if self.per_utterance:
            views.append(utterance_standardised(x, mask))
        return views[0] if len(views) == 1 else torch.cat(views, dim=-1)

    def embed_view(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """One view of each row (no crops): (unit embedding [B, D], logits [B, C])."""
        raw = self.net(self.normalise(x, lengths), lengths)
        return F.normalize(raw.float(), dim=-1), self.head(raw)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Raw features [B, T, F] -> (unit embedding [B, D], logits [B, C]).

        In eval mode with `eval_crops` > 0 the embedding is the mean direction over crops.
        """
        crops = 0 if self.training else self.eval_crops
        return crop_mean(self.embed_view, x, lengths, crops, self.crop_frames)

    def classify(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """Least-angle class [N] and angles in degrees to every class embedding [N, C]."""
        return least_angle_predict(embeddings, self.class_embeddings)

    @torch.no_grad()
    def embed_batches(self, batches: Iterable[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Embeddings [N, D], logits [N, C], labels [N] and utterance indices [N] of
        whole-utterance evaluation batches (`x`, `lengths`, `label`, `index`), in batch order
        and in the current mode (call `eval()` first for evaluation)."""
        outs: dict[str, list[Tensor]] = {"embeddings": [], "logits": [], "labels": [], "index": []}
        for batch in batches:
            emb, logits = self(batch["x"], batch["lengths"])
            outs["embeddings"].append(emb)
            outs["logits"].append(logits)
            outs["labels"].append(batch["label"])
            outs["index"].append(batch["index"])
        return {k: torch.cat(v) for k, v in outs.items()}

    def refresh_class_embeddings(self, train_batches: Iterable[dict[str, Tensor]]) -> None:
        """Class embeddings from the training part's whole utterances in the current view (the
        paper's emotion embeddings: each emotion's mean direction), in eval mode."""
        was_training = self.training
        self.eval()
        train = self.embed_batches(train_batches)
        self.train(was_training)
        num_classes = self.class_embeddings.shape[0]
        self.class_embeddings.copy_(
            class_embeddings(train["embeddings"], train["labels"], num_classes)
        )


def utterance_standardised(x: Tensor, mask: Tensor | None) -> Tensor:
    """Each row of [B, T, F] standardised with the mean and (population) std of its valid frames
    (`mask` [B, T, 1], None: all valid); padded frames come out zero. Written here because
    torchaudio's SlidingWindowCmn normalises over a sliding window and knows no padding."""
    if mask is None:
        mask = torch.ones_like(x[..., :1])
    mask = mask.to(x.dtype)
    count = mask.sum(dim=1, keepdim=True).clamp_min(1.0)
    mean = (x * mask).sum(dim=1, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(dim=1, keepdim=True) / count
    return (x - mean) / var.sqrt().clamp_min(1e-5) * mask


class ExportableEmbedder(nn.Module):
    """Raw frames [B, T, F] (every frame valid) -> unit embeddings [B, D], for TorchScript / ONNX.

    The embedder's own normalisation and network, without padding masks (export one utterance
    per row, or rows of equal length) and without crops.
    """

    def __init__(self, embedder: Embedder) -> None:
        super().__init__()
        self.embedder = embedder

    def forward(self, frames: Tensor) -> Tensor:
        return self.embedder.embed_view(frames, None)[0]


def upgrade_state_dict(state: dict[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """Keys of a format-1 checkpoint (`net.`, `head.`, buffers at the top) -> `embedder.` keys."""
    moved = ("net.", "head.", "feature_mean", "feature_std", "class_embeddings")
    return {
        (f"{prefix}embedder.{k[len(prefix) :]}" if k[len(prefix) :].startswith(moved) else k): v
        for k, v in state.items()
    }


def config_from_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """The Embedder arguments of a format-1 checkpoint's module hyperparameters."""
    names = Embedder.__init__.__code__.co_varnames[1 : Embedder.__init__.__code__.co_argcount]
    return {k: hparams[k] for k in names if k in hparams}
