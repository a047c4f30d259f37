"""Known answers of the design arithmetic: the detectable effect, the df guard, seeds needed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from medssl.stats.design import (
    SEED_UPPER,
    Components,
    detectable_effect,
    ncp_for_power,
    satterthwaite,
    seeds_needed,
    t_power,
)


def test_detectable_effect_has_80_percent_power_under_the_noncentral_t():
    for df in (2.0, 4.0, 7.3, 40.0):
        x = detectable_effect(0.02, df)
        c = sps.t.ppf(0.975, df)
        power = sps.nct.sf(c, df, x / 0.02) + sps.nct.cdf(-c, df, x / 0.02)
        assert power == pytest.approx(0.80, abs=1e-6)
    # at few df the exact form exceeds the sum of quantiles; from about df 8 on they agree
    assert ncp_for_power(2.0) == pytest.approx(5.653, abs=1e-3)
    assert ncp_for_power(2.0) > sps.t.ppf(0.975, 2) + sps.t.ppf(0.8, 2) + 0.25
    assert ncp_for_power(30.0) == pytest.approx(sps.t.ppf(0.975, 30) + sps.t.ppf(0.8, 30), abs=0.01)
    assert ncp_for_power(math.inf) == pytest.approx(
        sps.norm.ppf(0.975) + sps.norm.ppf(0.8), abs=1e-3
    )
    assert math.isnan(detectable_effect(float("nan"), 4.0)) and math.isnan(
        detectable_effect(0.1, 0)
    )


def _size(seeds: int, lam: float, guarded: bool, patients: int = 80) -> float:
    """Exact size of the two-sided 5% t test of a paired design in the Gaussian model: the
    seed term's estimate is sigma^2 / R * W / (R - 1) with W ~ chi^2_{R-1}, the floor lambda
    sigma^2 / R is known; the df is the Components rule's."""
    k = seeds - 1

    def at(w: float) -> float:
        v = w / k  # the seed term, in units of sigma^2 / R
        c = Components((v * seeds,), lam, patients - 1, False, seeds, guarded=guarded)
        crit = sps.t.ppf(0.975, c.df(seeds))
        return 2 * sps.norm.sf(crit * np.sqrt((v + lam) / (1 + lam))) * sps.chi2.pdf(w, k)

    return integrate.quad(at, 0, np.inf, limit=200)[0]


@pytest.mark.parametrize("seeds", [2, 3, 5, 10])
def test_the_df_guard_keeps_the_size_at_5_percent(seeds):
    """Plain Welch-Satterthwaite (the wrong rule here) rejects a true null too often with few
    seeds; with the seed term at its 80% upper bound in the df the size stays at 0.05."""
    lams = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 20.0)
    guarded = [_size(seeds, lam, True) for lam in lams]
    assert max(guarded) <= 0.0505, guarded
    assert guarded[0] == pytest.approx(0.05, abs=1e-4)  # no floor: the t on R - 1 df
    plain = max(_size(seeds, lam, False) for lam in lams)
    assert plain > {2: 0.12, 3: 0.075, 5: 0.057, 10: 0.0505}[seeds], plain


def test_components_variance_df_and_the_seeds_needed_hand_computed():
    """A pilot of 3 seeds: paired differences of SD 0.05, tau^2 = 0.0001 on 80 patients."""
    c = Components((0.0025,), 0.0001, 79.0, False, 3)
    assert c.variance(5) == pytest.approx(0.0025 / 5 + 0.0001)
    m = 4 / sps.chi2.ppf(SEED_UPPER, 4)
    df5 = (m * 0.0005 + 0.0001) ** 2 / ((m * 0.0005) ** 2 / 4 + 0.0001**2 / 79)
    assert c.df(5) == pytest.approx(df5)
    assert c.detectable(5) == pytest.approx(ncp_for_power(df5) * math.sqrt(0.0006))
    need = seeds_needed(c, 0.05, min_seeds=3)
    assert c.detectable(need) <= 0.05 < c.detectable(need - 1)
    assert need == min(r for r in range(3, 200) if c.detectable(r) <= 0.05)
    # the test patients alone detect no less than 2.8 SEs of tau: a smaller target is unreachable
    assert c.limit() == pytest.approx(ncp_for_power(79.0) * 0.01)
    assert seeds_needed(c, 0.9 * c.limit()) is None
    assert seeds_needed(c, 10.0, min_seeds=3) == 3


def test_with_folds_the_within_seed_floor_gains_df_with_the_seeds():
    c = Components((0.004,), 0.001, 4.0, True, 3)  # 5 folds: 4 within-seed df per seed
    assert c.df(6) == pytest.approx(
        satterthwaite([(0.004 / 6 * 5 / sps.chi2.ppf(SEED_UPPER, 5), 5), (0.001, 24)])
    )
    assert c.limit() == pytest.approx(ncp_for_power(math.inf) * math.sqrt(0.001))
    assert t_power(ncp_for_power(5.0), 5.0) == pytest.approx(0.8)
