"""`log_report_to_wandb`: the report's figures as W&B images and its main tables as W&B tables."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .tables import Table, read_csv
from .writer import ReportFiles

#: CSV files that `log_report_to_wandb` logs as tables (by file stem).
WANDB_TABLES = (
    "angle_matrix",
    "deviations",
    "confusion_matrix",
    "per_class",
    "confusion_matrix_softmax",
    "per_class_softmax",
)


def _table_cell(cell: Any) -> Any:
    """A CSV cell as int, float (NaN -> None) or the string itself."""
    text = str(cell)
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        return None if isinstance(value, float) and math.isnan(value) else value
    return text


def log_report_to_wandb(
    run: Any,
    paths: Mapping[str, Path],
    prefix: str = "test",
    tables: Mapping[str, Table] | None = None,
    global_step: int | None = None,
) -> None:
    """Log the report's PNGs as images and its main CSVs as tables, in one ``run.log`` call.

    Images go under ``f"{prefix}/<file stem>"`` and tables under ``f"{prefix}/<file stem>_table"``.
    Tables come from `tables` (CSV file stem -> table), else from `paths` when `write_report`
    returned it, else from reading the CSV files back. With `global_step` the payload carries
    Lightning's `trainer/global_step`, so W&B shows the figures along the training curves.
    """
    import wandb

    if tables is None:
        tables = paths.tables if isinstance(paths, ReportFiles) else {}
    payload: dict[str, Any] = {}
    for path in map(Path, paths.values()):
        if path.suffix == ".png":
            payload[f"{prefix}/{path.stem}"] = wandb.Image(str(path), caption=path.stem)
        elif path.suffix == ".csv" and path.stem in WANDB_TABLES:
            table = tables.get(path.stem) or read_csv(path)
            data = [[_table_cell(c) for c in row] for row in table.rows]
            payload[f"{prefix}/{path.stem}_table"] = wandb.Table(
                columns=list(table.header), data=data
            )
    if payload:
        if global_step is not None:
            payload["trainer/global_step"] = global_step
        run.log(payload)
