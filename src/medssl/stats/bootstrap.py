"""The cluster (patient) bootstrap: 95% percentile confidence intervals over test images.

Conventions: the resampling unit is the cluster (patient), so images of one patient are drawn
together; a drawn cluster contributes all its rows in every replicate (seed), so the seeds of
one model see the same resample. Intervals are percentile intervals of ``n_resamples``
bootstrap replicates (Efron & Tibshirani 1993, ch. 13) from ``numpy.random.default_rng(seed)``,
so the same inputs and seed give the same interval. Replicates where the metric is undefined
(NaN) are left out of the percentiles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from medssl.errors import DataError
from medssl.stats.estimands import Predictions, statistic

CHUNK = 500  # resamples per weight matrix: bounds memory at CHUNK x N floats


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float = 0.95
    n: int = 0  # images (bootstrap) or replicates (t-interval) behind the estimate

    def covers(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)


def cluster_codes(clusters: np.ndarray) -> tuple[np.ndarray, int]:
    """(N,) cluster labels -> ((N,) int codes in [0, P), P distinct clusters)."""
    uniq, codes = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    return codes.reshape(-1), len(uniq)


def cluster_weights(
    codes: np.ndarray, n_clusters: int, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Row weights of ``n_resamples`` cluster resamples: (N,) codes -> (n_resamples, N) float.

    Each resample draws ``n_clusters`` clusters with replacement; a row's weight is how many
    times its cluster was drawn.
    """
    draws = rng.multinomial(
        n_clusters, np.full(n_clusters, 1.0 / n_clusters), size=n_resamples
    )  # (B, P)
    return draws[:, codes].astype(float)


def resample_weights(
    clusters: np.ndarray, n_resamples: int, seed: int, chunk: int = CHUNK
) -> Iterator[np.ndarray]:
    """Cluster-bootstrap row weights in chunks of at most ``chunk`` resamples: each (b, N)."""
    codes, n_clusters = cluster_codes(clusters)
    if n_clusters == 0:
        raise DataError("bootstrap: no test images to resample")
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        b = min(chunk, n_resamples - done)
        yield cluster_weights(codes, n_clusters, b, rng)
        done += b


def percentile_interval(
    estimate: float, replicates: np.ndarray, confidence: float, n: int
) -> Interval:
    """Percentile interval of bootstrap ``replicates`` (B,), NaN replicates skipped."""
    reps = replicates[~np.isnan(replicates)]
    if reps.size == 0 or np.isnan(estimate):
        return Interval(float(estimate), float("nan"), float("nan"), confidence, n)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(reps, [alpha, 1.0 - alpha])
    return Interval(float(estimate), float(low), float(high), confidence, n)


def bootstrap_ci(
    fn: Callable[[np.ndarray], np.ndarray],
    clusters: np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile CI of any weighted statistic under the cluster bootstrap.

    fn: (B, N) row weights -> (B,) statistic; ``fn(ones((1, N)))`` is the point estimate.
    clusters: (N,) cluster label of each row (pass the row ids for an i.i.d. bootstrap).
    """
    n = len(clusters)
    estimate = float(fn(np.ones((1, n)))[0])
    reps = np.concatenate([fn(w) for w in resample_weights(clusters, n_resamples, seed)])
    return percentile_interval(estimate, reps, confidence, n)


def metric_ci(
    pred: Predictions,
    metric: str,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """95% cluster-bootstrap CI of ``metric`` for one model's test predictions.

    The estimate is the mean over replicates (seeds) of the metric on each replicate's pooled
    test predictions; see :func:`medssl.stats.estimands.statistic`. ``Interval.n`` is the
    number of distinct test images.
    """
    iv = bootstrap_ci(
        lambda w: statistic(pred, metric, w),
        pred.clusters,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
    return Interval(iv.estimate, iv.low, iv.high, iv.confidence, len(np.unique(pred.ids)))


def mean_ci(
    values: np.ndarray, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """Cluster-free bootstrap CI of the mean of ``values`` (N,) (NaN skipped)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return bootstrap_ci(
        lambda w: (w @ values) / w.sum(axis=1),
        np.arange(len(values)).astype(str),
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
