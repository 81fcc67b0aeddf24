"""The report's figures: angle matrix, confusion matrix, deviation box plots and t-SNE.

Figures are built as `matplotlib.figure.Figure` objects and saved directly, without pyplot, so
writing a report neither needs nor changes the process's matplotlib backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .tables import format_degrees

DPI = 120


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def _cell_size(num_classes: int) -> tuple[float, float]:
    """Figure size for a C x C matrix plot, growing with C."""
    side = max(4.5, 0.75 * num_classes + 2.5)
    return side + 1.2, side


def _annotation_fontsize(num_classes: int) -> float:
    return float(np.clip(13 - 0.5 * num_classes, 6, 11))


def _text_colour(cmap: Any, norm: Any, value: float) -> str:
    r, g, b, _ = cmap(norm(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _class_colours(num_classes: int) -> list[Any]:
    cmap = matplotlib.colormaps["tab10" if num_classes <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(num_classes)]


def _label_axes(ax: Axes, names: Sequence[str]) -> None:
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=names)


def plot_angle_matrix(matrix: np.ndarray, names: Sequence[str], title: str, path: Path) -> Path:
    """Save the C x C angle matrix as a heat map, diagonal outlined, and return `path`."""
    num_classes = len(names)
    fig = Figure(figsize=_cell_size(num_classes))
    ax = fig.subplots()
    finite = matrix[np.isfinite(matrix)]
    vmax = max(90.0, float(finite.max()) if finite.size else 90.0)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0.0, vmax=vmax)
    fontsize = _annotation_fontsize(num_classes)
    for i in range(num_classes):
        for j in range(num_classes):
            value = matrix[i, j]
            colour = "black" if np.isnan(value) else _text_colour(cmap, image.norm, value)
            weight = "bold" if i == j else "normal"
            ax.text(
                j,
                i,
                format_degrees(value),
                ha="center",
                va="center",
                color=colour,
                fontsize=fontsize,
                fontweight=weight,
            )
        # Outline the diagonal: its cells mean something else (utterances to their own class).
        ax.add_patch(
            Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5)
        )
    _label_axes(ax, names)
    ax.set_xlabel(
        "emotion\n(outlined diagonal: mean angle of that emotion's utterances to its own class "
        "embedding;\nelsewhere: angle between the two emotions' class embeddings)",
        fontsize=8,
    )
    ax.set_ylabel("emotion")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="angle (degrees)")
    return _save(fig, path)


def plot_confusion(confusion: np.ndarray, names: Sequence[str], title: str, path: Path) -> Path:
    """Save a confusion matrix, counts and row percentages, as a heat map and return `path`."""
    num_classes = len(names)
    totals = confusion.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(totals > 0, 100.0 * confusion / np.maximum(totals, 1), np.nan)
    fig = Figure(figsize=_cell_size(num_classes))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(percent), cmap=cmap, vmin=0.0, vmax=100.0)
    fontsize = _annotation_fontsize(num_classes)
    for i in range(num_classes):
        for j in range(num_classes):
            share = percent[i, j]
            text = f"{confusion[i, j]}\n" + ("n/a" if np.isnan(share) else f"{share:.1f}%")
            colour = "black" if np.isnan(share) else _text_colour(cmap, image.norm, share)
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=fontsize)
    _label_axes(ax, names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of the true class (row)")
    return _save(fig, path)


def plot_deviations(
    angles: np.ndarray, labels: np.ndarray, names: Sequence[str], title: str, path: Path
) -> Path:
    """Save box plots of intra- and inter-class angles per emotion and return `path`."""
    num_classes = len(names)
    intra, inter = [], []
    for e in range(num_classes):
        rows = angles[labels == e]
        intra.append(rows[:, e])
        inter.append(np.delete(rows, e, axis=1).reshape(-1))
    width = max(6.0, 0.9 * num_classes + 2.5)
    fig = Figure(figsize=(width, 7.5))
    axes = fig.subplots(2, 1, sharex=True)
    panels = (
        (
            axes[0],
            intra,
            "tab:blue",
            "angles of each emotion's utterances to its own class embedding",
        ),
        (
            axes[1],
            inter,
            "tab:orange",
            "angles of each emotion's utterances to the other classes' embeddings",
        ),
    )
    positions = np.arange(num_classes)
    for ax, data, colour, subtitle in panels:
        parts = ax.boxplot(
            data,
            positions=positions,
            widths=0.55,
            patch_artist=True,
            tick_labels=list(names),
            showfliers=True,
            flierprops={"markersize": 3, "alpha": 0.5},
        )
        for box in parts["boxes"]:
            box.set_facecolor(colour)
            box.set_alpha(0.6)
        for median in parts["medians"]:
            median.set_color("black")
        ax.set_ylabel("angle (degrees)")
        ax.set_title(subtitle, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xlabel("emotion of the utterance")
    for label in axes[1].get_xticklabels():  # the labels boxplot set, rotated in place
        label.set(rotation=45, ha="right", rotation_mode="anchor")
    fig.suptitle(title)
    return _save(fig, path)


def tsne(embeddings: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    """2-D t-SNE (cosine metric) of [N, D] embeddings, perplexity capped at (N - 1) / 3."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n, dim = embeddings.shape
    model = TSNE(
        n_components=2,
        metric="cosine",
        perplexity=min(float(perplexity), (n - 1) / 3),
        init="pca" if dim >= 2 else "random",
        random_state=seed,
    )
    # One OpenMP thread: t-SNE's gradient loop busy-waits, and on a loaded machine (a trainer with
    # data-loader workers beside it) more threads made 60 points take 40 s instead of 0.5 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.fit_transform(embeddings.astype(np.float64))


def plot_tsne(
    coords: np.ndarray, labels: np.ndarray, names: Sequence[str], title: str, path: Path
) -> Path:
    """Save a scatter plot of t-SNE coordinates coloured by emotion and return `path`."""
    colours = _class_colours(len(names))
    fig = Figure(figsize=(7.5 + 0.08 * max(len(n) for n in names), 6.0))
    ax = fig.subplots()
    for e, name in enumerate(names):
        mask = labels == e
        if mask.any():
            ax.scatter(
                coords[mask, 0],
                coords[mask, 1],
                s=14,
                alpha=0.8,
                color=colours[e],
                label=f"{name} ({int(mask.sum())})",
                edgecolors="none",
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title)
    ax.legend(
        title="emotion (utterances)",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        markerscale=1.8,
    )
    return _save(fig, path)


#: Table I of the paper: each family's best depth x and its accuracy (%), as the paper gives it.
PAPER_TABLE_I = {"fc": (7, 47.22), "cnn": (8, 58.33), "rnn": (8, 55.56), "lstm": (7, 56.94),
                 "gru": (8, 54.16), "resnet": (11, 61.11)}  # fmt: skip


def plot_accuracy_by_depth(
    rows: Sequence[dict[str, Any]], path: Path, metric: str = "least_angle/wa"
) -> Path:
    """Table I as a plot: `metric` against x (model.layers) per family (model.backbone), with the
    paper's best point of each family marked for comparison."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    families = sorted({str(r.get("model.backbone", "resnet")) for r in rows})
    colours = dict(zip(families, _class_colours(len(families)), strict=True))
    for family in families:
        points = sorted(
            (int(r["model.layers"]), 100 * float(r[metric]))
            for r in rows
            if str(r.get("model.backbone", "resnet")) == family and r.get(metric) is not None
        )
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", color=colours[family], label=f"{family} (ours)")
        if family in PAPER_TABLE_I:
            x, y = PAPER_TABLE_I[family]
            ax.scatter([x], [y], marker="*", s=120, color=colours[family], edgecolor="black")
    ax.set_xlabel("x: weight layers (Table I's depth)")
    ax.set_ylabel(f"{metric} on the test part (%)")
    ax.set_title("Architecture ablation (stars: the paper's best x per family)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)
