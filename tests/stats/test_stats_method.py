"""Known-answer tests of the method-level statistics and the verdict rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from medssl.errors import DataError
from medssl.stats.design import detectable_effect
from medssl.stats.estimands import Predictions
from medssl.stats.method import (
    corrected_cv_comparison,
    corrected_cv_interval,
    two_level_comparison,
    two_level_interval,
)
from medssl.stats.verdicts import Verdict, method_verdict, not_assessable_reason


def _dice(per_run: np.ndarray) -> Predictions:
    """Per-image Dice (R, n) of R runs on the same n images (one image per patient)."""
    r, n = per_run.shape
    ids = np.tile(np.array([f"i{i}" for i in range(n)]), r)
    return Predictions(
        ids=ids, clusters=ids, replicate=np.repeat(np.arange(r), n),
        values={"dice": per_run.ravel()},
    )  # fmt: skip


def test_two_stage_cv_hand_computed():
    """Three seeds x five folds, 60 training and 20 test images per fold: the variance between
    the seeds' fold means over R, plus the within-seed fold variance times n_test / n_train;
    Satterthwaite df with the seed term at its 80% upper bound."""
    d = np.array(
        [[0.1, 0.2, 0.0, 0.15, 0.05], [0.3, 0.25, 0.2, 0.35, 0.4], [0.0, 0.1, 0.05, 0.0, 0.1]]
    )
    a = {(s, k): 0.5 + d[s, k] for s in range(3) for k in range(5)}
    b = {(s, k): 0.5 for s in range(3) for k in range(5)}
    res = corrected_cv_comparison(a, b, n_train=60, n_test=20, metric="mcc")
    means = d.mean(axis=1)
    s_b2 = means.var(ddof=1)
    s_w2 = ((d - means[:, None]) ** 2).sum() / 12
    var = s_b2 / 3 + 20 / 60 * s_w2
    m = 2 / sps.chi2.ppf(0.2, 2)
    df = (m * s_b2 / 3 + 20 / 60 * s_w2) ** 2 / (
        (m * s_b2 / 3) ** 2 / 2 + (20 / 60 * s_w2) ** 2 / 12
    )
    assert res.estimate == pytest.approx(d.mean())
    assert res.se == pytest.approx(np.sqrt(var)) and res.df == pytest.approx(df)
    assert res.p_value == pytest.approx(2 * sps.t.sf(d.mean() / np.sqrt(var), df))
    half = sps.t.ppf(0.975, df) * np.sqrt(var)
    assert (res.interval.low, res.interval.high) == pytest.approx(
        (d.mean() - half, d.mean() + half)
    )
    assert res.detectable == pytest.approx(detectable_effect(np.sqrt(var), df))
    assert res.components == pytest.approx(
        {"seeds": s_b2 / 3, "folds (Nadeau-Bengio)": 20 / 60 * s_w2}
    )
    assert res.a == pytest.approx(0.5 + d.mean()) and res.b == 0.5
    assert res.replicates == 3 and res.runs == 15
    # the K R folds as exchangeable (the old rule): a narrower interval on 14 df
    old = np.sqrt((1 / 15 + 20 / 60) * d.var(ddof=1))
    assert old < res.se


def test_one_seed_of_folds_has_no_method_level_interval():
    """The folds of one seed share its pretraining run: they cannot tell it from the method."""
    a = {(0, k): 0.5 + x for k, x in enumerate([0.1, 0.2, 0.0, 0.15, 0.05])}
    b = {(0, k): 0.5 for k in range(5)}
    res = corrected_cv_comparison(a, b, n_train=60, n_test=20)
    assert res.estimate == pytest.approx(0.1) and np.isnan(res.interval.low)
    assert res.replicates == 1 and np.isnan(res.p_value)


def test_corrected_cv_counts_undefined_folds_and_needs_shared_folds():
    iv = corrected_cv_interval({(0, 0): 0.3, (0, 1): np.nan, (1, 0): 0.5}, n_train=6, n_test=2)
    assert iv.n_undefined == 1 and iv.runs == 2 and iv.replicates == 2
    assert iv.estimate == pytest.approx(0.4)
    with pytest.raises(DataError, match="only one arm"):
        corrected_cv_comparison({(0, 0): 1.0}, {(0, 1): 1.0}, n_train=6, n_test=2)


def test_two_level_identical_arms_and_too_few_runs():
    rng = np.random.default_rng(0)
    x = _dice(rng.random((4, 30)))
    same = two_level_comparison(x, x, "dice", n_resamples=200)
    assert same.estimate == 0.0 and same.p_value == 1.0
    one = two_level_comparison(_dice(rng.random((1, 30))), _dice(rng.random((1, 30))), "dice")
    assert one.replicates == 1 and np.isnan(one.interval.low) and np.isnan(one.p_value)


def test_two_level_variance_recovers_its_components():
    """Runs differ by a shift u_r (no run x image term): the between-run term is the sample
    variance of the shifts over R, and the test-patient term the variance of the per-image
    differences over n (the bootstrap estimates it up to its resampling noise)."""
    rng = np.random.default_rng(1)
    n, r = 200, 5
    base = rng.random(n)
    delta = 0.05 + 0.2 * rng.standard_normal(n)  # image-level difference between procedures
    ua, ub = 0.03 * rng.standard_normal(r), 0.03 * rng.standard_normal(r)
    a = _dice(base[None] + delta[None] + ua[:, None])
    b = _dice(base[None] + ub[:, None])
    res = two_level_comparison(a, b, "dice", n_resamples=4000, seed=2, paired=False)
    assert res.estimate == pytest.approx(delta.mean() + ua.mean() - ub.mean())
    assert res.components["runs_a"] == pytest.approx(np.var(ua, ddof=1) / r)
    assert res.components["runs_b"] == pytest.approx(np.var(ub, ddof=1) / r)
    assert res.components["test_patients"] == pytest.approx(np.var(delta) / n, rel=0.1)
    assert res.se**2 == pytest.approx(sum(res.components.values()))
    paired = two_level_comparison(a, b, "dice", n_resamples=4000, seed=2)
    seeds = paired.components["seeds (paired differences)"]
    assert seeds == pytest.approx(np.var(ua - ub, ddof=1) / r)
    assert paired.components["test_patients"] == res.components["test_patients"]
    assert paired.se**2 == pytest.approx(seeds + res.components["test_patients"])
    assert paired.design.variance(r) == pytest.approx(paired.se**2)
    assert paired.design.df(r) == pytest.approx(paired.df)
    assert paired.detectable == pytest.approx(detectable_effect(paired.se, paired.df))
    arm = two_level_interval(a, "dice", n_resamples=4000, seed=2)
    assert arm.components["runs"] == pytest.approx(np.var(ua, ddof=1) / r)
    assert arm.components["test_patients"] == pytest.approx(np.var(base + delta) / n, rel=0.1)


def test_two_level_counts_an_undefined_replicate():
    rng = np.random.default_rng(3)
    vals = rng.random((4, 20))
    vals[2] = np.nan  # no defined Dice in seed 2 (e.g. no lesion image)
    res = two_level_comparison(_dice(vals), _dice(rng.random((4, 20))), "dice", n_resamples=100)
    assert res.n_undefined == 1 and res.replicates == 3


def test_verdict_needs_three_replicates_and_names_the_command():
    res = corrected_cv_comparison(
        {(s, 0): 0.9 for s in range(2)} | {(s, 1): 0.8 for s in range(2)},
        {(s, 0): 0.1 for s in range(2)} | {(s, 1): 0.2 for s in range(2)},
        n_train=60, n_test=20,
    )  # fmt: skip
    assert method_verdict(res.interval, res.p_value, replicates=2) == Verdict.NOT_ASSESSABLE
    assert method_verdict(res.interval, res.p_value, replicates=3) == Verdict.BETTER
    assert Verdict.BETTER.supported and not Verdict.NOT_ASSESSABLE.supported
    text = not_assessable_reason(1, None, "demo")
    assert text.startswith("not assessable with 1 run per arm")
    assert "--seeds 5" in text and "--folds 5 --seeds 3" in text
    assert "share one" in not_assessable_reason(1, 5, "demo")
