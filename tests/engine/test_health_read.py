"""The health read (engine.health_read): known answers, its reading of separable and of noise
features, the patient groups kept out of a query's neighbours, and "beat random init" as
"better by more than 2 SE" (engine.health)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medssl.engine.health import pretraining_health
from medssl.engine.health_read import (
    SE_MARGIN,
    balanced_accuracy,
    loo_knn_predictions,
    paired_gain,
    read_features,
    reading,
)


def _clusters(n_per_class: int, spread: float, seed: int = 0):
    """Three classes around orthogonal directions of a 64-d space (spread: noise SD)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class)
    centres = np.eye(64)[:3] * 5.0
    x = centres[labels] + spread * rng.normal(size=(len(labels), 64))
    groups = np.array([f"p{i}" for i in range(len(labels))])
    return torch.tensor(x, dtype=torch.float32), labels, groups


def test_balanced_accuracy_and_its_se_known_answer():
    # class 0: 3 of 4 right, class 1: 1 of 2 right -> BA = (0.75 + 0.5) / 2
    values = np.array([1, 1, 1, 0, 1, 0], dtype=float)
    labels = np.array([0, 0, 0, 0, 1, 1])
    bacc, se = balanced_accuracy(values, labels)
    assert bacc == pytest.approx(0.625)
    # var_0 = 0.25 (ddof 1: 0.75 * 0.25 * 4 / 3), var_1 = 0.5 (ddof 1)
    expected = math.sqrt((0.25 / 4) + (0.5 / 2)) / 2
    assert se == pytest.approx(expected)
    nan, nan_se = balanced_accuracy(np.zeros(0), np.zeros(0, dtype=int))
    assert math.isnan(nan) and math.isnan(nan_se)


def test_balanced_accuracy_reads_chance_for_a_majority_predictor():
    labels = np.array([0] * 90 + [1] * 5 + [2] * 5)
    always_zero = labels == 0  # right on every image of class 0 only
    assert reading(always_zero, labels).bacc == pytest.approx(1 / 3)


def test_separable_features_read_near_one_with_a_small_se():
    x, y, g = _clusters(60, spread=0.3)
    read = read_features(x, y, g, k=10)
    for r in (read.knn, read.linear):
        assert r.bacc > 0.98 and r.se < 0.02, r


def test_noise_features_read_chance():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 80)
    x = torch.tensor(rng.normal(size=(len(y), 64)), dtype=torch.float32)
    g = np.array([str(i) for i in range(len(y))])
    read = read_features(x, y, g, k=10)
    for r in (read.knn, read.linear):
        # chance is 1/3; the reading stays within 3 of its SEs of it
        assert abs(r.bacc - 1 / 3) < 3 * r.se + 0.02, r
        assert 0.02 < r.se < 0.06


def test_an_images_own_group_never_votes_for_it():
    """Twins share features and a group, labels are random: with the twin excluded the kNN
    reads chance; with each image its own group the twin votes and it reads perfectly."""
    rng = np.random.default_rng(2)
    n = 120
    base = rng.normal(size=(n, 32))
    x = torch.tensor(np.repeat(base, 2, axis=0), dtype=torch.float32)
    y = np.repeat(rng.integers(0, 3, n), 2)
    twins = np.repeat(np.arange(n), 2).astype(str)
    alone = np.arange(2 * n).astype(str)
    grouped = reading(loo_knn_predictions(x, y, twins, k=1) == y, y)
    leaked = reading(loo_knn_predictions(x, y, alone, k=1) == y, y)
    assert leaked.bacc == pytest.approx(1.0)
    assert abs(grouped.bacc - 1 / 3) < 3 * grouped.se + 0.02


def test_paired_gain_of_an_encoder_and_itself_is_zero_with_zero_se():
    x, y, g = _clusters(30, spread=3.0)
    read = read_features(x, y, g)
    knn, lin = read.gains(read, y)
    assert (knn.gain, knn.se, lin.gain, lin.se) == (0.0, 0.0, 0.0, 0.0)
    assert not knn.beats


def test_paired_gain_is_the_difference_with_the_paired_se():
    y = np.array([0, 0, 1, 1])
    a = reading(np.array([1, 1, 1, 0], bool), y)
    b = reading(np.array([0, 1, 0, 0], bool), y)
    g = paired_gain(a, b, y)
    # d = [1, 0, 1, 0]: per class mean 0.5, variance 0.5 (ddof 1)
    assert g.gain == pytest.approx(a.bacc - b.bacc) and g.gain == pytest.approx(0.5)
    assert g.se == pytest.approx(math.sqrt(0.5 / 2 + 0.5 / 2) / 2)


def _rows(gains, se, seconds=10.0):
    return [
        {
            "epoch": i, "step": 100 * (i + 1), "epoch_time_s": seconds, "health_s": 1.0,
            "knn_bacc": 0.5 + g, "knn_bacc_se": 0.03, "knn_gain": g, "knn_gain_se": se,
            "linear_bacc": 0.5, "linear_bacc_se": 0.03, "linear_gain": 0.0, "linear_gain_se": se,
            "collapse_std": 0.7,
        }
        for i, g in enumerate(gains)
    ]  # fmt: skip


def test_never_beat_random_init_follows_the_se():
    random_init = {"knn_bacc": 0.5, "linear_bacc": 0.5}
    # gains of 0.05 with SE 0.03 are less than 2 SE above random init: never beat
    within = pretraining_health(_rows([0.02, 0.05, 0.05], se=0.03), random_init)
    assert within.never_beat_random is True and within.final_beat_random is False
    assert within.useful_step is None and within.message.startswith("WARNING: ")
    # the same gains with SE 0.02: 0.05 > 2 x 0.02 from the second read on
    beyond = pretraining_health(_rows([0.02, 0.05, 0.05], se=0.02), random_init)
    assert beyond.never_beat_random is False and beyond.final_beat_random is True
    assert beyond.useful_step == 200 and beyond.useful_s == pytest.approx(20.0)
    assert beyond.message.startswith("healthy: ") and "step 200" in beyond.message
    assert beyond.read_fraction == pytest.approx(0.1)
    assert SE_MARGIN == 2.0


def test_a_run_without_reads_is_undecided_not_healthy():
    rows = [{"epoch": 0, "step": 4, "train_loss": 1.0, "epoch_time_s": 1.0}]
    h = pretraining_health(rows, {"knn_bacc": 0.5})
    assert h.never_beat_random is None and h.collapsed is None and h.reads == 0
    assert h.message.startswith("caution: ")
