"""The paper's tables and figures for one evaluated split, as files and as W&B media.

`write_report` turns test embeddings, their labels and the class embeddings into

- ``angle_matrix.csv`` / ``.png``: the angle matrix (the paper's Tables II/III);
- ``deviations.csv`` / ``.json`` and ``deviations_boxplot.png``: Tables VI/VII and Figure 5;
- ``tsne.csv`` / ``.png``: Figure 4;
- ``confusion_matrix.csv`` / ``.png`` and ``per_class.csv`` for the least-angle classifier (and the
  ``_softmax`` variants when softmax predictions are given);
- ``metrics.json`` and ``report.md``, which gathers all of it.

`log_report_to_wandb` logs those figures and tables to a W&B run.

Modules: `writer` (`write_report`), `figures`, `tables`, `markdown` (``report.md``) and `wandb`.
"""

from __future__ import annotations

from .markdown import (
    SPEAKER_INDEPENDENT_PROTOCOLS,
    UTTERANCE_LEVEL_PROTOCOLS,
    protocol_description,
)
from .wandb import WANDB_TABLES, log_report_to_wandb
from .writer import ReportFiles, write_report

__all__ = [
    "SPEAKER_INDEPENDENT_PROTOCOLS",
    "UTTERANCE_LEVEL_PROTOCOLS",
    "WANDB_TABLES",
    "ReportFiles",
    "log_report_to_wandb",
    "protocol_description",
    "write_report",
]
