"""Class embeddings, angles, deviations and metrics against brute-force and scikit-learn oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
)

from lightning_ser.embeddings import (
    angle_deviations,
    angle_matrix,
    angles_to_classes,
    class_embeddings,
    cosine_to_classes,
    least_angle_predict,
)
from lightning_ser.metrics import classification_metrics

SEEDS = [0, 1, 2, 3]


def _random_case(seed: int, n: int = 40, dim: int = 8, num_classes: int = 5):
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(n, dim, generator=g)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    class_emb = torch.nn.functional.normalize(torch.randn(num_classes, dim, generator=g), dim=1)
    return embeddings, labels, class_emb


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def _np_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Brute force: degrees(arccos(cosine)) for every pair of rows, in float64."""
    out = np.zeros((len(a), len(b)))
    for i, u in enumerate(a):
        for j, v in enumerate(b):
            cos = float(np.dot(_unit(u), _unit(v)))
            out[i, j] = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


# ----------------------------------------------------------------------------- class embeddings


@pytest.mark.parametrize("seed", SEEDS)
def test_class_embeddings_match_numpy_loop(seed: int) -> None:
    embeddings, labels, _ = _random_case(seed)
    num_classes = 6  # class 5 never occurs
    got = class_embeddings(embeddings, labels, num_classes)

    x, y = embeddings.double().numpy(), labels.numpy()
    expected = np.zeros((num_classes, x.shape[1]))
    for e in range(num_classes):
        rows = [_unit(x[i]) for i in range(len(x)) if y[i] == e]
        if rows:
            expected[e] = _unit(np.mean(rows, axis=0))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


def test_missing_class_gives_zero_row_and_90_degrees() -> None:
    embeddings = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    labels = torch.tensor([0, 0, 2])
    class_emb = class_embeddings(embeddings, labels, num_classes=3)
    assert torch.equal(class_emb[1], torch.zeros(2))
    torch.testing.assert_close(class_emb[0], torch.tensor([1.0, 0.0]))
    angles = angles_to_classes(embeddings, class_emb)
    torch.testing.assert_close(angles[:, 1], torch.full((3,), 90.0))
    assert cosine_to_classes(embeddings, class_emb)[:, 1].abs().max() == 0


def test_class_embedding_is_mean_of_normalised_not_raw_vectors() -> None:
    # A long vector must not dominate: each utterance counts once, whatever its norm.
    embeddings = torch.tensor([[100.0, 0.0], [0.0, 1.0]])
    class_emb = class_embeddings(embeddings, torch.tensor([0, 0]), num_classes=1)
    torch.testing.assert_close(class_emb[0], torch.tensor([1.0, 1.0]) / math.sqrt(2))


# ----------------------------------------------------------------------------- angles


def test_orthogonal_classes_and_identical_vectors() -> None:
    class_emb = torch.eye(3, 4)  # three orthogonal directions in 4-D
    embeddings = torch.cat([class_emb * 2.0, class_emb * 0.5])  # same directions, other lengths
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    matrix = angle_matrix(class_emb, embeddings, labels)
    off = ~torch.eye(3, dtype=torch.bool)
    torch.testing.assert_close(matrix[off], torch.full((6,), 90.0))
    torch.testing.assert_close(matrix.diagonal(), torch.zeros(3), atol=1e-4, rtol=0)


def test_45_degree_case() -> None:
    class_emb = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # not normalised on purpose
    embeddings = torch.tensor([[3.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    matrix = angle_matrix(class_emb, embeddings, labels)
    torch.testing.assert_close(matrix[0, 1], torch.tensor(45.0))
    torch.testing.assert_close(matrix[1, 0], torch.tensor(45.0))
    torch.testing.assert_close(matrix[0, 0], torch.tensor(0.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(matrix[1, 1], torch.tensor(45.0))  # both class-1 utterances at 45
    preds, angles = least_angle_predict(embeddings, class_emb)
    torch.testing.assert_close(angles, torch.tensor([[0.0, 45.0], [0.0, 45.0], [90.0, 45.0]]))
    assert preds.tolist() == [0, 0, 1]


def test_diagonal_is_nan_for_a_class_without_test_samples() -> None:
    embeddings, labels, class_emb = _random_case(0)
    labels[labels == 2] = 0
    matrix = angle_matrix(class_emb, embeddings, labels)
    assert math.isnan(matrix[2, 2])
    assert not matrix[~torch.eye(5, dtype=torch.bool)].isnan().any()


@pytest.mark.parametrize("seed", SEEDS)
def test_angles_match_numpy_degrees_arccos(seed: int) -> None:
    embeddings, _, class_emb = _random_case(seed)
    expected = _np_angles(embeddings.double().numpy(), class_emb.double().numpy())
    got = angles_to_classes(embeddings, class_emb)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-4)
    cosine = cosine_to_classes(embeddings, class_emb).double().numpy()
    np.testing.assert_allclose(np.cos(np.radians(expected)), cosine, atol=1e-6)


def test_half_precision_inputs_give_float32_and_small_angles_resolve() -> None:
    base = torch.tensor([[1.0, 0.0, 0.0]])
    tilted = torch.tensor([[math.cos(math.radians(0.01)), math.sin(math.radians(0.01)), 0.0]])
    got = angles_to_classes(tilted.double(), base)
    torch.testing.assert_close(got, torch.tensor([[0.01]]), atol=1e-5, rtol=0)
    half = angles_to_classes(torch.randn(5, 3).half(), base.half())
    assert half.dtype == torch.float32
    assert torch.isfinite(half).all()


def test_antiparallel_vectors_give_180_not_nan() -> None:
    got = angles_to_classes(torch.tensor([[-1.0, 0.0]]), torch.tensor([[1.0, 0.0]]))
    torch.testing.assert_close(got, torch.tensor([[180.0]]))


@pytest.mark.parametrize("seed", SEEDS)
def test_least_angle_predict_matches_brute_force_argmax_cosine(seed: int) -> None:
    embeddings, _, class_emb = _random_case(seed, n=100, num_classes=7)
    preds, angles = least_angle_predict(embeddings, class_emb)
    x, c = embeddings.double().numpy(), class_emb.double().numpy()
    expected = [
        max(range(len(c)), key=lambda j, u=u: float(np.dot(_unit(u), _unit(c[j])))) for u in x
    ]
    assert preds.dtype == torch.long
    assert preds.tolist() == expected
    np.testing.assert_allclose(angles.numpy(), _np_angles(x, c), atol=1e-4)


# ----------------------------------------------------------------------------- deviations


@pytest.mark.parametrize("seed", SEEDS)
def test_angle_deviations_match_brute_force(seed: int) -> None:
    embeddings, labels, class_emb = _random_case(seed, n=60, num_classes=5)
    labels[labels == 4] = 3  # class 4 has no utterances
    labels[0] = 4  # ... except exactly one
    dev = angle_deviations(class_emb, embeddings, labels)

    angles = _np_angles(embeddings.double().numpy(), class_emb.double().numpy())
    y = labels.numpy()
    for e in range(5):
        intra = [angles[i, e] for i in range(len(y)) if y[i] == e]
        inter = [angles[i, j] for i in range(len(y)) if y[i] == e for j in range(5) if j != e]
        assert dev["intra_mean"][e].item() == pytest.approx(np.mean(intra), abs=1e-4)
        assert dev["intra_std"][e].item() == pytest.approx(np.std(intra, ddof=0), abs=1e-4)
        assert dev["inter_mean"][e].item() == pytest.approx(np.mean(inter), abs=1e-4)
        assert dev["inter_std"][e].item() == pytest.approx(np.std(inter, ddof=0), abs=1e-4)
    assert dev["intra_std"][4].item() == 0.0  # population std of one value

    matrix = angle_matrix(class_emb, embeddings, labels).double().numpy()
    np.testing.assert_allclose(matrix.diagonal(), dev["intra_mean"].numpy(), atol=1e-4)
    off = matrix[~np.eye(5, dtype=bool)]
    assert dev["average_intra"] == pytest.approx(np.mean(matrix.diagonal()), abs=1e-4)
    assert dev["average_inter"] == pytest.approx(np.mean(off), abs=1e-4)


def test_angle_deviations_nan_for_absent_class_and_averages_ignore_it() -> None:
    embeddings, labels, class_emb = _random_case(5, num_classes=4)
    labels[labels == 1] = 0
    dev = angle_deviations(class_emb, embeddings, labels)
    for key in ("intra_mean", "intra_std", "inter_mean", "inter_std"):
        assert math.isnan(dev[key][1])
        assert not dev[key][[0, 2, 3]].isnan().any()
    diag = angle_matrix(class_emb, embeddings, labels).diagonal()[[0, 2, 3]]
    assert dev["average_intra"] == pytest.approx(diag.mean().item(), abs=1e-4)


# ----------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("seed", SEEDS)
def test_classification_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    num_classes = 6
    labels = rng.integers(0, 5, size=80)  # class 5 never occurs in the labels ...
    preds = np.where(rng.random(80) < 0.6, labels, rng.integers(0, num_classes, size=80))
    preds[preds == 2] = 1  # ... and class 2 is never predicted
    preds[0] = 5  # class 5 is predicted once (a false positive)
    got = classification_metrics(torch.from_numpy(preds), torch.from_numpy(labels), num_classes)

    present = np.unique(labels)
    assert got["wa"] == pytest.approx(accuracy_score(labels, preds))
    assert got["ua"] == pytest.approx(
        recall_score(labels, preds, average="macro", labels=present, zero_division=0)
    )
    assert got["macro_f1"] == pytest.approx(
        f1_score(labels, preds, average="macro", labels=present, zero_division=0)
    )
    expected_confusion = confusion_matrix(labels, preds, labels=range(num_classes))
    assert got["confusion"].dtype == torch.long
    np.testing.assert_array_equal(got["confusion"].numpy(), expected_confusion)
    p, r, f, s = precision_recall_fscore_support(
        labels, preds, labels=range(num_classes), zero_division=0
    )
    np.testing.assert_allclose(got["precision"].numpy(), p, atol=1e-6)
    np.testing.assert_allclose(got["recall"].numpy(), r, atol=1e-6)
    np.testing.assert_allclose(got["f1"].numpy(), f, atol=1e-6)
    np.testing.assert_array_equal(got["support"].numpy(), s)
    assert got["recall"][2] == 0 and got["precision"][2] == 0


def test_wa_and_ua_differ_on_imbalanced_data() -> None:
    labels = torch.tensor([0] * 9 + [1])
    preds = torch.zeros(10, dtype=torch.long)  # always the majority class
    m = classification_metrics(preds, labels, num_classes=2)
    assert m["wa"] == pytest.approx(0.9)
    assert m["ua"] == pytest.approx(0.5)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="labels must lie in"):
        class_embeddings(torch.randn(3, 2), torch.tensor([0, 1, 3]), num_classes=3)
    with pytest.raises(ValueError, match="preds must lie in"):
        classification_metrics(torch.tensor([0, 4]), torch.tensor([0, 1]), num_classes=2)
    with pytest.raises(ValueError, match="dimension"):
        angles_to_classes(torch.randn(3, 2), torch.randn(2, 5))
    with pytest.raises(ValueError, match="at least one sample"):
        classification_metrics(torch.tensor([]), torch.tensor([]), num_classes=2)


def test_training_and_report_metrics_agree_when_a_class_is_predicted_but_absent() -> None:
    """One definition: the module's confusion-matrix metric and the report's function agree."""
    from lightning_ser.metrics import confusion_metric, scores

    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    preds = torch.tensor([0, 3, 1, 1, 2, 0])  # class 3 is predicted once and never occurs
    metric = confusion_metric(4)
    metric.update(preds[:3], labels[:3])  # accumulated over batches, as in validation
    metric.update(preds[3:], labels[3:])
    from_training = scores(metric.compute())
    from_report = classification_metrics(preds, labels, 4)
    for key in ("wa", "ua", "macro_f1"):
        assert from_training[key] == pytest.approx(from_report[key])
    assert from_report["ua"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)  # classes 0, 1, 2 only
