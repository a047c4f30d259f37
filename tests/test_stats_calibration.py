"""Calibration of the method-level rule by simulation (pure numpy, seconds).

Two arms fine-tuned with 5 seeds each are tested on the same 80 images of 3 classes. Each
run is a network whose skill (its accuracy over the population of images) varies from seed to
seed with SD ``sd``; images differ in difficulty, shared by every network (a Gaussian copula:
run r gets image i right when Phi(sqrt(rho) g_i + sqrt(1 - rho) h_ri) < skill_r), so that two
runs of one procedure disagree on about one test image in five (rho = 0.75); a wrong answer
is one of the two other classes at random. Every simulation draws new images and new runs.

The rule under test is the report's: a method-level difference is supported when its 95% CI
(:func:`medssl.stats.method.two_level_comparison`) excludes 0, i.e. p < 0.05 (one comparison:
Holm changes nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from medssl.stats.estimands import Predictions
from medssl.stats.method import two_level_comparison

N_IMAGES, SEEDS, N_SIM, ACCURACY, RHO = 80, 5, 300, 0.70, 0.75


def _arm(skills: np.ndarray, y: np.ndarray, g: np.ndarray, rng) -> Predictions:
    """Predictions of one arm: one run per skill, all on the images (labels y, difficulty g)."""
    n = len(y)
    z = np.sqrt(RHO) * g + np.sqrt(1 - RHO) * rng.standard_normal((len(skills), n))
    correct = sps.norm.cdf(z) < skills[:, None]  # (R, n)
    wrong = (y + rng.integers(1, 3, (len(skills), n))) % 3
    ids = np.array([f"img{i}" for i in range(n)])
    return Predictions(
        ids=np.tile(ids, len(skills)),
        clusters=np.tile(ids, len(skills)),
        replicate=np.repeat(np.arange(len(skills)), n),
        y_true=np.tile(y, len(skills)),
        y_pred=np.where(correct, y, wrong).ravel(),
    )


def rejection_rate(gain: float, sd: float, *, seed: int, n_sim: int = N_SIM) -> float:
    """Fraction of simulated benchmarks where the rule declares a difference."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_sim):
        y = rng.integers(0, 3, N_IMAGES)
        g = rng.standard_normal(N_IMAGES)
        skill_a = np.clip(ACCURACY + gain + sd * rng.standard_normal(SEEDS), 0.01, 0.99)
        skill_b = np.clip(ACCURACY + sd * rng.standard_normal(SEEDS), 0.01, 0.99)
        res = two_level_comparison(
            _arm(skill_a, y, g, rng), _arm(skill_b, y, g, rng), "accuracy",
            n_resamples=400, seed=int(rng.integers(1 << 30)),
        )  # fmt: skip
        hits += bool(res.interval.low > 0 or res.interval.high < 0)
    return hits / n_sim


@pytest.mark.parametrize("sd", [0.03, 0.08])
def test_same_procedure_is_declared_different_at_most_7_percent(sd):
    assert rejection_rate(0.0, sd, seed=int(sd * 100)) <= 0.07


def test_a_gain_of_ten_points_is_found_at_seed_sd_003():
    assert rejection_rate(0.10, 0.03, seed=11) >= 0.80
