"""Fixed-network comparison: two sets of trained models on the same test images and seeds.

The difference is ``metric(a) - metric(b)`` (a = pretrained, b = its random-init baseline),
each metric the mean over seeds of the metric on that seed's pooled test predictions. The
interval and p-value resample *test patients* of the networks at hand and condition on them:
they answer "do these trained networks differ on patients like these?", never "does the
method help?" (run-to-run variance does not enter; see :mod:`medssl.stats.method` for that).
The report labels them "for these trained networks".

- 95% CI: paired cluster bootstrap. One resample of patients weights the rows of *both* models,
  so the interval reflects only the images' effect on the difference.
- p-value: two-sided paired permutation (sign-flip) test. Under H0 ("a and b are exchangeable")
  the predictions of a and b for one patient may be swapped (for all that patient's images and
  all seeds together); p = (1 + #{|d*| >= |d|}) / (1 + n_permutations) (Phipson & Smyth 2010),
  so p is never 0 and identical models give p = 1.

Rows are paired on (replicate, id); rows present in only one model are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medssl.errors import DataError
from medssl.stats.bootstrap import Interval, cluster_codes, percentile_interval, resample_weights
from medssl.stats.estimands import Predictions, concat, statistic


@dataclass(frozen=True)
class Comparison:
    """Result of :func:`paired_comparison` (``difference`` = a - b)."""

    metric: str
    a: float  # metric of model a (pretrained)
    b: float  # metric of model b (baseline)
    difference: Interval
    p_value: float
    n_images: int  # paired distinct test images
    n_clusters: int  # distinct patients
    n_replicates: int  # seeds
    n_unpaired: int  # rows of either model without a partner, left out


def align(a: Predictions, b: Predictions) -> tuple[Predictions, Predictions, int]:
    """Rows of ``a`` and ``b`` paired on (replicate, id), in the same order; plus unpaired count."""
    ka = _keys(a, "a")
    kb = _keys(b, "b")
    common = sorted(set(ka) & set(kb))
    if not common:
        raise DataError(
            "paired comparison: the two models share no (seed, test image id); "
            "were they fine-tuned on the same database split and seeds?"
        )
    ia = np.array([ka[k] for k in common], dtype=np.int64)
    ib = np.array([kb[k] for k in common], dtype=np.int64)
    unpaired = len(ka) + len(kb) - 2 * len(common)
    return a.take(ia), b.take(ib), unpaired


def _keys(p: Predictions, name: str) -> dict[tuple[int, str], int]:
    keys: dict[tuple[int, str], int] = {}
    for i, (r, id_) in enumerate(
        zip(p.replicate.tolist(), p.ids.astype(str).tolist(), strict=True)
    ):
        if (r, id_) in keys:
            raise DataError(
                f"paired comparison: model {name} has test image {id_!r} twice in seed {r}; "
                "pool each seed's folds so that every image is tested once per seed"
            )
        keys[(r, id_)] = i
    return keys


def paired_comparison(
    a: Predictions,
    b: Predictions,
    metric: str,
    *,
    n_resamples: int = 2000,
    n_permutations: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Difference ``metric(a) - metric(b)`` with a paired bootstrap CI and a permutation p-value."""
    a, b, unpaired = align(a, b)
    n = len(a)
    clusters = a.clusters
    ones = np.ones((1, n))
    va = float(statistic(a, metric, ones)[0])
    vb = float(statistic(b, metric, ones)[0])
    observed = va - vb

    reps = np.concatenate(
        [
            statistic(a, metric, w) - statistic(b, metric, w)
            for w in resample_weights(clusters, n_resamples, seed)
        ]
    )
    interval = percentile_interval(observed, reps, confidence, len(np.unique(a.ids)))

    stacked = concat([a, b])  # rows 0..n-1 are a, n..2n-1 are b, paired row by row
    codes, n_clusters = cluster_codes(clusters)
    rng = np.random.default_rng(seed + 1)  # independent of the bootstrap stream
    exceed = 0
    valid = 0  # permutations whose statistic is defined (e.g. MCC is undefined for one class)
    done = 0
    while done < n_permutations:
        m = min(500, n_permutations - done)
        swap = rng.integers(0, 2, size=(m, n_clusters)).astype(float)[
            :, codes
        ]  # (m, N) 1 = swapped
        wa = np.concatenate([1.0 - swap, swap], axis=1)  # a* takes b's rows where swapped
        wb = np.concatenate([swap, 1.0 - swap], axis=1)
        d = statistic(stacked, metric, wa) - statistic(stacked, metric, wb)
        # a tiny tolerance so that floating-point ties with the observed value count as ties
        exceed += int(np.sum(np.abs(d) >= abs(observed) - 1e-12))
        valid += int(np.sum(~np.isnan(d)))
        done += m
    # an undefined observed difference has no p-value (min(1.0, nan) would print 1.0)
    p = (1 + exceed) / (1 + valid) if not np.isnan(observed) else float("nan")
    return Comparison(
        metric=metric,
        a=va,
        b=vb,
        difference=interval,
        p_value=float(p if np.isnan(p) else min(1.0, p)),
        n_images=len(np.unique(a.ids)),
        n_clusters=n_clusters,
        n_replicates=len(np.unique(a.replicate)),
        n_unpaired=unpaired,
    )
