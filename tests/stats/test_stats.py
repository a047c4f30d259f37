"""Known-answer tests of the statistics (bootstrap, paired comparison, Holm, t-interval)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, matthews_corrcoef

from medssl.errors import DataError
from medssl.metrics import classification as cls_metrics
from medssl.stats.bootstrap import bootstrap_ci, mean_ci, metric_ci
from medssl.stats.estimands import Predictions, confusion, statistic
from medssl.stats.multiple import holm
from medssl.stats.paired import paired_comparison
from medssl.stats.replicates import t_interval
from medssl.stats.verdicts import fixed_network_verdict


def _cls(y_true, y_pred, *, seeds=1, patients=None) -> Predictions:
    y_true = np.tile(np.asarray(y_true), seeds)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 1:
        y_pred = np.tile(y_pred, seeds)
    n = len(y_true) // seeds
    ids = np.tile(np.array([f"i{i}" for i in range(n)]), seeds)
    pats = ids if patients is None else np.tile(np.asarray(patients), seeds)
    return Predictions(
        ids=ids,
        clusters=pats,
        replicate=np.repeat(np.arange(seeds), n),
        y_true=y_true,
        y_pred=y_pred,
    )


def _noisy(y, accuracy, rng):
    wrong = rng.random(len(y)) > accuracy
    return np.where(wrong, (y + rng.integers(1, 3, len(y))) % 3, y)


# --- weighted metrics equal scikit-learn on the explicitly resampled rows ---------------------


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("mcc", matthews_corrcoef),
        ("balanced_accuracy", balanced_accuracy_score),
        ("f1_weighted", lambda t, p: f1_score(t, p, average="weighted", zero_division=0)),
        ("f1_macro", lambda t, p: f1_score(t, p, average="macro", zero_division=0)),
        ("accuracy", accuracy_score),
    ],
)
def test_weighted_set_metrics_match_sklearn_on_repeated_rows(name, ref):
    rng = np.random.default_rng(1)
    y = np.concatenate([np.arange(3), rng.integers(0, 3, 37)])
    pred = _cls(y, _noisy(y, 0.7, rng))
    w = rng.integers(1, 3, size=(4, 40)).astype(float)  # every class stays present
    got = statistic(pred, name, w)
    for b in range(4):
        rows = np.repeat(np.arange(40), w[b].astype(int))
        assert got[b] == pytest.approx(ref(pred.y_true[rows], pred.y_pred[rows]), abs=1e-12)


@pytest.mark.parametrize(
    "name", ["mcc", "balanced_accuracy", "f1_weighted", "f1_macro", "accuracy"]
)
def test_weighted_set_metrics_match_project_metrics_including_undefined(name):
    reference = getattr(cls_metrics, name)
    rng = np.random.default_rng(3)
    cases = [
        (rng.integers(0, 3, 30), rng.integers(0, 3, 30)),
        (np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0])),  # malignant absent
        (np.array([0, 1, 2, 1]), np.array([1, 1, 1, 1])),  # constant prediction
        (np.array([2, 2, 2]), np.array([2, 2, 2])),  # single class
    ]
    for y, p in cases:
        got = statistic(_cls(y, p), name, np.ones((1, len(y))))[0]
        want = reference(cls_metrics.confusion_matrix(y, p))
        assert got == pytest.approx(want, nan_ok=True, abs=1e-12), (y, p)


def test_confusion_counts_hand_case():
    c = confusion(np.array([0, 0, 2]), np.array([0, 1, 2]), np.ones((1, 3)))
    assert c[0].tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]


def test_statistic_averages_seeds_and_skips_nan_images():
    pred = Predictions(
        ids=np.array(["a", "b", "a", "b"]),
        clusters=np.array(["a", "b", "a", "b"]),
        replicate=np.array([0, 0, 1, 1]),
        values={"dice": np.array([0.2, np.nan, 0.6, 1.0])},
    )
    # seed 0: 0.2 (b undefined); seed 1: 0.8 -> mean 0.5
    assert statistic(pred, "dice", np.ones((1, 4)))[0] == pytest.approx(0.5)


def test_unknown_metric_names_the_available_ones():
    with pytest.raises(DataError, match="available"):
        statistic(_cls([0, 1], [0, 1]), "dice", np.ones((1, 2)))


# --- bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_mean_ci_close_to_normal_theory_on_large_sample():
    x = np.random.default_rng(0).normal(0.7, 0.2, 4000)
    iv = mean_ci(x, n_resamples=2000, seed=3)
    half = sps.norm.ppf(0.975) * x.std(ddof=1) / np.sqrt(len(x))
    assert iv.estimate == pytest.approx(x.mean())
    assert iv.low == pytest.approx(x.mean() - half, abs=0.15 * half)
    assert iv.high == pytest.approx(x.mean() + half, abs=0.15 * half)


def test_bootstrap_is_reproducible_with_a_fixed_seed():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 60)
    pred = _cls(y, _noisy(y, 0.6, rng))
    a = metric_ci(pred, "mcc", n_resamples=300, seed=7)
    b = metric_ci(pred, "mcc", n_resamples=300, seed=7)
    assert a == b
    assert a.low < a.estimate < a.high
    assert a.n == 60


def test_patient_clustering_widens_the_ci_of_duplicated_images():
    rng = np.random.default_rng(4)
    x = rng.normal(0.6, 0.2, 150)
    dup = np.repeat(x, 4)  # every patient has 4 identical images
    ids = np.arange(len(dup)).astype(str)
    patients = np.repeat(np.arange(150), 4).astype(str)

    def fn(w):
        return (w @ dup) / w.sum(axis=1)

    naive = bootstrap_ci(fn, ids, n_resamples=1000, seed=0)
    clustered = bootstrap_ci(fn, patients, n_resamples=1000, seed=0)
    ratio = (clustered.high - clustered.low) / (naive.high - naive.low)
    assert ratio == pytest.approx(2.0, rel=0.2)  # sqrt(4) times wider


def test_seeds_share_the_patient_resample():
    # Two seeds with identical predictions: same CI as one seed (the seeds are not extra images).
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 50)
    p = _noisy(y, 0.7, rng)
    one = metric_ci(_cls(y, p), "balanced_accuracy", n_resamples=300, seed=1)
    two = metric_ci(_cls(y, p, seeds=2), "balanced_accuracy", n_resamples=300, seed=1)
    assert (two.low, two.high) == pytest.approx((one.low, one.high))


# --- paired comparison -------------------------------------------------------------------------


def test_identical_models_ci_covers_zero_and_p_is_one():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, 80)
    a = _cls(y, _noisy(y, 0.7, rng), seeds=2)
    c = paired_comparison(a, a, "mcc", n_resamples=300, n_permutations=300)
    assert c.difference.estimate == 0.0
    assert c.difference.covers(0.0)
    assert c.p_value == 1.0
    assert c.n_images == 80 and c.n_replicates == 2 and c.n_unpaired == 0


def test_undefined_difference_has_no_p_value():
    # No malignant image among the test images: balanced accuracy (mean recall over the three
    # classes) is undefined for both models, so the difference and its p-value are undefined,
    # not "p = 1".
    y = np.arange(60) % 2
    a = _cls(y, np.zeros(60, int))
    b = _cls(y, y)
    c = paired_comparison(a, b, "balanced_accuracy", n_resamples=100, n_permutations=100)
    assert np.isnan(c.difference.estimate) and np.isnan(c.p_value)
    assert "undefined" in fixed_network_verdict(c.difference, c.p_value)


def test_equally_good_models_are_within_noise():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 3, 120)
    a = _cls(y, _noisy(y, 0.7, rng))
    b = _cls(y, _noisy(y, 0.7, rng))
    c = paired_comparison(a, b, "mcc", n_resamples=500, n_permutations=500)
    assert c.difference.covers(0.0)
    assert c.p_value > 0.05
    assert fixed_network_verdict(c.difference, c.p_value) == "within noise"


def test_clearly_better_model_ci_excludes_zero_and_p_is_small():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 150)
    good = _cls(y, _noisy(y, 0.95, rng), seeds=1)
    bad = _cls(y, _noisy(y, 0.5, rng), seeds=1)
    c = paired_comparison(good, bad, "balanced_accuracy", n_resamples=500, n_permutations=500)
    assert c.difference.estimate > 0.3
    assert c.difference.low > 0
    assert c.p_value == pytest.approx(1 / 501)  # no permutation reaches the observed difference
    assert fixed_network_verdict(c.difference, c.p_value) == "supported: pretrained better"
    worse = paired_comparison(bad, good, "balanced_accuracy", n_resamples=200, n_permutations=200)
    assert worse.difference.high < 0
    assert fixed_network_verdict(worse.difference, worse.p_value) == "supported: pretrained worse"


def test_lower_is_better_metrics_flip_the_verdict_direction():
    ids = np.arange(60).astype(str)
    a = Predictions(
        ids=ids, clusters=ids, replicate=np.zeros(60, int), values={"hd": np.full(60, 2.0)}
    )
    b = Predictions(
        ids=ids, clusters=ids, replicate=np.zeros(60, int), values={"hd": np.full(60, 9.0)}
    )
    c = paired_comparison(a, b, "hd", n_resamples=100, n_permutations=100)
    assert (
        fixed_network_verdict(c.difference, c.p_value, lower_is_better=True)
        == "supported: pretrained better"
    )


def test_paired_per_image_metric_uses_only_shared_images():
    ids_a = np.array(["x", "y", "z"])
    a = Predictions(
        ids=ids_a,
        clusters=ids_a,
        replicate=np.zeros(3, int),
        values={"dice": np.array([0.9, 0.8, 0.7])},
    )
    ids_b = np.array(["y", "z", "w"])
    b = Predictions(
        ids=ids_b,
        clusters=ids_b,
        replicate=np.zeros(3, int),
        values={"dice": np.array([0.5, 0.6, 0.1])},
    )
    c = paired_comparison(a, b, "dice", n_resamples=50, n_permutations=50)
    assert c.n_unpaired == 2
    assert c.a == pytest.approx(0.75) and c.b == pytest.approx(0.55)
    assert c.difference.estimate == pytest.approx(0.2)


def test_duplicate_image_in_one_seed_is_an_error():
    ids = np.array(["x", "x"])
    a = Predictions(ids=ids, clusters=ids, replicate=np.zeros(2, int), values={"dice": np.ones(2)})
    with pytest.raises(DataError, match="twice"):
        paired_comparison(a, a, "dice", n_resamples=10, n_permutations=10)


# --- Holm and the t-interval -------------------------------------------------------------------


def test_holm_hand_computed():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    got = holm([0.01, 0.04, 0.03, 0.005])
    assert got == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_nan():
    got = holm([0.5, float("nan"), 0.4])
    assert got[0] == pytest.approx(0.8) and got[2] == pytest.approx(0.8)
    assert np.isnan(got[1])
    assert holm([0.9, 0.8]).tolist() == [1.0, 1.0]


def test_t_interval_known_answer():
    iv = t_interval([1.0, 2.0, 3.0, float("nan")])
    half = sps.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert iv.estimate == 2.0 and iv.n == 3
    assert (iv.low, iv.high) == pytest.approx((2 - half, 2 + half))
    single = t_interval([0.4])
    assert single.estimate == 0.4 and np.isnan(single.low)
