"""Speed perturbation: training copies of utterances, appended after the corpus's own table.

Each speed's features come from their own cache (`EmotionDataModule.speed_table`), so training
decodes no audio. Only rows of the training part are copied; validation and test index the
table itself and never meet a copy.
"""

from __future__ import annotations

import torch

from .cache import FeatureTable


def speakers_of(copies: FeatureTable, table: FeatureTable, speakers: list[str]) -> list[str]:
    """The speaker of every utterance of `copies`, found by path in `table`."""
    speaker_of = dict(zip(table.paths, speakers, strict=True))
    return [speaker_of[p] for p in copies.paths]


def with_training_copies(
    table: FeatureTable, labels: torch.Tensor, train: list[int], copies: list[FeatureTable]
) -> tuple[FeatureTable, torch.Tensor, list[int]]:
    """(training table, its labels, the rows training draws): `table` followed by the training
    utterances of each table of `copies` (matched by path; a file missing there is skipped)."""
    if not copies:
        return table, labels, list(train)
    parts, all_labels, indices = [table], [labels], list(train)
    for copy in copies:
        rows = {p: i for i, p in enumerate(copy.paths)}
        kept = [i for i in train if table.paths[i] in rows]
        start = sum(len(t) for t in parts)
        indices += range(start, start + len(kept))
        parts.append(copy.select([rows[table.paths[i]] for i in kept]))
        all_labels.append(labels[kept])
    return FeatureTable.joined(parts), torch.cat(all_labels), indices
