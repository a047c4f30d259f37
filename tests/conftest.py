"""Shared fixtures: a tiny in-memory database, and one smoke benchmark per test session for
every test that reads its outputs."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from medssl.data.database import Database

SMOKE_SEEDS = 3  # the fewest seeds that give method-level verdicts


@pytest.fixture
def tiny_db() -> Database:
    """32 px finetuning images, three per class in each of train / val / test, a bright disc
    (and its mask) in benign and malignant ones; eight 48 px noise images for pretraining
    (six train, two val)."""
    size = 32
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= (size / 5) ** 2).astype(np.uint8)
    labels = [i % 3 for i in range(27)]
    images = rng.integers(0, 120, (27, size, size)).astype(np.uint8)
    masks = np.stack([disc if y > 0 else np.zeros_like(disc) for y in labels])
    images[masks == 1] = 220
    return Database.from_arrays(
        pretrain=rng.integers(0, 256, (8, 48, 48)).astype(np.uint8),
        pretrain_split=["train"] * 6 + ["val"] * 2,
        finetune=images,
        finetune_masks=masks,
        finetune_labels=labels,
        finetune_split=["train"] * 9 + ["val"] * 9 + ["test"] * 9,
        name="tiny",
    )


@dataclass(frozen=True)
class SmokeBenchmark:
    """A finished smoke benchmark: killed once mid-way, then finished by the same command."""

    out: Path
    rc: int  # exit status of the finishing command
    done_before_kill: dict[str, int]  # run id -> mtime_ns of its done.json at the kill
    stderr: str  # what the finishing command printed to stderr (its progress bars)


def done_runs(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*/done.json")}


def _overrunning_estimates(runs, databases, cfg) -> None:
    """Every run estimated at 0.6 s: each rounds to 1 s while their sum rounds lower, the case
    where the old bar (rounded total, rounded updates) overran its total and crashed."""
    for r in runs:
        r.state.estimate_s = 0.6


@pytest.fixture(scope="session")
def smoke_benchmark(tmp_path_factory) -> SmokeBenchmark:
    """``medssl benchmark --preset smoke`` run as a user would: started in a subprocess and
    killed with SIGKILL once four runs are done, then finished by the same command in this
    process with progress bars on and per-run estimates that overrun their total."""
    from medssl.cli.main import main
    from medssl.tasks import benchmark

    out = tmp_path_factory.mktemp("smoke") / "bench"
    args = ["benchmark", "--preset", "smoke", "--seeds", str(SMOKE_SEEDS), "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "medssl.cli.main", *args, "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "runs").is_dir() and len(done_runs(out)) >= 4:
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"benchmark ended early: {proc.stderr.read().decode()[-2000:]}"
        os.killpg(proc.pid, signal.SIGKILL)  # a crash, not a polite stop
    finally:
        proc.wait()
    before = done_runs(out)
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(benchmark, "_estimate", _overrunning_estimates)
        rc = main(args)
    return SmokeBenchmark(out=out, rc=rc, done_before_kill=before, stderr=err.getvalue())


@dataclass(frozen=True)
class TinyPretraining:
    """A finished 1-epoch SimCLR run started from a timm-layout ResNet-18 the fixture wrote."""

    out: Path  # the run folder
    db_path: Path  # its database, saved on disk
    init_file: Path  # the timm ResNet-18 state dict (3-channel conv1, fc head), safetensors
    init_state: dict  # that state dict


@pytest.fixture(scope="session")
def tiny_pretraining(tmp_path_factory) -> TinyPretraining:
    """``run_pretraining`` of SimCLR for one epoch on a small phantom database saved on disk,
    from ``pretrain.init`` = a timm ResNet-18 state dict (``timm.create_model("resnet18")``'s
    key layout and 3-channel stem) written as safetensors: the run that the weights,
    TensorBoard and export tests read."""
    import timm
    import torch
    from safetensors.torch import save_file

    from dbfactory import phantom_db, save_db
    from medssl.tasks.pretrain import run_pretraining

    root = tmp_path_factory.mktemp("tiny_pretraining")
    torch.manual_seed(7)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    init_file = root / "timm_resnet18.safetensors"
    save_file(state, init_file)
    db_path = Path(save_db(phantom_db(n_pre=12, n_ft=9, n_pre_val=3), root / "phantoms"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small CPU convolutions: faster on one thread of a shared machine
    try:
        out = run_pretraining(
            db_path, root / "run", method="simclr", epochs=1, device="cpu",
            overrides=[
                "batch_size=4", "augmentation_options.size=32", "trainer.progress_bar=false",
                f"init={init_file}",
            ],
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return TinyPretraining(out=out, db_path=db_path, init_file=init_file, init_state=state)
