"""What the bootstrap resamples: test predictions, and metrics as functions of resampling weights.

A resample of test images is written as a weight per prediction row (how many times the row is
drawn), so a metric of B resamples is one vectorised computation on a ``(B, N)`` weight matrix
instead of B calls on copied arrays: the weighted confusion matrices (B, K, K) go through the
set metrics of :mod:`medssl.metrics.classification`, which take stacks, so one definition
serves a split and its resamples (with integer weights, the metric of the explicitly
repeated rows; tested).

Rows belong to a *replicate* (a seed, or a repeat of K-fold cross-validation): a metric is
computed on each replicate's rows (its per-image test predictions pooled over folds) and the
replicates' values are averaged. Rows belong to a *cluster* (the patient): the bootstrap draws
clusters, never single images of a patient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from medssl.errors import DataError
from medssl.metrics.classification import accuracy, balanced_accuracy, f1_macro, f1_weighted, mcc
from medssl.registry import Registry

N_CLASSES = 3  # medssl.data.records.CLASSES: normal, benign, malignant

LOWER_IS_BETTER = frozenset({"loss", "hd", "hd95", "expected_cost", "pooled_hd", "pooled_hd95"})
"""Metrics where a smaller value is the better model (used for the direction of verdicts)."""


@dataclass(frozen=True)
class Predictions:
    """Per-image test predictions of one model, pooled over folds and stacked over seeds.

    ids:       (N,) str image ids
    clusters:  (N,) str resampling unit (patient id; the image id when no patient is known)
    replicate: (N,) int seed (or repeat); each id appears at most once per replicate
    y_true:    (N,) int class index, or None (segmentation)
    y_pred:    (N,) int predicted class (argmax of probabilities), or None
    values:    per-image metric name -> (N,) float (e.g. dice); NaN = undefined for that image
    strata:    (N,) str stratum of each row (the source dataset), or None; carried along by
               :meth:`take` and :func:`concat`, used for per-stratum breakdowns only
    """

    ids: np.ndarray
    clusters: np.ndarray
    replicate: np.ndarray
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None
    values: Mapping[str, np.ndarray] = field(default_factory=dict)
    strata: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        arrays = {"clusters": self.clusters, "replicate": self.replicate, **dict(self.values)}
        if self.strata is not None:
            arrays["strata"] = self.strata
        if self.y_true is not None:
            arrays["y_true"] = self.y_true
        if self.y_pred is not None:
            arrays["y_pred"] = self.y_pred
        for name, arr in arrays.items():
            if len(arr) != n:
                raise DataError(f"predictions: {name} has {len(arr)} rows, ids has {n}")
        if (self.y_true is None) != (self.y_pred is None):
            raise DataError("predictions: give both y_true and y_pred, or neither")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def metrics(self) -> list[str]:
        """Names :func:`statistic` can compute on these predictions."""
        names = list(SET_METRICS.names()) if self.y_true is not None else []
        return names + sorted(self.values)

    def take(self, index: np.ndarray) -> Predictions:
        """The rows ``index`` (same order)."""
        return Predictions(
            ids=self.ids[index],
            clusters=self.clusters[index],
            replicate=self.replicate[index],
            y_true=None if self.y_true is None else self.y_true[index],
            y_pred=None if self.y_pred is None else self.y_pred[index],
            values={k: v[index] for k, v in self.values.items()},
            strata=None if self.strata is None else self.strata[index],
        )


def concat(parts: list[Predictions]) -> Predictions:
    """Rows of all ``parts`` one after the other (they must carry the same fields)."""
    if not parts:
        raise DataError("predictions: nothing to concatenate")
    keys = set(parts[0].values)
    if any(set(p.values) != keys or (p.y_true is None) != (parts[0].y_true is None) for p in parts):
        raise DataError("predictions: parts carry different fields (mixed tasks?)")
    has_cls = parts[0].y_true is not None
    return Predictions(
        ids=np.concatenate([p.ids for p in parts]),
        clusters=np.concatenate([p.clusters for p in parts]),
        replicate=np.concatenate([p.replicate for p in parts]),
        y_true=np.concatenate([p.y_true for p in parts]) if has_cls else None,
        y_pred=np.concatenate([p.y_pred for p in parts]) if has_cls else None,
        values={
            k: np.concatenate([np.asarray(p.values[k], float) for p in parts]) for k in sorted(keys)
        },
        strata=(
            np.concatenate([p.strata for p in parts])
            if all(p.strata is not None for p in parts)
            else None
        ),
    )


def confusion(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted confusion matrices.

    y_true, y_pred: (N,) int in [0, K); weights: (B, N) -> (B, K, K), [b, i, j] = weight of
    rows with true class i predicted as j.
    """
    cell = y_true.astype(np.int64) * N_CLASSES + y_pred.astype(np.int64)  # (N,)
    onehot = np.zeros((len(cell), N_CLASSES * N_CLASSES))
    onehot[np.arange(len(cell)), cell] = 1.0
    return (weights @ onehot).reshape(-1, N_CLASSES, N_CLASSES)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, NaN where den == 0 (0/0 is undefined, not 0)."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


SET_METRICS: Registry[Callable[[np.ndarray], np.ndarray]] = Registry("set metric")
"""Classification metrics of a whole set of predictions, as functions of a stack of confusion
matrices (B, K, K) -> (B,): the very functions of :mod:`medssl.metrics.classification`."""
for _name, _fn in [
    ("mcc", mcc),
    ("balanced_accuracy", balanced_accuracy),
    ("f1_weighted", f1_weighted),
    ("f1_macro", f1_macro),
    ("accuracy", accuracy),
]:
    SET_METRICS.add(_name, _fn)


def weighted_nanmean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean of per-image ``values`` (N,) under ``weights`` (B, N) -> (B,); NaN images are skipped."""
    defined = ~np.isnan(values)
    w = weights[:, defined]
    return _div(w @ values[defined], w.sum(axis=1))


def replicate_values(
    pred: Predictions, metric: str, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``metric`` of each replicate's rows under row ``weights`` (B, N): ((B, R) values, (R,)
    replicate labels in ascending order). NaN where the metric is undefined for a replicate.

    Set metrics (MCC, balanced accuracy, F1, accuracy) come from the weighted confusion matrix;
    per-image metrics (``pred.values``, e.g. Dice) are weighted means over images where they
    are defined.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    if metric in pred.values:
        values = np.asarray(pred.values[metric], dtype=float)

        def per_replicate(mask: np.ndarray) -> np.ndarray:
            return weighted_nanmean(values[mask], weights[:, mask])

    elif pred.y_true is not None and metric in SET_METRICS:
        fn = SET_METRICS.get(metric)

        def per_replicate(mask: np.ndarray) -> np.ndarray:
            return fn(confusion(pred.y_true[mask], pred.y_pred[mask], weights[:, mask]))

    else:
        raise DataError(
            f"metric {metric!r} cannot be computed from these predictions; available: {pred.metrics}"
        )
    reps = np.unique(pred.replicate)
    out = np.stack([per_replicate(pred.replicate == r) for r in reps], axis=1)  # (B, R)
    return out, reps


def statistic(pred: Predictions, metric: str, weights: np.ndarray) -> np.ndarray:
    """``metric`` of ``pred`` under row ``weights`` (B, N) -> (B,): the mean over replicates
    (seeds) of :func:`replicate_values`.

    A replicate whose value is undefined under a resample is left out of that resample's mean;
    callers that report an estimate count such replicates (:func:`undefined_replicates`).
    """
    out, _ = replicate_values(pred, metric, weights)
    with np.errstate(invalid="ignore"):
        counts = (~np.isnan(out)).sum(axis=1)
        return np.where(counts > 0, np.nansum(out, axis=1) / np.maximum(counts, 1), np.nan)


def undefined_replicates(pred: Predictions, metric: str) -> int:
    """How many replicates (seeds) have an undefined ``metric`` on all their rows."""
    out, _ = replicate_values(pred, metric, np.ones((1, len(pred))))
    return int(np.isnan(out[0]).sum())
