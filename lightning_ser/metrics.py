"""The one definition of the classification metrics, computed from a confusion matrix.

Training (validation / test, accumulated and synchronised over DDP ranks by torchmetrics'
`MulticlassConfusionMatrix`) and the report (`classification_metrics`) both derive every number
from the confusion matrix with `scores`, so `test/least_angle/ua` and the report's UA always agree.

Vocabulary (see DESIGN.md): WA = correct / total (what the paper calls "un-weighted accuracy");
UA = mean of the per-class recalls over the classes present in the labels (unweighted average
recall); macro-F1 = mean of the per-class F1 over the same classes. A class that is predicted but
absent from the labels lowers WA and the precision of others, but is not averaged into UA.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_confusion_matrix


def confusion_metric(num_classes: int) -> MulticlassConfusionMatrix:
    """The accumulating (and DDP-synchronised) confusion matrix the training module keeps."""
    return MulticlassConfusionMatrix(num_classes)


def scores(confusion: Tensor) -> dict:
    """WA, UA, macro-F1 and per-class precision / recall / F1 / support of a confusion matrix.

    Args:
        confusion: [C, C] counts, rows = true class, columns = predicted class.

    Returns:
        ``wa``, ``ua``, ``macro_f1`` (floats); ``confusion`` ([C, C] long); ``precision``,
        ``recall``, ``f1`` ([C] float32, 0 where undefined, as scikit-learn's zero_division=0);
        ``support`` ([C] long, samples of each class).
    """
    confusion = confusion.detach().cpu().long()
    tp = confusion.diagonal().double()
    support = confusion.sum(dim=1)
    predicted = confusion.sum(dim=0).double()
    total = int(support.sum())
    if total == 0:
        raise ValueError("classification metrics need at least one sample, got none")
    recall = torch.where(support > 0, tp / support.double().clamp(min=1), 0.0)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), 0.0)
    present = support > 0
    return {
        "wa": float(tp.sum() / total),
        "ua": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "confusion": confusion,
        "precision": precision.to(torch.float32),
        "recall": recall.to(torch.float32),
        "f1": f1.to(torch.float32),
        "support": support,
    }


def classification_metrics(preds: Tensor, labels: Tensor, num_classes: int) -> dict:
    """`scores` of the confusion matrix of `preds` against `labels` (both [N] class indices)."""
    preds = torch.as_tensor(preds).reshape(-1).long().cpu()
    labels = torch.as_tensor(labels).reshape(-1).long().cpu()
    if preds.numel() != labels.numel():
        raise ValueError(f"{preds.numel()} predictions for {labels.numel()} labels")
    if preds.numel() == 0:
        raise ValueError("classification metrics need at least one sample, got none")
    for name, t in (("preds", preds), ("labels", labels)):
        if int(t.min()) < 0 or int(t.max()) >= num_classes:
            raise ValueError(
                f"{name} must lie in [0, {num_classes}), got values in "
                f"[{int(t.min())}, {int(t.max())}]"
            )
    return scores(multiclass_confusion_matrix(preds, labels, num_classes))
