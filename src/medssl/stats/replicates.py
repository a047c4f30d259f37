"""Mean and confidence interval of a run-level metric across replicate runs (seeds, folds).

Used for the thesis-shaped tables (6.1, 6.2, B.2), where each run reports one value per split.
Convention: every finished (seed, fold) run is one replicate; the interval is the Student-t
interval mean +/- t_{1-alpha/2, n-1} * sd / sqrt(n). Folds of one repeat share training
images, so with folds this interval describes run-to-run spread rather than a sampling
distribution; the inferential statements of the report come from the image bootstrap
(:mod:`medssl.stats.bootstrap`, :mod:`medssl.stats.paired`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

from medssl.stats.bootstrap import Interval


def t_interval(values: Sequence[float], *, confidence: float = 0.95) -> Interval:
    """Mean and Student-t CI of ``values`` (n,) with NaN skipped.

    n = 0 -> all NaN; n = 1 -> the value with a NaN interval (no spread to estimate).
    ``Interval.n`` is the number of defined values.
    """
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), confidence, 0)
    mean = float(v.mean())
    if n == 1:
        return Interval(mean, float("nan"), float("nan"), confidence, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / np.sqrt(n))
    return Interval(mean, mean - half, mean + half, confidence, n)
