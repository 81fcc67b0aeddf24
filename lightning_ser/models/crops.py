"""Evaluation over crops: an utterance's embedding as the mean over evenly spaced windows.

The paper embeds whole utterances (temporal average pooling takes any length); a model trained
on short windows can also be evaluated on windows of the training length, averaged. Used by the
training module (validation, test, class embeddings) and by Phase III inference alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def evenly_spaced_crops(
    x: Tensor, lengths: Tensor, crops: int, window: int
) -> tuple[Tensor, Tensor]:
    """`crops` windows of `window` frames per utterance of a padded batch, evenly spaced.

    The first window starts at the utterance's first frame and the last ends at its last frame
    (one crop: the middle window; an utterance shorter than `window` gives `crops` copies of
    itself). Returns x
    [B * crops, window, F], zero past each utterance's end, and lengths [B * crops]; rows
    b * crops ... b * crops + crops - 1 belong to utterance b.
    """
    batch, total, _ = x.shape
    span = (lengths - window).clamp(min=0)  # [B]
    if crops == 1:  # one window: the middle of the utterance
        step = torch.full((1,), 0.5, device=x.device)
    else:  # first window at the start, last at the end
        step = torch.arange(crops, device=x.device) / (crops - 1)
    starts = torch.floor(span[:, None] * step[None, :]).long()  # [B, crops]
    crop_len = lengths.clamp(max=window)[:, None].expand(batch, crops)
    steps = torch.arange(window, device=x.device)
    pos = starts[..., None] + steps  # [B, crops, window]
    valid = steps < crop_len[..., None]
    rows = torch.arange(batch, device=x.device)[:, None, None]
    out = x[rows, pos.clamp(max=total - 1)] * valid[..., None]
    return out.reshape(batch * crops, window, -1), crop_len.reshape(-1)


def crop_mean(
    embed: Callable[[Tensor, Tensor | None], tuple[Tensor, Tensor]],
    x: Tensor,
    lengths: Tensor | None,
    crops: int,
    window: int,
) -> tuple[Tensor, Tensor]:
    """`embed(x, lengths)` -> (unit embeddings [B, D], logits [B, C]), whole or over crops.

    With `crops` = 0 `embed` sees the batch as given. Otherwise it sees
    `evenly_spaced_crops(x, lengths, crops, window)`; an utterance's embedding is then the
    L2-normalised mean of its crops' unit embeddings (the mean direction) and its logits the mean
    of theirs.
    """
    if crops <= 0:
        return embed(x, lengths)
    if lengths is None:
        lengths = torch.full((x.shape[0],), x.shape[1], device=x.device)
    crop_x, crop_lengths = evenly_spaced_crops(x, lengths, crops, window)
    emb, logits = embed(crop_x, crop_lengths)
    batch = x.shape[0]
    mean_emb = F.normalize(emb.reshape(batch, crops, -1).mean(dim=1), dim=-1)
    return mean_emb, logits.reshape(batch, crops, -1).mean(dim=1)
