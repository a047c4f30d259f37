"""Multi-device pretraining: each rank's share of the global batch, and a real two-process
DDP run (Lightning Fabric on the CPU, gloo) through the CLI, where MoCo's queue must hold
the keys of both ranks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from medssl.artifacts import read_csv
from medssl.data.augment import AugmentConfig
from medssl.engine.checkpoint import load_checkpoint
from medssl.errors import ConfigError
from medssl.tasks import pretrain
from test_pretrain import phantom_db, save_db


def _batches(monkeypatch, world_size: int, rank: int, n: int = 24, batch: int = 8):
    """The image indices of each batch a rank sees (views replaced by the raw images)."""
    monkeypatch.setattr(pretrain, "views", lambda x, *a, **k: (x, x))
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1).expand(n, 4, 4).contiguous()
    stream = pretrain.ViewBatches(
        images,
        batch,
        AugmentConfig(),
        seed=5,
        shuffle=True,
        drop_last=True,
        rank=rank,
        world_size=world_size,
    )
    return [v0[:, 0, 0].tolist() for v0, _ in stream]


def test_ranks_split_each_global_batch(monkeypatch):
    single = _batches(monkeypatch, 1, 0)
    r0, r1 = _batches(monkeypatch, 2, 0), _batches(monkeypatch, 2, 1)
    assert len(single) == len(r0) == len(r1) == 3
    for whole, a, b in zip(single, r0, r1, strict=True):
        assert len(a) == len(b) == 4
        assert sorted(a + b) == sorted(whole)  # together, the one-device batch; no overlap


def test_global_batch_must_split_evenly():
    with pytest.raises(ConfigError, match="multiple of the 3 devices"):
        pretrain.ViewBatches(
            torch.zeros(8, 4, 4, dtype=torch.uint8),
            8,
            AugmentConfig(),
            0,
            shuffle=True,
            drop_last=True,
            world_size=3,
        )


@pytest.mark.slow
def test_two_process_ddp_moco_gathers_keys(tmp_path):
    # 32 training images, global batch 8 -> 4 steps, 2 ranks of 4 images each.
    db = save_db(phantom_db(n_pre=36, n_pre_val=4, n_ft=12), tmp_path / "db")
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "medssl.cli.main", "pretrain", "--method", "moco"]
    argv += ["--database", db, "--out", str(out), "--epochs", "1", "--device", "cpu"]
    for s in (
        "trainer.devices=2",
        "batch_size=8",
        "augmentation_options.size=32",
        "method_options.queue_size=64",
        "trainer.progress_bar=false",
    ):
        argv += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("encoder.pt", "metrics.csv", "done.json", "loss_curve.png", "config.yaml"):
        assert (out / name).is_file(), name
    assert len(read_csv(out / "metrics.csv")) == 1
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["global_step"] == 4
    # Each step enqueued the keys of both ranks (2 x 4): 32 keys, not one rank's 16.
    assert int(state["model"]["queue_ptr"]) == 32
