"""Classification metrics for one split: pure functions of labels and probabilities.

Conventions (the same in every function):

- ``y_true``: int (N,) class indices in ``CLASSES`` order (0 normal, 1 benign, 2 malignant).
- ``probs``: float (N, K) class *probabilities* (softmax already applied; rows sum to 1).
  The predicted class is ``argmax(probs, axis=1)`` (ties go to the lower index).
- Confusion matrices are (K, K) counts with rows = true class and columns = predicted class.
- A metric that is undefined on the split (a class absent from ``y_true``, a 0/0) is
  ``nan`` — never 0 — so that tables show it as undefined (and count it). Macro averages over
  classes are ``nan`` when any class's term is undefined (a split with a missing class). The
  one exception is MCC, whose 0/0 (a constant predictor) is 0 by scikit-learn's convention:
  see :func:`mcc`.

Thesis note: the thesis reports "AUC" as (sensitivity + specificity) / 2; that quantity is the
balanced accuracy (for two classes) and not an area under the ROC curve. Here ``auroc_macro``
is the real one-vs-rest area (scikit-learn ``roc_auc_score`` per class, then the mean) and
``balanced_accuracy`` is the mean per-class sensitivity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from medssl.data.records import CLASSES

DEFAULT_COST_MATRIX: tuple[tuple[float, ...], ...] = (
    # predicted:  normal benign malignant
    (0.0, 1.0, 1.0),  # true normal: a false alarm costs a recall/biopsy (unit cost)
    (1.0, 0.0, 1.0),  # true benign
    (10.0, 5.0, 0.0),  # true malignant: a missed cancer costs most, called benign costs half
)
"""Default Expected-Cost matrix C[true, pred] (a documented choice of medssl, not the thesis's).

Calling a malignant image normal is the costliest error (10x a false alarm); calling it benign
(which usually still leads to follow-up) costs 5. Configure with ``cost_matrix=``.
"""

EPS = 1e-7
"""Probabilities are clipped to [EPS, 1] before the log in :func:`log_loss`."""


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(CLASSES)
) -> np.ndarray:
    """Counts (K, K) int64, rows = true class, columns = predicted class.

    y_true, y_pred: int (N,) in [0, K).
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in length")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} has labels outside [0, {n_classes}): {np.unique(y).tolist()}")
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def _div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """num / den elementwise, nan where den == 0 (0/0 is undefined, not 0)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _value(x: np.ndarray, cm: np.ndarray):
    """A float for one (K, K) matrix, the array for a stack (..., K, K)."""
    return float(x) if np.ndim(cm) == 2 else x


# Every set metric below takes one confusion matrix (K, K) or a stack of them (..., K, K)
# (rows true, columns predicted; the bootstrap of medssl.stats computes B resamples as a
# (B, K, K) stack of weighted counts) and returns a float or a (...,) array: one definition
# for a split and for its resamples.


def sensitivity_specificity(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class one-vs-rest sensitivity (recall) and specificity, each float (..., K).

    cm: (..., K, K) confusion matrices (rows true). Sensitivity of class k is nan when k is
    absent from the true labels; specificity is nan when every image is of class k.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    fn = cm.sum(axis=-1) - tp
    fp = cm.sum(axis=-2) - tp
    tn = cm.sum(axis=(-2, -1))[..., None] - tp - fn - fp
    return _div(tp, tp + fn), _div(tn, tn + fp)


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2TP / (2TP + FP + FN), float (..., K); nan when the class is neither true
    nor predicted anywhere (0/0). A class that is present but never predicted has F1 = 0."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    return _div(2 * tp, cm.sum(axis=-1) + cm.sum(axis=-2))


def f1_macro(cm: np.ndarray):
    """Unweighted mean of :func:`f1_per_class`; nan if any class's F1 is undefined."""
    return _value(f1_per_class(cm).mean(axis=-1), cm)


def f1_weighted(cm: np.ndarray):
    """Support-weighted mean of per-class F1 (scikit-learn ``average='weighted'``).

    Classes absent from ``y_true`` carry weight 0 and so never make it undefined; nan only for
    an empty split.
    """
    cm = np.asarray(cm, dtype=np.float64)
    support = cm.sum(axis=-1)
    f1 = np.nan_to_num(f1_per_class(cm), nan=0.0)  # nan only where support == 0 (weight 0)
    return _value(_div((f1 * support).sum(axis=-1), support.sum(axis=-1)), cm)


def accuracy(cm: np.ndarray):
    """Fraction of correct predictions; nan for an empty split."""
    cm = np.asarray(cm, dtype=np.float64)
    return _value(_div(np.trace(cm, axis1=-2, axis2=-1), cm.sum(axis=(-2, -1))), cm)


def balanced_accuracy(cm: np.ndarray):
    """Mean per-class sensitivity over all K classes; nan if a class is absent from y_true.

    (scikit-learn instead averages over the classes present and warns; we report undefined so
    that splits with and without a class are never compared as if alike.)
    """
    sens, _ = sensitivity_specificity(cm)
    return _value(sens.mean(axis=-1), cm)


def mcc(cm: np.ndarray):
    """Multi-class Matthews correlation coefficient (Gorodkin 2004; scikit-learn's formula).

    0 when the denominator is 0 (a constant prediction, or a single true class): a predictor
    that says one class for every image carries no information, and 0 is scikit-learn's
    ``matthews_corrcoef`` convention, so a constant predictor pulls a mean over seeds down
    instead of silently leaving it (a NaN would be dropped). nan only for an empty split.
    """
    cm = np.asarray(cm, dtype=np.float64)
    t = cm.sum(axis=-1)  # true counts per class
    p = cm.sum(axis=-2)  # predicted counts per class
    c = np.trace(cm, axis1=-2, axis2=-1)
    s = cm.sum(axis=(-2, -1))
    cov_ytyp = c * s - (t * p).sum(axis=-1)
    cov_ypyp = s * s - (p * p).sum(axis=-1)
    cov_ytyt = s * s - (t * t).sum(axis=-1)
    r = np.nan_to_num(_div(cov_ytyp, np.sqrt(cov_ytyt * cov_ypyp)), nan=0.0)
    return _value(np.where(s > 0, r, np.nan), cm)


def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean cross-entropy -log p[y] (natural log); probabilities clipped to [EPS, 1].

    y_true: int (N,); probs: (N, K). nan for an empty split.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if y_true.size == 0:
        return float("nan")
    p = np.clip(probs[np.arange(len(y_true)), y_true], EPS, 1.0)
    return float(-np.log(p).mean())


def auroc_per_class(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC AUC per class, float (K,): the real area (trapezoids, ties count half).

    nan for a class with no positive or no negative image in the split.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    out = np.full(probs.shape[1], np.nan)
    for k in range(probs.shape[1]):
        pos = y_true == k
        if 0 < pos.sum() < len(y_true):
            out[k] = roc_auc_score(pos, probs[:, k])
    return out


def average_precision_per_class(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """One-vs-rest average precision (area under the step PR curve, scikit-learn), float (K,).

    nan for a class with no positive image in the split.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    out = np.full(probs.shape[1], np.nan)
    for k in range(probs.shape[1]):
        pos = y_true == k
        if pos.any():
            out[k] = average_precision_score(pos, probs[:, k])
    return out


def expected_cost(
    cm: np.ndarray,
    cost_matrix: Sequence[Sequence[float]] | np.ndarray = DEFAULT_COST_MATRIX,
    priors: Sequence[float] | np.ndarray | None = None,
) -> tuple[float, float]:
    """Expected Cost and normalised Expected Cost (Ferrer, "Analysis and comparison of
    classification metrics", 2022).

    EC = sum_ij P(true=i) * P(pred=j | true=i) * C[i, j]. ``priors`` default to the split's
    class frequencies, in which case EC = sum_ij cm[i, j] C[i, j] / N. The normalised EC divides
    by the cost of the best constant ("naive") decision under the same priors, so 1 means no
    better than always answering the cheapest class and 0 is perfect.

    cm: (K, K) counts, rows true. Returns (ec, ec_norm); nan when a class with a non-zero prior
    is absent from the split (its P(pred | true) is undefined) or the naive cost is 0.
    """
    cm = np.asarray(cm, dtype=np.float64)
    cost = np.asarray(cost_matrix, dtype=np.float64)
    if cost.shape != cm.shape:
        raise ValueError(
            f"cost matrix has shape {cost.shape}; expected {cm.shape} (rows true, cols pred)"
        )
    support = cm.sum(axis=1)
    prior = support / support.sum() if priors is None else np.asarray(priors, dtype=np.float64)
    if support.sum() == 0 or np.any((prior > 0) & (support == 0)):
        return float("nan"), float("nan")
    cond = _div(cm, support[:, None])  # P(pred = j | true = i), (K, K)
    cond = np.where(prior[:, None] > 0, cond, 0.0)
    ec = float((prior[:, None] * cond * cost).sum())
    naive = float((prior @ cost).min())  # cost of always predicting the cheapest column
    return ec, float(_div(ec, naive))


def classification_metrics(
    y_true: np.ndarray,
    probs: np.ndarray,
    *,
    class_names: Sequence[str] = CLASSES,
    cost_matrix: Sequence[Sequence[float]] | np.ndarray = DEFAULT_COST_MATRIX,
) -> dict[str, float]:
    """Every scalar metric of one split as a flat ``{name: value}`` dict (nan = undefined).

    y_true: int (N,); probs: float (N, K) probabilities. Names: ``n, loss, accuracy,
    balanced_accuracy, mcc, f1_macro, f1_weighted, auroc_macro, ap_macro, expected_cost,
    expected_cost_normalized``, per class ``sensitivity_<c>, specificity_<c>, f1_<c>,
    auroc_<c>, ap_<c>`` and confusion counts ``confusion_<true>_<pred>``.
    """
    y_true = np.asarray(y_true, dtype=np.int64).ravel()
    probs = np.asarray(probs, dtype=np.float64)
    k = len(class_names)
    if probs.ndim != 2 or probs.shape != (len(y_true), k):
        raise ValueError(f"probs must be ({len(y_true)}, {k}); got {probs.shape}")
    cm = confusion_matrix(y_true, probs.argmax(axis=1), k)
    sens, spec = sensitivity_specificity(cm)
    f1 = f1_per_class(cm)
    auc = auroc_per_class(y_true, probs)
    ap = average_precision_per_class(y_true, probs)
    ec, ec_norm = expected_cost(cm, cost_matrix)
    out: dict[str, float] = {
        "n": float(len(y_true)),
        "loss": log_loss(y_true, probs),
        "accuracy": accuracy(cm),
        "balanced_accuracy": balanced_accuracy(cm),
        "mcc": mcc(cm),
        "f1_macro": f1_macro(cm),
        "f1_weighted": f1_weighted(cm),
        "auroc_macro": float(np.mean(auc)),
        "ap_macro": float(np.mean(ap)),
        "expected_cost": ec,
        "expected_cost_normalized": ec_norm,
    }
    for i, name in enumerate(class_names):
        out[f"sensitivity_{name}"] = float(sens[i])
        out[f"specificity_{name}"] = float(spec[i])
        out[f"f1_{name}"] = float(f1[i])
        out[f"auroc_{name}"] = float(auc[i])
        out[f"ap_{name}"] = float(ap[i])
    for i, t in enumerate(class_names):
        for j, p in enumerate(class_names):
            out[f"confusion_{t}_{p}"] = float(cm[i, j])
    return out
