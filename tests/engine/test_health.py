"""The health of a pretraining run: alignment / uniformity known answers, the collapse and
never-beat-random flags on synthetic histories (beat: a kNN gain over random init above 2 SE)
and a constant encoder, time to a useful encoder, and health.png."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from medssl.artifacts import read_csv, write_csv
from medssl.engine.health import COLLAPSE_STD, plot_health, pretraining_health
from medssl.engine.monitor import HealthMonitor, alignment, uniformity


def history(gain, std, se=0.02, align=None, unif=None):
    """Read rows every 100 steps: kNN balanced accuracy 0.4 + gain, paired gain +- se."""
    rows = []
    for e, (g, s) in enumerate(zip(gain, std, strict=True)):
        row = {"epoch": e, "step": 100 * (e + 1), "train_loss": 1.0 / (e + 1), "collapse_std": s}
        row |= {"knn_bacc": 0.4 + g, "knn_bacc_se": 0.03, "knn_gain": g, "knn_gain_se": se}
        row |= {"linear_bacc": 0.45, "linear_bacc_se": 0.03, "linear_gain": 0.01}
        row |= {"linear_gain_se": se, "epoch_time_s": 5.0, "health_s": 0.25}
        row.update({"alignment": (align or [0.5] * len(gain))[e]})
        row.update({"uniformity": (unif or [-2.0] * len(gain))[e]})
        rows.append(row)
    return rows


RANDOM = {"knn_bacc": 0.4, "linear_bacc": 0.45}


def test_alignment_known_answers():
    z0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert alignment(z0, 5 * z0) == pytest.approx(0.0)  # views coincide after normalisation
    z1 = torch.tensor([[0.0, 3.0], [0.0, -1.0]])  # orthogonal (|d|^2 = 2), antipodal (4)
    assert alignment(z0, z1) == pytest.approx((2 + 4) / 2)
    assert alignment(z0, z1, alpha=1) == pytest.approx((math.sqrt(2) + 2) / 2)


def test_uniformity_known_answers():
    assert uniformity(torch.tensor([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(-4.0)  # -t * 2
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # squared distances 2, 4, 2
    expected = math.log((2 * math.exp(-4) + math.exp(-8)) / 3)
    assert uniformity(z) == pytest.approx(expected, rel=1e-6)
    assert uniformity(torch.ones(5, 3)) == pytest.approx(0.0, abs=1e-7)  # one point


class Constant(nn.Module):
    """An encoder that maps every image to the same feature vector."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(0.1, 1.0, 512))

    def forward(self, x):
        return self.w.expand(x.shape[0], -1) + 0 * x.mean()


def test_constant_encoder_run_reads_collapsed():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (12, 32, 32), dtype=torch.uint8, generator=g)
    labels = np.arange(12) % 3
    groups = np.arange(12).astype(str)
    pairs = (torch.rand(6, 1, 32, 32, generator=g) * 2 - 1, torch.rand(6, 1, 32, 32, generator=g))
    monitor = HealthMonitor(images, labels, groups, k=3, size=32, pairs=pairs, probe_folds=2)
    logs, read = monitor(Constant())
    assert logs["collapse_std"] == pytest.approx(0.0, abs=1e-6)
    assert logs["alignment"] == pytest.approx(0.0, abs=1e-6)
    assert logs["uniformity"] == pytest.approx(0.0, abs=1e-6)
    knn, lin = read.gains(read, labels)  # a constant encoder against itself: no gain
    rows = [
        {"epoch": e, "step": e + 1, **logs, "knn_gain": knn.gain, "knn_gain_se": knn.se}
        for e in range(3)
    ]
    health = pretraining_health(rows, logs)
    assert health.collapsed is True and health.never_beat_random is True  # ties: never beat
    assert health.message.startswith("WARNING: COLLAPSED")


def test_healthy_run_is_not_flagged():
    rows = history(gain=[0.01, 0.06, 0.10], std=[0.7, 0.6, 0.55])
    health = pretraining_health(rows, RANDOM)
    assert health.collapsed is False and health.never_beat_random is False
    assert health.final_beat_random is True
    assert (health.best_knn_gain, health.best_knn_gain_step) == (0.10, 300)
    assert health.final_knn == pytest.approx(0.5) and health.final_knn_gain == 0.10
    assert (health.useful_step, health.useful_s) == (200, 10.0)  # 0.06 > 2 x 0.02
    assert health.final_std == 0.55 and health.final_uniformity == -2.0
    assert health.read_fraction == pytest.approx(0.05)
    assert health.message.startswith("healthy: ") and "random init 0.400" in health.message


def test_collapse_is_judged_on_the_last_read():
    rows = history(gain=[0.10, 0.11, 0.0], std=[0.6, 0.3, 0.5 * COLLAPSE_STD])
    health = pretraining_health(rows, RANDOM)
    assert health.collapsed is True and health.never_beat_random is False
    assert "COLLAPSED" in health.message and "WARNING" in health.message
    recovered = history(gain=[0.1, 0.1], std=[0.5 * COLLAPSE_STD, 0.4])
    assert pretraining_health(recovered, RANDOM).collapsed is False


def test_never_beat_random_on_synthetic_histories():
    below = history(gain=[-0.02, 0.0, 0.03], std=[0.6] * 3)  # 0.03 < 2 x 0.02
    h = pretraining_health(below, RANDOM)
    assert h.never_beat_random is True and h.useful_step is None
    assert "NEVER BEAT random init by more than 2 SE" in h.message
    assert h.message.startswith("WARNING")
    # Beat random init at one read, ended within 2 SE of it: not flagged, not called healthy.
    once = history(gain=[0.0, 0.05, 0.02], std=[0.6] * 3)
    early = pretraining_health(once, RANDOM)
    assert early.never_beat_random is False and early.final_beat_random is False
    assert early.message.startswith("caution: ") and "not above it by 2 SE" in early.message
    # the same gains read with twice the noise never beat random init
    assert pretraining_health(
        history([0.0, 0.05, 0.02], [0.6] * 3, se=0.04), RANDOM
    ).never_beat_random


def test_undecidable_cases_are_none_and_said(tmp_path):
    bare = pretraining_health([{"epoch": 0, "step": 4, "train_loss": 1.0}], RANDOM)
    assert bare.collapsed is None and bare.never_beat_random is None and bare.final_knn is None
    assert "no collapse_std" in bare.message and "no read" in bare.message
    assert bare.message.startswith("caution: ")
    empty = pretraining_health([], RANDOM)
    assert empty.epochs == 0 and empty.collapsed is None and empty.steps is None


def test_rows_read_back_from_csv_give_the_same_health(tmp_path):
    rows = history(gain=[0.0, 0.08], std=[0.6, 0.5])
    rows[0]["knn_gain"] = float("nan")  # a non-finite reading is left out, not a crash
    write_csv(tmp_path / "metrics.csv", rows, list(rows[0]))
    back = read_csv(tmp_path / "metrics.csv")
    assert pretraining_health(back, RANDOM) == pretraining_health(rows, RANDOM)


def test_health_figure_is_written(tmp_path):
    rows = history(gain=[0.0, 0.05, 0.08], std=[0.6, 0.5, 0.5])
    path = plot_health(
        rows,
        {"knn_bacc": 0.4, "alignment": 0.9},
        tmp_path / "health.png",
        "simclr pretraining health",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bare = plot_health([{"epoch": 0}], None, tmp_path / "bare.png", "no readings")
    assert bare.stat().st_size > 1000
