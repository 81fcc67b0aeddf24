"""The report's tables: number formatting, CSV and markdown tables, per-class and confusion rows."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

#: Column names of the per-class CSV tables.
PER_CLASS_HEADER = ("emotion", "precision", "recall", "f1", "support")
#: The per-class angle statistics, in the column order of ``deviations.csv``.
DEVIATION_KEYS = ("intra_mean", "intra_std", "inter_mean", "inter_std")


@dataclass(frozen=True)
class Table:
    """A CSV table as written: its header and its rows of cells."""

    header: list[str]
    rows: list[list[Any]]


def format_number(x: float, digits: int = 4) -> str:
    """A number for CSV files: fixed decimals, ``nan`` for NaN."""
    x = float(x)
    return "nan" if math.isnan(x) else f"{x:.{digits}f}"


def format_degrees(x: float) -> str:
    """An angle for markdown: one decimal and a degree sign, ``n/a`` for NaN."""
    x = float(x)
    return "n/a" if math.isnan(x) else f"{x:.1f}°"


def format_percent(x: float) -> str:
    """A share for markdown: a percentage with two decimals, ``n/a`` for NaN."""
    x = float(x)
    return "n/a" if math.isnan(x) else f"{100 * x:.2f}%"


def json_safe(x: Any) -> Any:
    """Floats for JSON, with NaN / inf as null (strict JSON has no NaN)."""
    if isinstance(x, Mapping):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, Tensor):
        return json_safe(x.tolist())
    if isinstance(x, (bool, int, str)) or x is None:
        return x
    x = float(x)
    return x if math.isfinite(x) else None


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table, with ``|`` in cells escaped."""
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join(["---"] * len(header)) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, table: Table) -> Path:
    """Write `table` to `path` as CSV and return `path`."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(table.header)
        writer.writerows(table.rows)
    return path


def read_csv(path: Path) -> Table:
    """Read a CSV file written by `write_csv` back (every cell as a string)."""
    with path.open(newline="") as f:
        header, *rows = list(csv.reader(f))
    return Table(header, rows)


def per_class_rows(m: Mapping[str, Any], names: Sequence[str]) -> list[list[str]]:
    """Precision, recall, F1 and support of each class, from `classification_metrics` output."""
    return [
        [
            name,
            format_number(m["precision"][e]),
            format_number(m["recall"][e]),
            format_number(m["f1"][e]),
            str(int(m["support"][e])),
        ]
        for e, name in enumerate(names)
    ]


def confusion_rows(confusion: Tensor, names: Sequence[str]) -> list[list[Any]]:
    """The confusion matrix's rows (true class), each led by the class name."""
    return [[name, *confusion[e].tolist()] for e, name in enumerate(names)]


def angle_matrix_table(matrix: Sequence[Sequence[float]], names: Sequence[str]) -> Table:
    """``angle_matrix.csv``: the C x C angle matrix in degrees."""
    return Table(
        ["emotion", *names],
        [[n, *(format_number(v) for v in matrix[e])] for e, n in enumerate(names)],
    )


def deviations_table(dev: Mapping[str, Any], names: Sequence[str]) -> Table:
    """``deviations.csv``: intra/inter angle means and standard deviations per class."""
    return Table(
        ["emotion", *DEVIATION_KEYS],
        [[n, *(format_number(dev[k][e]) for k in DEVIATION_KEYS)] for e, n in enumerate(names)],
    )


def tsne_table(
    coords: Sequence[Sequence[float]], labels: Sequence[int], names: Sequence[str]
) -> Table:
    """``tsne.csv``: the 2-D t-SNE coordinates of each utterance with its label."""
    return Table(
        ["x", "y", "label", "emotion"],
        [
            [format_number(a), format_number(b), int(e), names[int(e)]]
            for (a, b), e in zip(coords, labels, strict=True)
        ],
    )


def confusion_table(confusion: Tensor, names: Sequence[str]) -> Table:
    """``confusion_matrix*.csv``: counts, rows true class, columns predicted class."""
    return Table(["true \\ predicted", *names], confusion_rows(confusion, names))


def per_class_table(m: Mapping[str, Any], names: Sequence[str]) -> Table:
    """``per_class*.csv``: precision, recall, F1 and support per class."""
    return Table(list(PER_CLASS_HEADER), per_class_rows(m, names))
