"""Batches cut from the frame table: random training windows and length-bucketed whole utterances.

Loaders yield only utterance indices (and window starts); the frames are gathered afterwards with
one indexing operation on whatever device holds the table, so on a GPU no per-batch host work is
done beyond indexing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from torch.utils.data import Dataset, IterableDataset, Sampler

SamplingMode = Literal["random", "m_per_class"]

warnings.filterwarnings("ignore", message="Your `IterableDataset` has `__len__` defined")


def gather_windows(
    frames: torch.Tensor,
    offsets: torch.Tensor,
    index: torch.Tensor,
    start: torch.Tensor,
    window: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of up to `window` consecutive frames, zero-padded past an utterance's end.

    An utterance shorter than `window` comes whole, so a window longer than every utterance trains
    on whole utterances. Returns x [B, W, F] with W = min(window, longest valid row) and lengths
    [B] (valid frames per row).
    """
    lengths = offsets[index + 1] - offsets[index]
    valid_len = (lengths - start).clamp(min=1, max=window)
    steps = torch.arange(int(valid_len.max()), device=frames.device)
    valid = steps[None, :] < valid_len[:, None]
    pos = offsets[index, None] + start[:, None] + steps[None, :]
    pos = torch.where(valid, pos, offsets[index, None])
    return frames[pos] * valid[..., None], valid_len


def gather_utterances(
    frames: torch.Tensor, offsets: torch.Tensor, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole utterances right-padded with zeros to the longest: x [B, T, F] and lengths [B]."""
    lengths = offsets[index + 1] - offsets[index]
    steps = torch.arange(int(lengths.max()), device=frames.device)
    valid = steps[None, :] < lengths[:, None]
    pos = torch.where(valid, offsets[index, None] + steps[None, :], offsets[index, None])
    return frames[pos] * valid[..., None], lengths


def random_starts(lengths: torch.Tensor, window: int, generator: torch.Generator | None = None):
    """A uniformly random window start per utterance (0 when it is shorter than the window)."""
    room = (lengths - window + 1).clamp(min=1)
    return (torch.rand(len(lengths), generator=generator) * room).long()


class WindowDataset(Dataset):
    """Maps a list of utterance indices to a training batch description (index, start, label)."""

    def __init__(self, lengths: torch.Tensor, labels: torch.Tensor, window: int) -> None:
        self.lengths, self.labels, self.window = lengths, labels, window

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, batch: Sequence[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(batch, dtype=torch.long)
        start = random_starts(self.lengths[index], self.window)
        return {"index": index, "start": start, "label": self.labels[index]}


class UtteranceDataset(Dataset):
    """Maps a list of utterance indices to an evaluation batch description (index, label)."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, batch: Sequence[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(batch, dtype=torch.long)
        return {"index": index, "label": self.labels[index]}


class BatchList(IterableDataset):
    """Yields `dataset[batch]` for a fixed list of index batches (evaluation order).

    Its length is exact (batches are fixed and loaded in the main process), so Lightning's
    warning about `__len__` of iterable datasets under multi-process loading does not apply.
    """

    def __init__(self, dataset: Dataset, batches: list[list[int]]) -> None:
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for batch in self.batches:
            yield self.dataset[batch]


class TrainBatchSampler(Sampler[list[int]]):
    """Training batches of utterance positions, either shuffled or m per class.

    The mode can change between epochs (softmax stage: random; triplet stage: m per class, so every
    batch holds positives and negatives for the miner); the number of batches per epoch does not.

    Args:
        positions: utterance indices (into the whole table) that may be drawn.
        labels: class of each entry of `positions`.
        batch_size: utterances per batch.
        repeats: times each utterance is drawn per epoch (one random window each time).
        m_per_class: utterances of each class in an m-per-class batch.
        mode: "random" or "m_per_class".
    """

    def __init__(
        self,
        positions: Sequence[int],
        labels: Sequence[int],
        batch_size: int,
        repeats: int = 1,
        m_per_class: int = 4,
        mode: SamplingMode = "random",
    ) -> None:
        self.positions = torch.as_tensor(positions, dtype=torch.long)
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.batch_size = min(batch_size, len(self.positions) * repeats)
        self.repeats = repeats
        self.m_per_class = m_per_class
        self.mode = mode
        self.num_batches = math.ceil(len(self.positions) * repeats / self.batch_size)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[list[int]]:
        total = self.num_batches * self.batch_size
        if self.mode == "m_per_class":
            # imported here: pytorch-metric-learning takes seconds to import, and inference
            # (which shares this module's length_buckets) never needs it
            from pytorch_metric_learning.samplers import MPerClassSampler

            classes = len(torch.unique(self.labels))
            m = self.m_per_class
            size = min(self.batch_size // m * m, classes * m)
            if size < 2 * m:
                raise ValueError(
                    f"data.batch_size={self.batch_size} and data.m_per_class={m} leave fewer than"
                    f" two classes per batch ({classes} classes available)"
                )
            sampler = MPerClassSampler(self.labels.tolist(), m, size, self.num_batches * size)
            order = torch.as_tensor(list(iter(sampler)), dtype=torch.long)
            for b in range(self.num_batches):
                yield self.positions[order[b * size : (b + 1) * size]].tolist()
            return
        n = len(self.positions)
        order = torch.cat([torch.randperm(n) for _ in range(math.ceil(total / n))])
        drawn = order[: len(self.positions) * self.repeats]
        for b in range(self.num_batches):
            yield self.positions[drawn[b * self.batch_size : (b + 1) * self.batch_size]].tolist()


def length_buckets(
    positions: Sequence[int], lengths: torch.Tensor, max_frames: int
) -> list[list[int]]:
    """Group utterances of similar length so that batch size x longest length <= max_frames."""
    order = sorted(positions, key=lambda i: int(lengths[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = int(lengths[i])  # sorted ascending, so the newcomer is the longest
        if current and (len(current) + 1) * longest > max_frames:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
