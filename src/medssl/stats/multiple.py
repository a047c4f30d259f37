"""Multiple-testing correction across the matrix of comparisons."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values, in the input order: (m,) -> (m,).

    Sorted ascending, p_(i) is multiplied by (m - i + 1); a running maximum keeps the adjusted
    values monotone and they are capped at 1. Reject H_i at level alpha iff adjusted_i < alpha
    (family-wise error rate <= alpha under any dependence). NaN p-values stay NaN and do not
    count in m.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = len(defined)
    if m == 0:
        return out
    order = defined[np.argsort(p[defined], kind="stable")]
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out
