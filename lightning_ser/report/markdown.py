"""``report.md``: one markdown page that gathers the report's tables and figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .tables import (
    DEVIATION_KEYS,
    format_degrees,
    format_percent,
    markdown_table,
    per_class_rows,
)

#: Protocols in which no speaker appears in both the training and the test data.
SPEAKER_INDEPENDENT_PROTOCOLS = ("speaker_holdout", "speaker_kfold", "loso")
#: Protocols that split by utterance, so the same speakers appear in training and test data.
UTTERANCE_LEVEL_PROTOCOLS = ("holdout", "kfold")

WA_DEFINITION = (
    'WA (weighted accuracy) = correct / total; what the paper calls "un-weighted accuracy".'
)
UA_DEFINITION = "UA (unweighted average recall) = mean of the per-class recalls."
F1_DEFINITION = "Macro-F1 = mean of the per-class F1 scores (classes present in the split)."

#: One classifier's results: (key, label, `classification_metrics` output, file-name suffix).
Classifier = tuple[str, str, dict, str]


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


def report_markdown(
    *,
    names: list[str],
    dataset: str,
    protocol: str,
    split_name: str,
    checkpoint: str | None,
    labels: Tensor,
    matrix: np.ndarray,
    dev: dict,
    classifiers: Sequence[Classifier],
    passed_metrics: Mapping[str, Any],
    paths: Mapping[str, Path],
    tsne_note: str | None,
) -> str:
    """The text of ``report.md``, linking the figures and listing `paths` and itself."""
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
        markdown_table(
            ["classifier", "WA", "UA", "macro-F1"],
            [
                [
                    label,
                    format_percent(m["wa"]),
                    format_percent(m["ua"]),
                    format_percent(m["macro_f1"]),
                ]
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
            markdown_table(
                ["metric", "value"],
                [[str(k), f"{float(v):.4f}"] for k, v in passed_metrics.items()],
            ),
            "",
        ]
    for _, label, m, suffix in classifiers:
        lines += [
            f"### Per class, {label}",
            "",
            markdown_table(
                ["emotion", "precision", "recall", "F1", "support"], per_class_rows(m, names)
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
        markdown_table(
            ["", *names],
            [[n, *(format_degrees(v) for v in matrix[e])] for e, n in enumerate(names)],
        ),
        "",
        "![Angle matrix](angle_matrix.png)",
        "",
        "## Deviations (the paper's Tables VI/VII and Figure 5)",
        "",
        "Intra: angles of an emotion's utterances to its own class embedding. Inter: angles of an "
        "emotion's utterances to all the other class embeddings, pooled.",
        "",
        markdown_table(
            ["emotion", "intra mean", "intra std", "inter mean", "inter std"],
            [
                [n, *(format_degrees(dev[k][e]) for k in DEVIATION_KEYS)]
                for e, n in enumerate(names)
            ],
        ),
        "",
        f"- Average intra-class angle (mean of the angle matrix's diagonal): "
        f"{format_degrees(dev['average_intra'])}",
        f"- Average inter-class angle (mean of the angle matrix's off-diagonal): "
        f"{format_degrees(dev['average_inter'])}",
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
