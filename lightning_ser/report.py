"""The paper's tables and figures for one evaluated split, as files and as W&B media.

`write_report` turns test embeddings, their labels and the class embeddings into

- ``angle_matrix.csv`` / ``.png``: the angle matrix (the paper's Tables II/III);
- ``deviations.csv`` / ``.json`` and ``deviations_boxplot.png``: Tables VI/VII and Figure 5;
- ``tsne.csv`` / ``.png``: Figure 4;
- ``confusion_matrix.csv`` / ``.png`` and ``per_class.csv`` for the least-angle classifier (and the
  ``_softmax`` variants when softmax predictions are given);
- ``metrics.json`` and ``report.md``, which gathers all of it.

`log_report_to_wandb` logs those figures and tables to a W&B run.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from lightning_ser.embeddings import (  # noqa: E402
    angle_deviations,
    angle_matrix,
    least_angle_predict,
)
from lightning_ser.metrics import classification_metrics  # noqa: E402

__all__ = [
    "SPEAKER_INDEPENDENT_PROTOCOLS",
    "UTTERANCE_LEVEL_PROTOCOLS",
    "log_report_to_wandb",
    "protocol_description",
    "write_report",
]

#: Protocols in which no speaker appears in both the training and the test data.
SPEAKER_INDEPENDENT_PROTOCOLS = ("speaker_holdout", "speaker_kfold", "loso")
#: Protocols that split by utterance, so the same speakers appear in training and test data.
UTTERANCE_LEVEL_PROTOCOLS = ("holdout", "kfold")
#: CSV files that `log_report_to_wandb` logs as tables (by file stem).
WANDB_TABLES = (
    "angle_matrix",
    "deviations",
    "confusion_matrix",
    "per_class",
    "confusion_matrix_softmax",
    "per_class_softmax",
)

DPI = 120
MIN_TSNE_SAMPLES = 5
WA_DEFINITION = (
    'WA (weighted accuracy) = correct / total; what the paper calls "un-weighted accuracy".'
)
UA_DEFINITION = "UA (unweighted average recall) = mean of the per-class recalls."
F1_DEFINITION = "Macro-F1 = mean of the per-class F1 scores (classes present in the split)."


def protocol_description(protocol: str) -> str:
    """One sentence that says whether `protocol` is speaker-independent."""
    if protocol in SPEAKER_INDEPENDENT_PROTOCOLS:
        return (
            f"`{protocol}` is speaker-independent: no speaker appears in both the training and "
            "the test data."
        )
    if protocol in UTTERANCE_LEVEL_PROTOCOLS:
        return (
            f"`{protocol}` splits by utterance and is not speaker-independent: the same speakers "
            "appear in both the training and the test data (speakers overlap), so these scores "
            "overstate what to expect on unseen speakers."
        )
    return (
        f"`{protocol}` is not a known protocol; whether speakers overlap between training and "
        "test data is not known."
    )


# ----------------------------------------------------------------------------- small helpers


def _num(x: float, digits: int = 4) -> str:
    """A number for CSV files: fixed decimals, ``nan`` for NaN."""
    x = float(x)
    return "nan" if math.isnan(x) else f"{x:.{digits}f}"


def _deg(x: float) -> str:
    """An angle for markdown: one decimal and a degree sign, ``n/a`` for NaN."""
    x = float(x)
    return "n/a" if math.isnan(x) else f"{x:.1f}°"


def _pct(x: float) -> str:
    x = float(x)
    return "n/a" if math.isnan(x) else f"{100 * x:.2f}%"


def _json_safe(x: Any) -> Any:
    """Floats for JSON, with NaN / inf as null (strict JSON has no NaN)."""
    if isinstance(x, Mapping):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, Tensor):
        return _json_safe(x.tolist())
    if isinstance(x, (bool, int, str)) or x is None:
        return x
    x = float(x)
    return x if math.isfinite(x) else None


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |"]
    lines.append("|" + "|".join(["---"] * len(header)) + "|")
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
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
    cmap = plt.get_cmap("tab10" if num_classes <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(num_classes)]


def _label_axes(ax: plt.Axes, names: Sequence[str]) -> None:
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=names)


# ----------------------------------------------------------------------------- figures


def _plot_angle_matrix(matrix: np.ndarray, names: Sequence[str], title: str, path: Path) -> Path:
    num_classes = len(names)
    fig, ax = plt.subplots(figsize=_cell_size(num_classes))
    finite = matrix[np.isfinite(matrix)]
    vmax = max(90.0, float(finite.max()) if finite.size else 90.0)
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
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
                _deg(value),
                ha="center",
                va="center",
                color=colour,
                fontsize=fontsize,
                fontweight=weight,
            )
        # Outline the diagonal: its cells mean something else (utterances to their own class).
        ax.add_patch(
            plt.Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5)
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


def _plot_confusion(confusion: np.ndarray, names: Sequence[str], title: str, path: Path) -> Path:
    num_classes = len(names)
    totals = confusion.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(totals > 0, 100.0 * confusion / np.maximum(totals, 1), np.nan)
    fig, ax = plt.subplots(figsize=_cell_size(num_classes))
    cmap = plt.get_cmap("Blues").with_extremes(bad="lightgrey")
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


def _plot_deviations(
    angles: np.ndarray, labels: np.ndarray, names: Sequence[str], title: str, path: Path
) -> Path:
    num_classes = len(names)
    intra, inter = [], []
    for e in range(num_classes):
        rows = angles[labels == e]
        intra.append(rows[:, e])
        inter.append(np.delete(rows, e, axis=1).reshape(-1))
    width = max(6.0, 0.9 * num_classes + 2.5)
    fig, axes = plt.subplots(2, 1, figsize=(width, 7.5), sharex=True)
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
    plt.setp(axes[1].get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
    fig.suptitle(title)
    return _save(fig, path)


def _tsne(embeddings: np.ndarray, perplexity: float, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n, dim = embeddings.shape
    tsne = TSNE(
        n_components=2,
        metric="cosine",
        perplexity=min(float(perplexity), (n - 1) / 3),
        init="pca" if dim >= 2 else "random",
        random_state=seed,
    )
    # One OpenMP thread: t-SNE's gradient loop busy-waits, and on a loaded machine (a trainer with
    # data-loader workers beside it) more threads made 60 points take 40 s instead of 0.5 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        return tsne.fit_transform(embeddings.astype(np.float64))


def _plot_tsne(
    coords: np.ndarray, labels: np.ndarray, names: Sequence[str], title: str, path: Path
) -> Path:
    colours = _class_colours(len(names))
    fig, ax = plt.subplots(figsize=(7.5 + 0.08 * max(len(n) for n in names), 6.0))
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


# ----------------------------------------------------------------------------- tables


def _per_class_rows(m: dict, names: Sequence[str]) -> list[list[str]]:
    return [
        [
            name,
            _num(m["precision"][e]),
            _num(m["recall"][e]),
            _num(m["f1"][e]),
            str(int(m["support"][e])),
        ]
        for e, name in enumerate(names)
    ]


def _confusion_rows(confusion: Tensor, names: Sequence[str]) -> list[list[Any]]:
    return [[name, *confusion[e].tolist()] for e, name in enumerate(names)]


# ----------------------------------------------------------------------------- the report


def write_report(
    out_dir: str | Path,
    *,
    embeddings: Tensor,
    labels: Tensor,
    class_emb: Tensor,
    class_names: list[str],
    metrics: dict[str, float],
    protocol: str,
    dataset: str,
    checkpoint: str | None = None,
    split_name: str = "test",
    softmax_preds: Tensor | None = None,
    tsne_perplexity: float = 30.0,
    seed: int = 0,
) -> dict[str, Path]:
    """Write the angle matrix, deviations, t-SNE, confusion matrices, metrics and report.md.

    Args:
        out_dir: folder to write into (created).
        embeddings: [N, D] embeddings of the split's utterances.
        labels: [N] their true class indices.
        class_emb: [C, D] class embeddings (from the training data).
        class_names: the C emotion names, in class-index order.
        metrics: metrics computed elsewhere (e.g. by the LightningModule), copied into metrics.json.
        protocol: the split protocol (``holdout``, ``kfold``, ``speaker_holdout``, ...).
        dataset: the corpus name.
        checkpoint: the checkpoint the embeddings come from, if any.
        split_name: the name of the evaluated split.
        softmax_preds: [N] predictions of the softmax head, to report beside the least-angle ones.
        tsne_perplexity: t-SNE perplexity, lowered to (N - 1) / 3 for small N.
        seed: t-SNE random state.

    Returns:
        File name -> path of every file written (e.g. ``"angle_matrix.png"``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [str(n) for n in class_names]
    num_classes = len(names)
    emb = embeddings.detach().cpu().float()
    cls = class_emb.detach().cpu().float()
    y = torch.as_tensor(labels).detach().cpu().long().reshape(-1)
    if emb.dim() != 2 or emb.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty [N, D] tensor, got {tuple(emb.shape)}")
    if cls.dim() != 2 or cls.shape[0] != num_classes:
        raise ValueError(
            f"class_emb has shape {tuple(cls.shape)} but there are {num_classes} class names"
        )
    if y.numel() != emb.shape[0]:
        raise ValueError(f"{y.numel()} labels for {emb.shape[0]} embeddings")

    preds, angles = least_angle_predict(emb, cls)
    matrix = angle_matrix(cls, emb, y)
    dev = angle_deviations(cls, emb, y)
    least = classification_metrics(preds, y, num_classes)
    soft = None
    if softmax_preds is not None:
        soft = classification_metrics(torch.as_tensor(softmax_preds).cpu(), y, num_classes)

    context = f"{dataset} · {protocol} · {split_name}"
    paths: dict[str, Path] = {}

    def add(path: Path) -> None:
        paths[path.name] = path

    # Angle matrix (Tables II/III).
    matrix_np = matrix.numpy()
    add(
        _write_csv(
            out / "angle_matrix.csv",
            ["emotion", *names],
            [[n, *(_num(v) for v in matrix_np[e])] for e, n in enumerate(names)],
        )
    )
    add(
        _plot_angle_matrix(
            matrix_np,
            names,
            f"Angles between emotion embeddings (degrees)\n{context}",
            out / "angle_matrix.png",
        )
    )

    # Deviations (Tables VI/VII, Figure 5).
    keys = ("intra_mean", "intra_std", "inter_mean", "inter_std")
    add(
        _write_csv(
            out / "deviations.csv",
            ["emotion", *keys],
            [[n, *(_num(dev[k][e]) for k in keys)] for e, n in enumerate(names)],
        )
    )
    deviations_json = {
        "dataset": dataset,
        "protocol": protocol,
        "split": split_name,
        "units": "degrees",
        "std": "population standard deviation (unbiased=False)",
        "per_class": {n: {k: float(dev[k][e]) for k in keys} for e, n in enumerate(names)},
        "average_intra": dev["average_intra"],
        "average_inter": dev["average_inter"],
    }
    (out / "deviations.json").write_text(json.dumps(_json_safe(deviations_json), indent=2) + "\n")
    add(out / "deviations.json")
    add(
        _plot_deviations(
            angles.numpy(),
            y.numpy(),
            names,
            f"Angles of utterances to class embeddings\n{context}",
            out / "deviations_boxplot.png",
        )
    )

    # t-SNE (Figure 4).
    n = emb.shape[0]
    tsne_note = None
    if n >= MIN_TSNE_SAMPLES:
        coords = _tsne(emb.numpy(), tsne_perplexity, seed)
        add(
            _write_csv(
                out / "tsne.csv",
                ["x", "y", "label", "emotion"],
                [
                    [_num(a), _num(b), int(e), names[int(e)]]
                    for (a, b), e in zip(coords, y.tolist(), strict=True)
                ],
            )
        )
        add(
            _plot_tsne(
                coords,
                y.numpy(),
                names,
                f"t-SNE of emotion embeddings\n{context}",
                out / "tsne.png",
            )
        )
    else:
        tsne_note = f"t-SNE skipped: {n} utterances, fewer than the {MIN_TSNE_SAMPLES} it needs."

    # Classifiers.
    classifiers = [("least_angle", "least-angle (class embeddings)", least, "")]
    if soft is not None:
        classifiers.append(("softmax", "softmax head", soft, "_softmax"))
    for _, label, m, suffix in classifiers:
        add(
            _write_csv(
                out / f"confusion_matrix{suffix}.csv",
                ["true \\ predicted", *names],
                _confusion_rows(m["confusion"], names),
            )
        )
        add(
            _plot_confusion(
                m["confusion"].numpy(),
                names,
                f"Confusion matrix, {label}\n{context}",
                out / f"confusion_matrix{suffix}.png",
            )
        )
        add(
            _write_csv(
                out / f"per_class{suffix}.csv",
                ["emotion", "precision", "recall", "f1", "support"],
                _per_class_rows(m, names),
            )
        )

    all_metrics: dict[str, Any] = {}
    for key, value in metrics.items():
        try:
            all_metrics[str(key)] = float(value)
        except (TypeError, ValueError) as err:
            raise ValueError(f"metric {key!r} is not a number: {value!r}") from err
    for prefix, _, m, _ in classifiers:
        for k in ("wa", "ua", "macro_f1"):
            all_metrics[f"{prefix}/{k}"] = m[k]
    all_metrics["angles/average_intra"] = dev["average_intra"]
    all_metrics["angles/average_inter"] = dev["average_inter"]
    (out / "metrics.json").write_text(json.dumps(_json_safe(all_metrics), indent=2) + "\n")
    add(out / "metrics.json")

    md = _report_markdown(
        names=names,
        dataset=dataset,
        protocol=protocol,
        split_name=split_name,
        checkpoint=checkpoint,
        labels=y,
        matrix=matrix_np,
        dev=dev,
        classifiers=classifiers,
        passed_metrics=metrics,
        paths=paths,
        tsne_note=tsne_note,
    )
    (out / "report.md").write_text(md)
    add(out / "report.md")
    return paths


def _report_markdown(
    *,
    names: list[str],
    dataset: str,
    protocol: str,
    split_name: str,
    checkpoint: str | None,
    labels: Tensor,
    matrix: np.ndarray,
    dev: dict,
    classifiers: list[tuple[str, str, dict, str]],
    passed_metrics: Mapping[str, Any],
    paths: Mapping[str, Path],
    tsne_note: str | None,
) -> str:
    counts = torch.bincount(labels, minlength=len(names)).tolist()
    per_class_counts = ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True))
    lines = [
        f"# Emotion embedding report: {dataset}, {protocol}, {split_name}",
        "",
        f"- **Dataset:** {dataset}",
        f"- **Protocol:** {protocol_description(protocol)}",
        f"- **Split:** {split_name}",
        f"- **Checkpoint:** {f'`{checkpoint}`' if checkpoint else 'not given'}",
        f"- **Utterances:** {labels.numel()} ({per_class_counts})",
        f"- **Emotions:** {len(names)}",
        "- Angles are in degrees; standard deviations are population standard deviations "
        "(divide by n).",
        "",
        "## Classification",
        "",
        _md_table(
            ["classifier", "WA", "UA", "macro-F1"],
            [
                [label, _pct(m["wa"]), _pct(m["ua"]), _pct(m["macro_f1"])]
                for _, label, m, _ in classifiers
            ],
        ),
        "",
        f"- {WA_DEFINITION}",
        f"- {UA_DEFINITION}",
        f"- {F1_DEFINITION}",
        "- The least-angle classifier assigns each utterance to the emotion whose class embedding "
        "makes the least angle with its embedding (the paper's Phase III).",
        "",
    ]
    if passed_metrics:
        lines += [
            "### Metrics reported by the run",
            "",
            _md_table(
                ["metric", "value"],
                [[str(k), f"{float(v):.4f}"] for k, v in passed_metrics.items()],
            ),
            "",
        ]
    for _, label, m, suffix in classifiers:
        lines += [
            f"### Per class, {label}",
            "",
            _md_table(
                ["emotion", "precision", "recall", "F1", "support"], _per_class_rows(m, names)
            ),
            "",
            f"![Confusion matrix, {label}](confusion_matrix{suffix}.png)",
            "",
        ]
    lines += [
        "## Angle matrix (the paper's Tables II/III)",
        "",
        "Off-diagonal: angle between two class embeddings. Diagonal: mean angle between the "
        f"{split_name} utterances of an emotion and its own class embedding (n/a: no utterances).",
        "",
        _md_table(["", *names], [[n, *(_deg(v) for v in matrix[e])] for e, n in enumerate(names)]),
        "",
        "![Angle matrix](angle_matrix.png)",
        "",
        "## Deviations (the paper's Tables VI/VII and Figure 5)",
        "",
        "Intra: angles of an emotion's utterances to its own class embedding. Inter: angles of an "
        "emotion's utterances to all the other class embeddings, pooled.",
        "",
        _md_table(
            ["emotion", "intra mean", "intra std", "inter mean", "inter std"],
            [
                [
                    n,
                    *(
                        _deg(dev[k][e])
                        for k in ("intra_mean", "intra_std", "inter_mean", "inter_std")
                    ),
                ]
                for e, n in enumerate(names)
            ],
        ),
        "",
        f"- Average intra-class angle (mean of the angle matrix's diagonal): "
        f"{_deg(dev['average_intra'])}",
        f"- Average inter-class angle (mean of the angle matrix's off-diagonal): "
        f"{_deg(dev['average_inter'])}",
        "",
        "![Angles of utterances to class embeddings](deviations_boxplot.png)",
        "",
        "## t-SNE of the embeddings (the paper's Figure 4)",
        "",
        tsne_note if tsne_note else "![t-SNE of the embeddings](tsne.png)",
        "",
        "## Files",
        "",
    ]
    lines += [f"- [{name}]({name})" for name in sorted([*paths, "report.md"])]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- W&B


def _table_cell(text: str) -> Any:
    """A CSV cell as int, float (NaN -> None) or the string itself."""
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        return None if isinstance(value, float) and math.isnan(value) else value
    return text


def log_report_to_wandb(run: Any, paths: Mapping[str, Path], prefix: str = "test") -> None:
    """Log the report's PNGs as images and its main CSVs as tables, in one ``run.log`` call.

    Images go under ``f"{prefix}/<file stem>"`` and tables under ``f"{prefix}/<file stem>_table"``.
    """
    import wandb

    payload: dict[str, Any] = {}
    for path in map(Path, paths.values()):
        if path.suffix == ".png":
            payload[f"{prefix}/{path.stem}"] = wandb.Image(str(path), caption=path.stem)
        elif path.suffix == ".csv" and path.stem in WANDB_TABLES:
            with path.open(newline="") as f:
                header, *rows = list(csv.reader(f))
            data = [[_table_cell(c) for c in row] for row in rows]
            payload[f"{prefix}/{path.stem}_table"] = wandb.Table(columns=header, data=data)
    if payload:
        run.log(payload)
