"""The health read of a pretraining run: alignment / uniformity known answers, the collapse
and never-beat-random flags on synthetic histories and a constant encoder, and health.png."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medssl.artifacts import read_csv, write_csv
from medssl.engine.health import COLLAPSE_STD, plot_health, pretraining_health
from medssl.engine.monitor import KNNMonitor, alignment, uniformity


def history(knn, std, align=None, unif=None):
    rows = []
    for e, (k, s) in enumerate(zip(knn, std, strict=True)):
        row = {"epoch": e, "train_loss": 1.0 / (e + 1), "knn_acc": k, "collapse_std": s}
        row.update({"alignment": (align or [0.5] * len(knn))[e]})
        row.update({"uniformity": (unif or [-2.0] * len(knn))[e]})
        rows.append(row)
    return rows


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
    labels = torch.arange(12) % 3
    pairs = (torch.rand(6, 1, 32, 32, generator=g) * 2 - 1, torch.rand(6, 1, 32, 32, generator=g))
    monitor = KNNMonitor(images[:8], labels[:8], images[8:], labels[8:], k=3, size=32, pairs=pairs)
    reading = monitor(Constant())
    assert reading["collapse_std"] == pytest.approx(0.0, abs=1e-6)
    assert reading["alignment"] == pytest.approx(0.0, abs=1e-6)
    assert reading["uniformity"] == pytest.approx(0.0, abs=1e-6)
    rows = [{"epoch": e, **reading} for e in range(3)]
    health = pretraining_health(rows, random_knn=reading["knn_acc"])
    assert health.collapsed is True and health.never_beat_random is True  # ties: never beat
    assert health.message.startswith("WARNING: COLLAPSED")


def test_healthy_run_is_not_flagged():
    rows = history(knn=[0.50, 0.58, 0.62], std=[0.7, 0.6, 0.55])
    health = pretraining_health(rows, random_knn=0.52)
    assert health.collapsed is False and health.never_beat_random is False
    assert health.final_beat_random is True
    assert (health.best_knn, health.best_knn_epoch, health.final_knn) == (0.62, 2, 0.62)
    assert health.final_std == 0.55 and health.final_uniformity == -2.0
    assert health.message.startswith("healthy: ") and "random init 0.520" in health.message


def test_collapse_is_judged_on_the_last_epoch():
    rows = history(knn=[0.60, 0.61, 0.40], std=[0.6, 0.3, 0.5 * COLLAPSE_STD])
    health = pretraining_health(rows, random_knn=0.50)
    assert health.collapsed is True and health.never_beat_random is False
    assert "COLLAPSED" in health.message and "WARNING" in health.message
    recovered = history(knn=[0.6, 0.6], std=[0.5 * COLLAPSE_STD, 0.4])
    assert pretraining_health(recovered, 0.5).collapsed is False


def test_never_beat_random_on_synthetic_histories():
    below = history(knn=[0.40, 0.45, 0.44], std=[0.6] * 3)
    assert pretraining_health(below, random_knn=0.45).never_beat_random is True  # a tie
    once = history(knn=[0.40, 0.46, 0.44], std=[0.6] * 3)
    assert pretraining_health(once, random_knn=0.45).never_beat_random is False
    assert pretraining_health(once, random_knn=0.45, margin=0.02).never_beat_random is True
    h = pretraining_health(below, random_knn=0.45)
    assert "NEVER BEAT random init" in h.message and h.message.startswith("WARNING")
    # Beat random init at one epoch, ended at or below it: not flagged, not called healthy.
    early = pretraining_health(once, random_knn=0.45)
    assert early.final_beat_random is False
    assert early.message.startswith("caution: ") and "(not above random init)" in early.message


def test_undecidable_cases_are_none_and_said(tmp_path):
    rows = history(knn=[0.5, 0.6], std=[0.5, 0.5])
    no_random = pretraining_health(rows, random_knn=None)
    assert no_random.never_beat_random is None and no_random.final_beat_random is None
    assert "no random-init reading" in no_random.message
    assert no_random.message.startswith("caution: ")
    bare = pretraining_health([{"epoch": 0, "train_loss": 1.0}], random_knn=0.5)
    assert bare.collapsed is None and bare.never_beat_random is None and bare.best_knn is None
    assert "no collapse_std" in bare.message and "no knn_acc" in bare.message
    empty = pretraining_health([], random_knn=0.5)
    assert empty.epochs == 0 and empty.collapsed is None


def test_rows_read_back_from_csv_give_the_same_health(tmp_path):
    rows = history(knn=[0.5, 0.58], std=[0.6, 0.5])
    rows[0]["knn_acc"] = float("nan")  # a non-finite reading is left out, not a crash
    write_csv(tmp_path / "metrics.csv", rows, list(rows[0]))
    back = read_csv(tmp_path / "metrics.csv")
    assert pretraining_health(back, "0.55") == pretraining_health(rows, 0.55)


def test_health_figure_is_written(tmp_path):
    rows = history(knn=[0.5, 0.58, 0.6], std=[0.6, 0.5, 0.5])
    path = plot_health(
        rows,
        {"knn_acc": 0.52, "alignment": 0.9},
        tmp_path / "health.png",
        "simclr pretraining health",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bare = plot_health([{"epoch": 0}], None, tmp_path / "bare.png", "no readings")
    assert bare.stat().st_size > 1000
