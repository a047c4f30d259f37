"""Method-level inference: does one training *procedure* beat another, over training runs?

The fixed-network comparison (:mod:`medssl.stats.paired`) resamples the test patients of the
networks at hand, so its interval describes *these trained networks*. A claim about a method
("SimCLR pretraining beats random init on US1") must also carry the variance between training
runs — pretraining seed, fine-tuning seed, the training set of a cross-validation fold — since
a second set of runs gives other networks. Two designs, two estimators, one result type:

**Seeds on one split** (:func:`two_level_comparison`, :func:`two_level_interval`): R runs per
arm (one per seed), every run tested on the same test images. The estimate is the mean over
runs of each run's metric, D = mean_r (a_r - b_r). Runs and test images are crossed; under
the random-effects model metric(run r) = mu + u_r + (test-set term) + (run x image term), the
variance of D has two levels (two-way random effects, method of moments: Searle, Casella &
McCulloch 1992, *Variance Components*, ch. 4; the design Bouthillier et al. 2021, "Accounting
for variance in machine learning benchmarks", MLSys, ask benchmarks to account for):

    Var(D) = (s_a^2 + s_b^2) / R + tau^2

- ``s_a^2``, ``s_b^2``: sample variances over runs of each arm's test metric (between-run
  variance; it includes the run x image term). The runs of the two arms are *not* assumed
  correlated: the benchmark gives both the same seed (same fine-tuning order and head
  initialisation), and any positive correlation that induces only makes this conservative,
  while it buys up to 2(R - 1) degrees of freedom instead of R - 1.
- ``tau^2``: the test-sampling variance of the two procedures' difference, from the cluster
  (patient) bootstrap that applies one resample of test patients to every run of both arms.
  With V_B the bootstrap variance of D and V_r that of run r's difference,
  tau^2 = max(0, V_B - mean_r V_r / R) * R / (R - 1): V_B holds tau^2 (R - 1) / R plus the
  run x image term / R, each V_r holds tau^2 plus that term, so the difference isolates tau^2.

The interval is D ± t_{df} sqrt(Var(D)) with Welch–Satterthwaite degrees of freedom (runs:
R - 1 per arm; tau^2: patients - 1) and the p-value is the two-sided t test of D = 0. The test
suite calibrates it by simulation (two identical procedures with seed-level skill variance:
false positives at most 7%; power for a 0.10 accuracy gain at skill SD 0.03: at least 80%).

**Repeated K-fold cross-validation** (:func:`corrected_cv_comparison`,
:func:`corrected_cv_interval`): the corrected repeated k-fold t test (Nadeau & Bengio 2003,
"Inference for the generalization error", Machine Learning 52; Bouckaert & Frank 2004,
"Evaluating the replicability of significance tests for comparing learning algorithms",
PAKDD). Per-fold test metrics of the two arms are paired by (repeat, fold); with the K·R
differences d, their mean and sample variance s^2,

    Var(mean d) = (1 / (K R) + n_test / n_train) s^2,   df = K R - 1.

The n_test / n_train term corrects for the training sets that the folds share (the plain
t test, 1 / (K R), is too narrow by x1.6 at 1x5-fold and x3 at 5x5). The estimand is the mean
of per-fold metrics, the one tables 6.1/6.2/B.2 show with folds.

Replicates: every seed is an independent replicate of the whole procedure (with folds, a
seed is one repeat of K-fold CV, whose folds share one pretraining run). A verdict about a
method needs at least :data:`MIN_REPLICATES` per arm (:mod:`medssl.stats.verdicts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from medssl.errors import DataError
from medssl.stats.bootstrap import Interval, cluster_codes, resample_weights
from medssl.stats.estimands import Predictions, replicate_values
from medssl.stats.paired import align

MIN_REPLICATES = 3
"""Independent replicates (seeds) per arm below which no method-level verdict is given."""

TWO_LEVEL = "two-level (runs x test patients)"
CORRECTED_CV = "corrected repeated k-fold t (Nadeau & Bengio 2003)"


@dataclass(frozen=True)
class MethodResult:
    """A method-level estimate (one arm) or difference (a - b) with its t-based interval.

    ``a`` and ``b`` are the arms' estimates (``b`` NaN for one arm). ``p_value`` tests
    ``estimate == 0`` (meaningful for differences). ``replicates``: independent replicates
    (seeds) per arm behind it; ``runs``: fine-tuning runs per arm (seeds x folds).
    ``components`` names the variance terms that make up ``se ** 2``. ``n_undefined``:
    replicates (two-level) or runs (CV) left out because the metric was undefined for them
    (counted, never silent); ``n_undefined_resamples``: bootstrap resamples whose value was
    undefined for some run (left out of the variance terms).
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
    **kw,
) -> MethodResult:
    """The t interval and two-sided p-value of ``estimate`` with variance ``var`` on ``df``."""
    if not (np.isfinite(estimate) and np.isfinite(var)) or not df > 0:
        nan = float("nan")
        iv = Interval(float(estimate), nan, nan, confidence, kw.get("runs", 0))
        return MethodResult(metric, method, a, b, iv, nan, nan, nan, **kw)
    se = float(np.sqrt(max(var, 0.0)))
    if se == 0.0:  # no variance at any level: the runs and images all agree
        p = 1.0 if estimate == 0 else 0.0
        iv = Interval(float(estimate), float(estimate), float(estimate), confidence, kw["runs"])
        return MethodResult(metric, method, a, b, iv, 0.0, float(df), p, **kw)
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(estimate) / se, df))
    iv = Interval(float(estimate), estimate - half, estimate + half, confidence, kw["runs"])
    return MethodResult(metric, method, a, b, iv, se, float(df), p, **kw)


def _satterthwaite(terms: list[tuple[float, float]]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of variance terms (value, df)."""
    total = sum(v for v, _ in terms)
    den = sum(v * v / d for v, d in terms if d > 0 and v > 0)
    return float(total * total / den) if den > 0 else float("inf")


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


def two_level_comparison(
    a: Predictions,
    b: Predictions,
    metric: str,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MethodResult:
    """Method-level difference ``metric(a) - metric(b)`` over seeds on one split (module
    docstring). Rows are paired on (replicate, test image id), as the fixed-network
    comparison pairs them; a replicate whose metric is undefined in either arm is left out of
    both and counted. Fewer than two replicates give an estimate without an interval."""
    a, b, _ = align(a, b)
    pa, ba, reps = _two_level_parts(a, metric, n_resamples, seed)
    pb, bb, reps_b = _two_level_parts(b, metric, n_resamples, seed)
    if list(reps) != list(reps_b):  # align pairs rows, so this means a replicate lost all rows
        raise DataError("method-level comparison: the two models have different seeds")
    keep = ~(np.isnan(pa) | np.isnan(pb))
    n_undef = int((~keep).sum())
    pa, pb, ba, bb = pa[keep], pb[keep], ba[:, keep], bb[:, keep]
    r = int(keep.sum())
    est = float(np.mean(pa - pb)) if r else float("nan")
    common = dict(replicates=r, runs=r, n_undefined=n_undef)
    ea, eb = (float(np.mean(x)) if r else float("nan") for x in (pa, pb))
    if r < 2:
        return _t_result(
            metric, TWO_LEVEL, ea, eb, est, float("nan"), float("nan"), confidence, **common
        )
    tau2, n_bad = _tau2(ba - bb)
    sa, sb = float(np.var(pa, ddof=1)) / r, float(np.var(pb, ddof=1)) / r
    _, n_patients = cluster_codes(a.clusters)
    var = sa + sb + tau2
    df = _satterthwaite([(sa, r - 1), (sb, r - 1), (tau2, n_patients - 1)])
    comps = {"runs_a": sa, "runs_b": sb, "test_patients": tau2}
    return _t_result(
        metric, TWO_LEVEL, ea, eb, est, var, df, confidence,
        components=comps, n_undefined_resamples=n_bad, **common,
    )  # fmt: skip


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
    common = dict(replicates=r, runs=r, n_undefined=int((~keep).sum()))
    if r < 2:
        return _t_result(
            metric,
            TWO_LEVEL,
            est,
            float("nan"),
            est,
            float("nan"),
            float("nan"),
            confidence,
            **common,
        )
    tau2, n_bad = _tau2(boot)
    s = float(np.var(point, ddof=1)) / r
    _, n_patients = cluster_codes(pred.clusters)
    df = _satterthwaite([(s, r - 1), (tau2, n_patients - 1)])
    return _t_result(
        metric, TWO_LEVEL, est, float("nan"), est, s + tau2, df, confidence,
        components={"runs": s, "test_patients": tau2}, n_undefined_resamples=n_bad, **common,
    )  # fmt: skip


def corrected_cv_interval(
    values: Mapping[tuple[int, int], float],
    *,
    n_train: float,
    n_test: float,
    metric: str = "",
    confidence: float = 0.95,
) -> MethodResult:
    """Mean of per-fold values ``{(repeat, fold): value}`` with the Nadeau–Bengio corrected
    variance (1 / (K R) + n_test / n_train) s^2 and K R - 1 degrees of freedom. Undefined
    (NaN) values are left out and counted; ``b`` is NaN."""
    v = np.array([x for x in values.values()], dtype=float)
    repeats = {k[0] for k, x in values.items() if not np.isnan(x)}
    n_undef = int(np.isnan(v).sum())
    v = v[~np.isnan(v)]
    m = len(v)
    est = float(v.mean()) if m else float("nan")
    common = dict(replicates=len(repeats), runs=m, n_undefined=n_undef)
    if m < 2 or not n_train > 0:
        return _t_result(
            metric,
            CORRECTED_CV,
            est,
            float("nan"),
            est,
            float("nan"),
            float("nan"),
            confidence,
            **common,
        )
    factor = 1.0 / m + n_test / n_train
    var = factor * float(v.var(ddof=1))
    return _t_result(
        metric, CORRECTED_CV, est, float("nan"), est, var, m - 1, confidence,
        components={"folds (corrected)": var}, **common,
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
    """Corrected repeated k-fold t test of the per-fold differences a - b, paired on
    (repeat, fold); folds present in only one arm are an error (the folds must be shared)."""
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise DataError(
            f"cross-validated comparison: folds {only[:6]} are in only one arm; "
            "both arms must be fine-tuned on the same (seed, fold) splits"
        )
    diffs = {k: a[k] - b[k] for k in a}
    res = corrected_cv_interval(
        diffs, n_train=n_train, n_test=n_test, metric=metric, confidence=confidence
    )
    ok = [k for k in a if not (np.isnan(a[k]) or np.isnan(b[k]))]
    ea = float(np.mean([a[k] for k in ok])) if ok else float("nan")
    eb = float(np.mean([b[k] for k in ok])) if ok else float("nan")
    return MethodResult(
        metric, CORRECTED_CV, ea, eb, res.interval, res.se, res.df, res.p_value,
        res.replicates, res.runs, res.components, res.n_undefined,
    )  # fmt: skip
