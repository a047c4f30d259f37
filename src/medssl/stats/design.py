"""What a design detects, and the seeds that reach a target: arithmetic on variance components.

A method-level difference (:mod:`medssl.stats.method`) has a variance that is a function of
the number of seeds R, measured on a finished benchmark (its *components*)::

    Var(R) = sum(per_seed) / R + floor

- ``per_seed``: the variance of one seed's value: the paired per-seed difference (one term),
  each arm's seeds (two terms, unpaired), or with folds the seed's fold-averaged difference;
  each term has R - 1 degrees of freedom.
- ``floor``: the part that more seeds do not shrink: the test-sampling term tau^2 of one split
  (df: test patients - 1), or with folds the Nadeau–Bengio term (n_test / n_train) S_w^2
  of the data set the repeats share (df: R (K - 1), so it grows with the seeds).

The degrees of freedom of Var(R) are Welch–Satterthwaite's over those terms, with one guard:
the weights take each seed term at its one-sided 80% upper confidence bound,
v (R - 1) / chi^2_{R-1, 0.20}, instead of its estimate v (the variance itself keeps v). Plain
Satterthwaite rewards a seed variance that came out small by chance twice, with a smaller
variance and more degrees of freedom, so with few seeds its t test rejects a true null too
often: in the Gaussian model with the floor known (a ratio lambda = floor / (sigma^2 / R)),
integrating over the chi^2 of the seed term gives a size of 0.126 at 2 seeds, 0.078 at 3 and
0.058 at 5 (worst lambda); with the guard at most 0.050 for 2 to 10 seeds and every lambda in
0 to 20 (``tests/stats/test_stats_design.py`` computes both). With no floor the df is R - 1
either way, and the terms where the floor dominates keep its df. An unpaired comparison
(``guarded=False``) keeps the plain Welch–Satterthwaite rule of its two arms.

**Detectable effect.** The smallest true difference delta that the two-sided t test at level
alpha (the verdict rule of :mod:`medssl.stats.verdicts`, before the Holm adjustment) rejects
with probability ``power``, given the standard error SE and df of the design:

    power(delta) = P(T > c) + P(T < -c),   T ~ noncentral t(df, delta / SE),  c = t_{1-alpha/2, df}

solved for delta (the exact noncentral-t power of the t test: Cohen 1988, *Statistical Power
Analysis*, §2.3; Lenth 2001, "Some practical guidelines for effective sample size
determination", Am. Stat. 55). The exact form and not the sum of quantiles
(t_{1-alpha/2, df} + t_{power, df}) SE, because the designs here have few degrees of freedom
(2 at 3 seeds) and there the sum understates the detectable effect: delta / SE is 5.65 at
df 2 against 5.36 by the sum (16.3 against 14.1 at df 1), 3.76 against 3.72 at df 4; from
df 8 on the two agree to 0.01. SE and df
are the estimates of the finished runs, taken as the design's true values: the detectable
effect is a property of the design as measured, not a second test.

scipy's noncentral t gives the power; the inversion (a bracketed root, :func:`ncp_for_power`)
is written here because scipy has no inverse in the noncentrality parameter.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05
POWER = 0.80
NORMAL_DF = 1e4  # above this many degrees of freedom the t is taken as the normal
SEED_UPPER = 0.20  # the seed terms enter the df at their one-sided 1 - SEED_UPPER upper bound


def satterthwaite(terms: Sequence[tuple[float, float]]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of variance terms ``(value, df)``;
    terms of value 0 (or df 0) carry no weight; inf when no term carries any."""
    total = sum(v for v, _ in terms)
    den = sum(v * v / d for v, d in terms if d > 0 and v > 0)
    return float(total * total / den) if den > 0 else float("inf")


def t_power(ncp: float, df: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided level-``alpha`` t test on ``df`` degrees of freedom when the true
    difference is ``ncp`` standard errors."""
    if df > NORMAL_DF:
        c = stats.norm.ppf(1 - alpha / 2)
        return float(stats.norm.sf(c - ncp) + stats.norm.cdf(-c - ncp))
    c = stats.t.ppf(1 - alpha / 2, df)
    lower = float(np.nan_to_num(stats.nct.cdf(-c, df, ncp)))  # ~0; scipy gives NaN far out
    return float(stats.nct.sf(c, df, ncp)) + lower


@functools.lru_cache(maxsize=4096)
def ncp_for_power(df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The noncentrality delta / SE at which the two-sided t test has ``power`` (module
    docstring); NaN for df <= 0."""
    if not df > 0:
        return float("nan")
    if df > NORMAL_DF:
        df = math.inf
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    if math.isinf(df):
        return float(optimize.brentq(lambda n: t_power(n, df, alpha) - power, 0.0, 2 * z))
    hi = stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)
    while t_power(hi, df, alpha) < power:
        hi *= 1.5
    return float(optimize.brentq(lambda n: t_power(n, df, alpha) - power, 0.0, hi, xtol=1e-10))


def detectable_effect(se: float, df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest difference a design of standard error ``se`` on ``df`` degrees of freedom
    detects with ``power`` at two-sided ``alpha`` (module docstring); NaN when undefined."""
    if not (np.isfinite(se) and se >= 0) or not df > 0:
        return float("nan")
    return float(ncp_for_power(round(float(df), 6), alpha, power) * se)


@dataclass(frozen=True)
class Components:
    """The variance of a method-level difference as a function of the seeds (module docstring).

    per_seed: variance of one seed's value, one term per arm when unpaired (each R - 1 df);
    floor: the term more seeds do not shrink; floor_df: its degrees of freedom, per seed when
    ``floor_per_seed`` (folds: K - 1 per seed) else fixed (test patients - 1);
    seeds: the seeds they were measured on; guarded: the df guard of the module docstring.
    """

    per_seed: tuple[float, ...]
    floor: float
    floor_df: float
    floor_per_seed: bool
    seeds: int
    guarded: bool = True

    def variance(self, seeds: int) -> float:
        return float(sum(self.per_seed) / seeds + self.floor)

    def df(self, seeds: int) -> float:
        floor_df = self.floor_df * seeds if self.floor_per_seed else self.floor_df
        k = seeds - 1
        m = k / stats.chi2.ppf(SEED_UPPER, k) if self.guarded and k > 0 else 1.0
        terms = [(m * v / seeds, k) for v in self.per_seed] + [(self.floor, floor_df)]
        return satterthwaite(terms)

    def detectable(self, seeds: int, alpha: float = ALPHA, power: float = POWER) -> float:
        """The detectable effect of the same design with ``seeds`` seeds."""
        return detectable_effect(
            math.sqrt(max(self.variance(seeds), 0.0)), self.df(seeds), alpha, power
        )

    def limit(self, alpha: float = ALPHA, power: float = POWER) -> float:
        """The detectable effect with unlimited seeds: the floor's alone."""
        df = math.inf if self.floor_per_seed else self.floor_df
        return detectable_effect(math.sqrt(max(self.floor, 0.0)), df, alpha, power)


def seeds_needed(
    c: Components,
    target: float,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
    min_seeds: int = 2,
    max_seeds: int = 200,
) -> int | None:
    """The fewest seeds (at least ``min_seeds``) whose design detects ``target`` with ``power``;
    None when even ``max_seeds`` do not (the floor alone is too wide: :meth:`Components.limit`)
    or the components are undefined. The detectable effect falls with the seeds, so the first
    seed count that reaches the target is the answer (bisection over [min_seeds, max_seeds])."""
    if not target > 0 or not all(np.isfinite([*c.per_seed, c.floor])):
        return None
    if c.detectable(max_seeds, alpha, power) > target:
        return None
    lo, hi = min_seeds, max_seeds
    if c.detectable(lo, alpha, power) <= target:
        return lo
    while hi - lo > 1:  # detectable(lo) > target >= detectable(hi)
        mid = (lo + hi) // 2
        if c.detectable(mid, alpha, power) <= target:
            hi = mid
        else:
            lo = mid
    return hi
