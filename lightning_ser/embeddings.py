"""Class embeddings, the least-angle classifier, angle matrices and deviations (see also metrics).

Plain functions on tensors (no Lightning, no plotting), following the paper's Section IV.B:

- the class embedding of emotion e is the L2-normalised mean of the L2-normalised embeddings of e;
- an utterance is classified into the emotion whose class embedding makes the least angle with it
  (Phase III);
- the angle matrix (Tables II/III) holds the angles between class embeddings off the diagonal and,
  on the diagonal, the mean angle between a class's (test) utterances and its own class embedding;
- the deviations (Tables VI/VII, Figure 5) are the spreads of those angles.

Angles are in degrees. Cosines and angles are computed in float64 (float32 on devices without
float64, such as Apple MPS) and returned as float32: near 0 degrees, ``acos`` of a float32 cosine
only resolves about 0.02 degrees, which is the size of the paper's smallest intra-class angles.

Metric vocabulary (see DESIGN.md): WA = correct / total (what the paper calls "un-weighted
accuracy"); UA = mean of per-class recalls (unweighted average recall).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "angle_deviations",
    "angle_matrix",
    "angles_to_classes",
    "class_embeddings",
    "cosine_to_classes",
    "least_angle_predict",
]

_EPS = 1e-12
_DEVIATION_KEYS = ("intra_mean", "intra_std", "inter_mean", "inter_std")


def _work_dtype(t: Tensor) -> torch.dtype:
    """The dtype angle arithmetic runs in on `t`'s device: float64, or float32 where unsupported."""
    return torch.float32 if t.device.type == "mps" else torch.float64


def _check_2d(name: str, t: Tensor) -> None:
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor [rows, dim], got shape {tuple(t.shape)}")


def _check_pair(embeddings: Tensor, class_emb: Tensor) -> None:
    _check_2d("embeddings", embeddings)
    _check_2d("class_emb", class_emb)
    if embeddings.shape[1] != class_emb.shape[1]:
        raise ValueError(
            f"embeddings have dimension {embeddings.shape[1]} but class embeddings have "
            f"{class_emb.shape[1]}"
        )


def _check_labels(labels: Tensor, n: int, num_classes: int, name: str = "labels") -> Tensor:
    """Return `labels` as a 1-D long tensor after checking its length and range."""
    labels = torch.as_tensor(labels).reshape(-1).long()
    if labels.numel() != n:
        raise ValueError(f"{name} has {labels.numel()} entries but there are {n} embeddings")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes}), got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    return labels


def class_embeddings(embeddings: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Per-class L2-normalised mean of the L2-normalised embeddings, [C, D]; absent class -> zeros.

    Args:
        embeddings: [N, D] utterance embeddings (any float dtype).
        labels: [N] class indices in ``[0, num_classes)``.
        num_classes: C, the number of rows of the result.

    Returns:
        [C, D] float32 tensor on the embeddings' device. A class with no samples gets a zero row,
        so its cosine to anything is 0 (an angle of 90 degrees).
    """
    _check_2d("embeddings", embeddings)
    labels = _check_labels(labels, embeddings.shape[0], num_classes).to(embeddings.device)
    x = F.normalize(embeddings.to(_work_dtype(embeddings)), dim=1, eps=_EPS)
    sums = torch.zeros(num_classes, x.shape[1], dtype=x.dtype, device=x.device)
    sums.index_add_(0, labels, x)
    # Normalising the sum equals normalising the mean; a zero sum stays zero.
    return F.normalize(sums, dim=1, eps=_EPS).to(torch.float32)


def cosine_to_classes(embeddings: Tensor, class_emb: Tensor) -> Tensor:
    """Cosine similarity of every embedding to every class embedding, [N, C] float32."""
    _check_pair(embeddings, class_emb)
    dtype = _work_dtype(embeddings)
    x = F.normalize(embeddings.to(dtype), dim=1, eps=_EPS)
    c = F.normalize(class_emb.to(device=x.device, dtype=dtype), dim=1, eps=_EPS)
    return (x @ c.T).clamp(-1.0, 1.0).to(torch.float32)


def _angles_deg(a: Tensor, b: Tensor) -> Tensor:
    """Angles in degrees between the rows of `a` and `b`, [len(a), len(b)], in the work dtype."""
    dtype = _work_dtype(a)
    x = F.normalize(a.to(dtype), dim=1, eps=_EPS)
    y = F.normalize(b.to(device=x.device, dtype=dtype), dim=1, eps=_EPS)
    return torch.rad2deg(torch.acos((x @ y.T).clamp(-1.0, 1.0)))


def angles_to_classes(embeddings: Tensor, class_emb: Tensor) -> Tensor:
    """Angle in degrees between every embedding and every class embedding, [N, C] float32."""
    _check_pair(embeddings, class_emb)
    return _angles_deg(embeddings, class_emb).to(torch.float32)


def least_angle_predict(embeddings: Tensor, class_emb: Tensor) -> tuple[Tensor, Tensor]:
    """Phase III: index of the least-angle class embedding, [N] long, and the angles [N, C]."""
    _check_pair(embeddings, class_emb)
    angles = _angles_deg(embeddings, class_emb)
    return angles.argmin(dim=1), angles.to(torch.float32)


def angle_matrix(class_emb: Tensor, embeddings: Tensor, labels: Tensor) -> Tensor:
    """The paper's Tables II/III: [C, C] angles in degrees (float32).

    Off-diagonal ``[i, j]`` is the angle between class embeddings i and j (90 degrees when either
    is a zero row). Diagonal ``[e, e]`` is the mean angle between the given (test) embeddings of
    class e and class embedding e, NaN when class e has no samples among them.
    """
    _check_pair(embeddings, class_emb)
    num_classes = class_emb.shape[0]
    labels = _check_labels(labels, embeddings.shape[0], num_classes).to(embeddings.device)
    matrix = _angles_deg(class_emb, class_emb).cpu()
    own = _angles_deg(embeddings, class_emb).gather(1, labels[:, None]).squeeze(1).cpu()
    labels = labels.cpu()
    for e in range(num_classes):
        mask = labels == e
        matrix[e, e] = own[mask].mean() if bool(mask.any()) else float("nan")
    return matrix.to(torch.float32)


def angle_deviations(class_emb: Tensor, embeddings: Tensor, labels: Tensor) -> dict:
    """The paper's Tables VI/VII: per-class spread of utterance-to-class-embedding angles.

    Standard deviations are population standard deviations (``unbiased=False``, divide by n), so a
    class with a single utterance has an intra-class deviation of 0. A class with no utterances gets
    NaN in every per-class entry.

    Returns:
        ``intra_mean[C]``, ``intra_std[C]``: mean and std of the angles of class-e utterances to
        class embedding e. ``inter_mean[C]``, ``inter_std[C]``: mean and std of the angles of
        class-e utterances to all other class embeddings, pooled. All float32 CPU tensors, degrees.
        ``average_intra`` (float): mean of the angle matrix's diagonal, ignoring NaN.
        ``average_inter`` (float): mean of the angle matrix's off-diagonal entries (NaN if C = 1).
    """
    _check_pair(embeddings, class_emb)
    num_classes = class_emb.shape[0]
    labels = _check_labels(labels, embeddings.shape[0], num_classes).cpu()
    angles = _angles_deg(embeddings, class_emb).cpu()
    nan = float("nan")
    out = {k: torch.full((num_classes,), nan, dtype=angles.dtype) for k in _DEVIATION_KEYS}
    for e in range(num_classes):
        rows = angles[labels == e]
        if rows.shape[0] == 0:
            continue
        intra = rows[:, e]
        inter = torch.cat([rows[:, :e], rows[:, e + 1 :]], dim=1).reshape(-1)
        out["intra_mean"][e] = intra.mean()
        out["intra_std"][e] = intra.std(unbiased=False)
        if inter.numel():
            out["inter_mean"][e] = inter.mean()
            out["inter_std"][e] = inter.std(unbiased=False)
    result: dict = {k: v.to(torch.float32) for k, v in out.items()}
    matrix = angle_matrix(class_emb, embeddings, labels)
    diag = matrix.diagonal()
    diag = diag[~diag.isnan()]
    off = matrix[~torch.eye(num_classes, dtype=torch.bool)]
    result["average_intra"] = float(diag.mean()) if diag.numel() else nan
    result["average_inter"] = float(off.mean()) if off.numel() else nan
    return result
