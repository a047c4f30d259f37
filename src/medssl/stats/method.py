"""Method-level inference: does one training *procedure* beat another, over training runs?

The fixed-network comparison (:mod:`medssl.stats.paired`) resamples the test patients of the
networks at hand, so its interval describes *these trained networks*. A claim about a method
("SimCLR pretraining beats random init on US1") must also carry the variance between training
runs — pretraining seed, fine-tuning seed, the training set of a cross-validation fold — since
a second set of runs gives other networks. Three estimators, one result type:

**Seeds on one split, paired** (:func:`two_level_comparison`, ``paired=True``; the benchmark's
design: both arms of seed r share its split, fine-tuning seed and label subset, and are
tested on the same images). With M_xr the test metric of arm x in {a, b}, seed r:

    M_xr = mu_x + u_xr + t_x + w_xr

- u_xr: the run's deviation (pretraining, fine-tuning seed, training order); the pairs
  (u_ar, u_br) are independent over seeds and may correlate within one (shared seed, split,
  label subset);
- t_x: the test-set term of arm x: the mean over the test patients of the arm's image effects,
  the procedure x image interaction included; shared by all runs of the arm;
- w_xr: the run x image term averaged over the test images.

The estimate is D = mean_r D_r with D_r = M_ar - M_br = delta + (u_ar - u_br) + (t_a - t_b)
+ (w_ar - w_br), so (runs and test images crossed: two-way random effects, method of moments;
Searle, Casella & McCulloch 1992, *Variance Components*, ch. 4)

    Var(D) = sigma_d^2 / R + tau^2,   sigma_d^2 = Var(u_ar - u_br + w_ar - w_br),
                                      tau^2 = Var(t_a - t_b).

- sigma_d^2 is estimated without bias by the sample variance s_d^2 of the per-seed paired
  differences D_r (t_a - t_b is one constant on the test set at hand and cancels), with R - 1
  degrees of freedom. A positive within-seed correlation makes sigma_d^2 = sigma_a^2 + sigma_b^2
  - 2 cov smaller than the unpaired sum: the paired design of Bouthillier et al. 2021
  ("Accounting for variance in machine learning benchmarks", MLSys: randomise every source of
  variation and compare the arms on the same draws of it).
- tau^2, the test-sampling variance of the two procedures' difference, from the cluster
  (patient) bootstrap that applies one resample of test patients to every run of both arms.
  With V_B the bootstrap variance of D and V_r that of run r's difference,
  tau^2 = max(0, V_B - mean_r V_r / R) * R / (R - 1): V_B holds tau^2 (R - 1) / R plus the
  run x image term / R, each V_r holds tau^2 plus that term, so the difference isolates tau^2.

Interval D +- t_{df} sqrt(s_d^2 / R + tau^2), Welch–Satterthwaite df over (s_d^2 / R, R - 1)
and (tau^2, patients - 1), the seed term weighted at its 80% upper confidence bound (with 3
seeds plain Satterthwaite rejects a true null up to 7.8% of the times:
:mod:`medssl.stats.design`); the p-value is the two-sided t test of D = 0.

**Seeds on one split, unpaired** (``paired=False``; arms whose runs share nothing but the
test images): Var(D) = (s_a^2 + s_b^2) / R + tau^2, s_x^2 the sample variance over runs of arm
x (each R - 1 df). With arms that do correlate within a seed it is conservative (it drops the
-2 cov), so the benchmark's comparisons use the paired rule.

**Repeated K-fold cross-validation, seeds respected** (:func:`corrected_cv_comparison`,
:func:`corrected_cv_interval`). The K folds of a seed share one pretraining run and one
fine-tuning seed, so the K R per-fold differences d_rk are not exchangeable: with
d_rk = delta + s_r + e_rk, s_r the seed's term (variance sigma_s^2) and e_rk the fold's, any
two folds' e correlated at rho through the data they share (Nadeau & Bengio 2003, "Inference
for the generalization error", Machine Learning 52: rho ~ n_test / (n_train + n_test)), the
mean over seeds of the seed means m_r has

    Var(mean d) = sigma_s^2 / R + sigma_e^2 (1 - rho) / (K R) + rho sigma_e^2
                = E[S_b^2] / R + (n_test / n_train) E[S_w^2]

with S_b^2 the sample variance of the seed means over seeds (R - 1 df) and S_w^2 the pooled
within-seed variance of the folds around their seed's mean (R (K - 1) df), since
E[S_b^2] = sigma_s^2 + sigma_e^2 (1 - rho) / K, E[S_w^2] = sigma_e^2 (1 - rho) and
rho / (1 - rho) = n_test / n_train. A two-stage (nested) variance: between seeds, and within a
seed across folds with the Nadeau–Bengio factor; df Welch–Satterthwaite over the two terms,
with the same guard on the seed term (R - 1 when the seeds carry all the variance, where the plain corrected resampled t with
K R - 1 df rejects a true null 18% of the time at 3 seeds x 5 folds). The estimate is the mean
over seeds of each seed's mean per-fold metric (the per-fold estimand of tables 6.1/6.2/B.2).

The test suite calibrates every rule by simulation (tests/stats/test_stats_calibration.py:
false positives at most 7% in every null cell; the README lists the rates as measured). Each
difference also carries its *detectable effect* (:mod:`medssl.stats.design`): the smallest
difference the design detects with 80% power at two-sided alpha 0.05, and the variance
components from which a planner predicts it for more seeds.

Replicates: every seed is an independent replicate of the whole procedure (with folds, a
seed is one repeat of K-fold CV, whose folds share one pretraining run). A verdict about a
method needs at least :data:`MIN_REPLICATES` per arm (:mod:`medssl.stats.verdicts`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy import stats

from medssl.errors import DataError
from medssl.stats.bootstrap import Interval, cluster_codes, resample_weights
from medssl.stats.design import Components, detectable_effect, satterthwaite
from medssl.stats.estimands import Predictions, replicate_values
from medssl.stats.paired import align

MIN_REPLICATES = 3
"""Independent replicates (seeds) per arm below which no method-level verdict is given."""

PAIRED = "paired two-level (per-seed differences x test patients)"
TWO_LEVEL = "two-level (runs x test patients)"
CORRECTED_CV = "two-stage CV (seeds; folds with the Nadeau-Bengio factor)"


@dataclass(frozen=True)
class MethodResult:
    """A method-level estimate (one arm) or difference (a - b) with its t-based interval.

    ``a`` and ``b`` are the arms' estimates (``b`` NaN for one arm). ``p_value`` tests
    ``estimate == 0`` (meaningful for differences). ``replicates``: independent replicates
    (seeds) per arm behind it; ``runs``: fine-tuning runs per arm (seeds x folds).
    ``components`` names the variance terms that make up ``se ** 2``; ``design`` holds them as
    functions of the seeds (:class:`medssl.stats.design.Components`) and ``detectable`` the
    smallest difference the design detects with 80% power at two-sided alpha 0.05 (NaN for one
    arm). ``n_undefined``: replicates (two-level) or runs (CV) left out because the metric was
    undefined for them in either arm (counted, never silent), ``n_undefined_replicates`` the
    seeds among them left out entirely; ``n_undefined_resamples``: bootstrap resamples whose
    value was undefined for some run (left out of the variance terms).
    """

    metric: str
    method: str
    a: float
    b: float
    interval: Interval
    se: float
    df: float
    p_value: float
    replicates: int
    runs: int
    components: Mapping[str, float] = field(default_factory=dict)
    n_undefined: int = 0
    n_undefined_resamples: int = 0
    n_undefined_replicates: int = 0
    detectable: float = float("nan")
    design: Components | None = None

    @property
    def estimate(self) -> float:
        return self.interval.estimate


def _t_result(
    metric: str,
    method: str,
    a: float,
    b: float,
    estimate: float,
    var: float,
    df: float,
    confidence: float,
    *,
    difference: bool = True,
    **kw,
) -> MethodResult:
    """The t interval and two-sided p-value of ``estimate`` with variance ``var`` on ``df``;
    for a ``difference``, its detectable effect too."""
    if not (np.isfinite(estimate) and np.isfinite(var)) or not df > 0:
        nan = float("nan")
        iv = Interval(float(estimate), nan, nan, confidence, kw.get("runs", 0))
        return MethodResult(metric, method, a, b, iv, nan, nan, nan, **kw)
    se = float(np.sqrt(max(var, 0.0)))
    mde = detectable_effect(se, df) if difference else float("nan")
    if se == 0.0:  # no variance at any level: the runs and images all agree
        p = 1.0 if estimate == 0 else 0.0
        iv = Interval(float(estimate), float(estimate), float(estimate), confidence, kw["runs"])
        return MethodResult(metric, method, a, b, iv, 0.0, float(df), p, detectable=mde, **kw)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(estimate) / se, df))
    iv = Interval(float(estimate), estimate - half, estimate + half, confidence, kw["runs"])
    return MethodResult(metric, method, a, b, iv, se, float(df), p, detectable=mde, **kw)


def _two_level_parts(
    pred: Predictions, metric: str, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point values (R,), bootstrap values (B, R) and replicate labels of one arm, under one
    shared stream of cluster resamples."""
    point, reps = replicate_values(pred, metric, np.ones((1, len(pred))))
    boot = np.concatenate(
        [
            replicate_values(pred, metric, w)[0]
            for w in resample_weights(pred.clusters, n_resamples, seed)
        ]
    )
    return point[0], boot, reps


def _tau2(boot_diff: np.ndarray) -> tuple[float, int]:
    """tau^2 from bootstrap differences (B, R) (module docstring) and the resamples left out
    because some run's value was undefined under them."""
    ok = ~np.isnan(boot_diff).any(axis=1)
    r = boot_diff.shape[1]
    d = boot_diff[ok]
    if len(d) < 2:
        return float("nan"), int((~ok).sum())
    v_mean = float(d.mean(axis=1).var(ddof=1))
    v_runs = float(d.var(axis=0, ddof=1).mean())
    return max(0.0, v_mean - v_runs / r) * r / (r - 1), int((~ok).sum())


class TwoLevelParts(NamedTuple):
    """What :func:`two_level_parts` computes: the estimate, each arm's, the variance
    components (None with fewer than two seeds), seeds left out as undefined, resamples left
    out of tau^2."""

    estimate: float
    a: float
    b: float
    design: Components | None
    n_undefined: int
    n_undefined_resamples: int


def two_level_parts(
    point_a: np.ndarray,
    point_b: np.ndarray,
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    n_clusters: int,
    *,
    paired: bool = True,
) -> TwoLevelParts:
    """The two-level difference's arithmetic (module docstring): each arm's metric per seed
    ``point_x`` (R,), paired by position (seed r of a with seed r of b), and under B shared
    cluster resamples of the test patients ``boot_x`` (B, R); ``n_clusters`` test patients. A
    seed whose metric is undefined in either arm is left out of both and counted."""
    pa, pb = np.asarray(point_a, float), np.asarray(point_b, float)
    keep = ~(np.isnan(pa) | np.isnan(pb))
    n_undef = int((~keep).sum())
    pa, pb = pa[keep], pb[keep]
    r = int(keep.sum())
    if r == 0:
        nan = float("nan")
        return TwoLevelParts(nan, nan, nan, None, n_undef, 0)
    est, ea, eb = float(np.mean(pa - pb)), float(np.mean(pa)), float(np.mean(pb))
    if r < 2:
        return TwoLevelParts(est, ea, eb, None, n_undef, 0)
    ba, bb = np.asarray(boot_a, float)[:, keep], np.asarray(boot_b, float)[:, keep]
    tau2, n_bad = _tau2(ba - bb)
    if paired:
        per_seed: tuple[float, ...] = (float(np.var(pa - pb, ddof=1)),)
    else:
        per_seed = (float(np.var(pa, ddof=1)), float(np.var(pb, ddof=1)))
    design = Components(per_seed, tau2, float(n_clusters - 1), False, r, guarded=paired)
    return TwoLevelParts(est, ea, eb, design, n_undef, n_bad)


def method_difference(
    point_a: np.ndarray,
    point_b: np.ndarray,
    boot_a: np.ndarray,
    boot_b: np.ndarray,
    n_clusters: int,
    *,
    metric: str = "",
    paired: bool = True,
    confidence: float = 0.95,
) -> MethodResult:
    """The two-level difference of :func:`two_level_parts` with its interval, p-value and
    detectable effect. Fewer than two seeds give an estimate without an interval."""
    parts = two_level_parts(point_a, point_b, boot_a, boot_b, n_clusters, paired=paired)
    design = parts.design
    r = len(point_a) - parts.n_undefined
    name = PAIRED if paired else TWO_LEVEL
    common = dict(
        replicates=r, runs=r, n_undefined=parts.n_undefined,
        n_undefined_replicates=parts.n_undefined,
    )  # fmt: skip
    if design is None:
        nan = float("nan")
        return _t_result(metric, name, parts.a, parts.b, parts.estimate, nan, nan, confidence,
                         **common)  # fmt: skip
    if paired:
        comps = {"seeds (paired differences)": design.per_seed[0] / r}
    else:
        comps = {"runs_a": design.per_seed[0] / r, "runs_b": design.per_seed[1] / r}
    comps["test_patients"] = design.floor
    return _t_result(
        metric, name, parts.a, parts.b, parts.estimate, design.variance(r), design.df(r),
        confidence, components=comps, n_undefined_resamples=parts.n_undefined_resamples,
        design=design, **common,
    )  # fmt: skip


def two_level_comparison(
    a: Predictions,
    b: Predictions,
    metric: str,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    paired: bool = True,
) -> MethodResult:
    """Method-level difference ``metric(a) - metric(b)`` over seeds on one split (module
    docstring), paired over seeds unless ``paired=False``. Rows are paired on (replicate, test
    image id), as the fixed-network comparison pairs them; a replicate whose metric is
    undefined in either arm is left out of both and counted (:func:`method_difference`)."""
    a, b, _ = align(a, b)
    pa, ba, reps = _two_level_parts(a, metric, n_resamples, seed)
    pb, bb, reps_b = _two_level_parts(b, metric, n_resamples, seed)
    if list(reps) != list(reps_b):  # align pairs rows, so this means a replicate lost all rows
        raise DataError("method-level comparison: the two models have different seeds")
    _, n_patients = cluster_codes(a.clusters)
    return method_difference(
        pa, pb, ba, bb, n_patients, metric=metric, paired=paired, confidence=confidence
    )


def two_level_interval(
    pred: Predictions,
    metric: str,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MethodResult:
    """Method-level interval of one arm's metric over seeds on one split: Var = s^2 / R +
    tau^2, with tau^2 the arm's own test-sampling variance (module docstring)."""
    point, boot, _ = _two_level_parts(pred, metric, n_resamples, seed)
    keep = ~np.isnan(point)
    point, boot = point[keep], boot[:, keep]
    r = int(keep.sum())
    est = float(point.mean()) if r else float("nan")
    n_undef = int((~keep).sum())
    common = dict(replicates=r, runs=r, n_undefined=n_undef, n_undefined_replicates=n_undef)
    nan = float("nan")
    if r < 2:
        return _t_result(
            metric, TWO_LEVEL, est, nan, est, nan, nan, confidence, difference=False, **common
        )
    tau2, n_bad = _tau2(boot)
    s = float(np.var(point, ddof=1)) / r
    _, n_patients = cluster_codes(pred.clusters)
    df = satterthwaite([(s, r - 1), (tau2, n_patients - 1)])
    return _t_result(
        metric, TWO_LEVEL, est, nan, est, s + tau2, df, confidence, difference=False,
        components={"runs": s, "test_patients": tau2}, n_undefined_resamples=n_bad, **common,
    )  # fmt: skip


def two_stage(
    values: Mapping[tuple[int, int], float], n_train: float, n_test: float
) -> tuple[float, Components | None, int, int, int]:
    """(estimate, components, seeds, defined runs, undefined runs) of per-fold ``values``
    ``{(seed, fold): value}`` under the two-stage variance (module docstring); components None
    with fewer than two seeds or no within-seed degrees of freedom."""
    by_seed: dict[int, list[float]] = {}
    n_undef = 0
    for (seed, _), v in sorted(values.items()):
        if np.isnan(v):
            n_undef += 1
            continue
        by_seed.setdefault(seed, []).append(float(v))
    groups = [np.array(v) for v in by_seed.values()]
    r, m = len(groups), sum(len(g) for g in groups)
    if r == 0:
        return float("nan"), None, 0, 0, n_undef
    means = np.array([g.mean() for g in groups])
    est = float(means.mean())
    df_w = sum(len(g) - 1 for g in groups)
    if r < 2 or df_w < 1 or not n_train > 0:
        return est, None, r, m, n_undef
    s_b2 = float(means.var(ddof=1))
    s_w2 = float(sum(((g - g.mean()) ** 2).sum() for g in groups) / df_w)
    floor = float(n_test / n_train) * s_w2
    return est, Components((s_b2,), floor, df_w / r, True, r), r, m, n_undef


def corrected_cv_interval(
    values: Mapping[tuple[int, int], float],
    *,
    n_train: float,
    n_test: float,
    metric: str = "",
    confidence: float = 0.95,
    difference: bool = False,
) -> MethodResult:
    """Mean of per-fold values ``{(seed, fold): value}`` over seeds with the two-stage variance
    S_b^2 / R + (n_test / n_train) S_w^2 (module docstring). Undefined (NaN) values are left out
    and counted; fewer than two seeds, or no seed with two defined folds, give the estimate
    without an interval (one seed cannot tell its pretraining run from the method). ``b`` is
    NaN."""
    est, design, r, m, n_undef = two_stage(values, n_train, n_test)
    seeds_all = {k[0] for k in values}
    common = dict(
        replicates=r, runs=m, n_undefined=n_undef, n_undefined_replicates=len(seeds_all) - r
    )
    nan = float("nan")
    if design is None:
        return _t_result(
            metric, CORRECTED_CV, est, nan, est, nan, nan, confidence, difference=difference,
            design=None, **common,
        )  # fmt: skip
    comps = {"seeds": design.per_seed[0] / r, "folds (Nadeau-Bengio)": design.floor}
    return _t_result(
        metric, CORRECTED_CV, est, nan, est, design.variance(r), design.df(r), confidence,
        difference=difference, components=comps, design=design, **common,
    )  # fmt: skip


def corrected_cv_comparison(
    a: Mapping[tuple[int, int], float],
    b: Mapping[tuple[int, int], float],
    *,
    n_train: float,
    n_test: float,
    metric: str = "",
    confidence: float = 0.95,
) -> MethodResult:
    """Two-stage test of the per-fold differences a - b, paired on (seed, fold); folds present
    in only one arm are an error (the folds must be shared). A fold undefined in either arm is
    left out and counted."""
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise DataError(
            f"cross-validated comparison: folds {only[:6]} are in only one arm; "
            "both arms must be fine-tuned on the same (seed, fold) splits"
        )
    diffs = {k: a[k] - b[k] for k in a}
    res = corrected_cv_interval(
        diffs, n_train=n_train, n_test=n_test, metric=metric, confidence=confidence,
        difference=True,
    )  # fmt: skip
    ok = [k for k in a if not (np.isnan(a[k]) or np.isnan(b[k]))]

    def seed_mean(x: Mapping[tuple[int, int], float]) -> float:
        seeds = sorted({k[0] for k in ok})
        if not seeds:
            return float("nan")
        return float(np.mean([np.mean([x[k] for k in ok if k[0] == s]) for s in seeds]))

    return dataclasses.replace(res, a=seed_mean(a), b=seed_mean(b))
