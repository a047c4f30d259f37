"""Several devices compute what one computes on the global batch.

Three levels: each rank's share of the stream is its block of the one-device views; one
``Trainer.fit`` step of every registered method on two gloo processes gives the one-device
logged loss, gradient and buffers; and the same pretraining on 1 and on 2 processes gives the
same loss curve, encoder and MoCo queue. The two-process runs use ``trainer.devices=2`` in
two processes started here with torchrun's environment (Fabric then starts none, as under
torchrun or Slurm), so one pair of processes serves every method; one run goes through the
CLI, where Fabric starts the second process itself.

Tolerances (fp32, ``precision=32-true``): one step differs only by summation order (the
gradient all-reduce, batch-norm sums over two ranks); measured <= 4e-7 relative on losses
and 6e-6 of the largest gradient element on gradients (MoCo, whose ranks share no batch
norm, bitwise equal), against allowed 1e-5 and 1e-4. Adam's first update is about
lr * sign(g), so gradient elements at rounding level (biases ahead of batch norm, whose true
gradient is 0) flip sign between runs and move by 2 lr, and later steps drift: at lr 1e-3
the second step's loss differs by <= 6e-5 relative (allowed 1e-3), the validation loss by
<= 1.1e-3 (1e-2), the encoder by <= 3e-4 (1e-2); at lr 1e-3 a third step already reaches
1e-3, hence 2 steps. Adam also cancels a uniform gradient scale: a gradient off by the world
size (lightly issues #1920, #1977) leaves the curve as it was, and the step test, whose
optimizer records the gradients, catches it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from dbfactory import phantom_db, save_db
from medssl.artifacts import read_csv
from medssl.data.augment import AugmentConfig
from medssl.data.batches import ViewBatches
from medssl.engine.checkpoint import load_checkpoint
from medssl.engine.trainer import Trainer, TrainerConfig
from medssl.errors import ConfigError
from medssl.models.encoder import build_encoder
from medssl.ssl import build_method, method_names
from medssl.ssl.moco import forward_in_groups, groups_per_rank
from medssl.tasks.pretrain import run_pretraining

WORLD = 2
GLOBAL_BATCH = 16


def _stream(world_size: int, rank: int) -> list[tuple[torch.Tensor, ...]]:
    images = torch.randint(0, 256, (40, 48, 48), generator=torch.Generator().manual_seed(3))
    stream = ViewBatches(
        images.to(torch.uint8),
        GLOBAL_BATCH,
        AugmentConfig(size=32),
        seed=5,
        shuffle=True,
        drop_last=True,
        rank=rank,
        world_size=world_size,
    )
    return list(stream)


def test_ranks_hold_blocks_of_the_one_device_views():
    single = _stream(1, 0)
    ranks = [_stream(WORLD, r) for r in range(WORLD)]
    assert len(single) == 2 and all(len(r) == 2 for r in ranks)
    for i, whole in enumerate(single):
        for v, view in enumerate(whole):
            parts = [r[i][v] for r in ranks]
            assert all(p.shape[0] == GLOBAL_BATCH // WORLD for p in parts)
            assert torch.equal(torch.cat(parts), view)  # row for row, rank 0 first


def test_global_batch_must_split_evenly():
    with pytest.raises(ConfigError, match="multiple of the 3 devices"):
        ViewBatches(
            torch.zeros(8, 4, 4, dtype=torch.uint8),
            8,
            AugmentConfig(),
            0,
            shuffle=True,
            drop_last=True,
            world_size=3,
        )
    with pytest.raises(ConfigError, match="last batch of 3 images"):
        ViewBatches(
            torch.zeros(11, 4, 4, dtype=torch.uint8),
            8,
            AugmentConfig(),
            0,
            shuffle=False,
            drop_last=False,
            world_size=2,
        )


def test_moco_bn_groups_are_shared_by_the_devices():
    assert groups_per_rank(2, 1) == 2 and groups_per_rank(2, 2) == 1 and groups_per_rank(4, 2) == 2
    with pytest.raises(ConfigError, match="shuffle_bn_groups=4"):
        groups_per_rank(2, 4)


def test_moco_groups_update_running_stats_once_from_their_mean():
    bn = torch.nn.BatchNorm1d(3)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    y = forward_in_groups((bn,), x, 2)
    chunks = x.chunk(2)
    for out, chunk in zip(y.chunk(2), chunks, strict=True):  # each group its own statistics
        expected = (chunk - chunk.mean(0)) / torch.sqrt(chunk.var(0, unbiased=False) + bn.eps)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    mean = torch.stack([c.mean(0) for c in chunks]).mean(0)
    var = torch.stack([c.var(0) for c in chunks]).mean(0)  # unbiased, as BN's running var
    torch.testing.assert_close(bn.running_mean, 0.1 * mean)
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var)
    assert int(bn.num_batches_tracked) == 1


# Two ranks: one training step of every registered method, then the curve runs.

PRESET = "thesis"  # Adam (one Adam step in the tolerances below), MoCo's unbounded queue

HEADS = {  # narrow heads: these runs are about equality, not quality (others: defaults)
    "simclr": {"hidden_dim": 64, "output_dim": 32},
    "moco": {"hidden_dim": 64, "output_dim": 32, "queue_size": 64},
    "byol": {"projection_hidden_dim": 64, "prediction_hidden_dim": 64, "output_dim": 32},
}


def _overrides(method: str, devices: int) -> list[str]:
    return [
        f"trainer.devices={devices}",
        "trainer.precision=32-true",
        f"batch_size={GLOBAL_BATCH}",  # = the 16 training images: one step per epoch
        "augmentation_options.size=32",
        "optimizer.lr=0.001",
        "trainer.progress_bar=false",
        "health.every=1",  # validation (and the health read) after every one-step epoch
        *(f"method_options.{k}={v}" for k, v in HEADS[method].items()),
    ]


def _pretrain(db: str, out: Path, method: str, devices: int) -> Path:
    return run_pretraining(
        db, out, method=method, preset=PRESET, overrides=_overrides(method, devices), epochs=2,
        device="cpu",
    )  # fmt: skip


def _method(name: str):
    torch.manual_seed(0)
    return build_method(name, build_encoder(), HEADS.get(name))


def _global_views() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return tuple(torch.rand(GLOBAL_BATCH, 1, 32, 32, generator=g) * 2 - 1 for _ in range(2))


class GradientRecorder(torch.optim.Optimizer):
    """An optimizer that keeps the gradients of its last step and changes no parameter."""

    def __init__(self, named: list[tuple[str, torch.nn.Parameter]]) -> None:
        super().__init__([p for _, p in named], {"lr": 0.0})
        self.names = [k for k, _ in named]
        self.grads: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def step(self, closure=None) -> None:
        params = [p for group in self.param_groups for p in group["params"]]
        self.grads = {k: p.grad.clone() for k, p in zip(self.names, params, strict=True)}


def _trainer_step(name: str, devices: int, rank: int, out: Path) -> dict[str, object]:
    """One step of ``Trainer.fit`` on this rank's block of the global batch: the logged
    loss, the gradients the optimizer receives (after DDP's averaging) and the buffers
    after the step's hook (MoCo's queue, the BN running statistics)."""
    method = _method(name)
    recorder = GradientRecorder([(k, p) for k, p in method.named_parameters() if p.requires_grad])
    n = GLOBAL_BATCH // devices
    views = tuple(v[rank * n : (rank + 1) * n] for v in _global_views())
    cfg = TrainerConfig(
        epochs=1, accelerator="cpu", devices=devices, precision="32-true", progress_bar=False
    )
    history = Trainer(cfg).fit(method, recorder, lambda epoch: [views], out_dir=out, fingerprint={})
    return {
        "loss": torch.tensor(history[-1]["train_loss"]),
        "grads": recorder.grads,
        "buffers": {k: b.clone() for k, b in method.named_buffers() if b.is_floating_point()},
    }


def _rank(rank: int, port: int, folder: str, db: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        NODE_RANK="0",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    torch_dist.init_process_group("gloo", rank=rank, world_size=WORLD)  # Fabric reuses it
    try:
        steps = {
            name: _trainer_step(name, WORLD, rank, Path(folder) / f"step_{name}")
            for name in method_names()
        }
        if rank == 0:
            torch.save(steps, Path(folder) / "steps.pt")
        for method in HEADS:
            _pretrain(db, Path(folder) / method, method, devices=WORLD)
    finally:
        torch_dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread here as in each rank: the comparisons then see only what DDP changes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def curve_db(tmp_path_factory):
    # 16 training images = one global batch: one step per epoch, so metrics.csv is per step.
    return save_db(phantom_db(n_pre=20, n_pre_val=4, n_ft=12), tmp_path_factory.mktemp("db") / "db")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory, curve_db) -> Path:
    folder = tmp_path_factory.mktemp("two_ranks")
    mp.spawn(_rank, args=(_free_port(), str(folder), curve_db), nprocs=WORLD)
    return folder


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, curve_db):
    folder, runs = tmp_path_factory.mktemp("one_process"), {}

    def run(method: str) -> Path:
        if method not in runs:
            runs[method] = _pretrain(curve_db, folder / method, method, devices=1)
        return runs[method]

    return run


@pytest.mark.slow
@pytest.mark.parametrize("name", method_names())
def test_two_process_step_is_the_one_device_step(name, two_ranks, tmp_path):
    one = _trainer_step(name, 1, 0, tmp_path)
    two = torch.load(two_ranks / "steps.pt", weights_only=True)[name]
    torch.testing.assert_close(two["loss"], one["loss"], rtol=1e-5, atol=0)
    scale = max(g.abs().max() for g in one["grads"].values())
    assert one["grads"].keys() == two["grads"].keys()
    for k, g in one["grads"].items():
        torch.testing.assert_close(two["grads"][k], g, rtol=1e-4, atol=1e-4 * scale, msg=k)
    for k, b in one["buffers"].items():  # MoCo's queue, BN running statistics
        torch.testing.assert_close(two["buffers"][k], b, rtol=1e-4, atol=1e-6, msg=k)


def _assert_same_run(one: Path, two: Path) -> None:
    a, b = read_csv(one / "metrics.csv"), read_csv(two / "metrics.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b] == ["1", "2"]
    loss_a = torch.tensor([float(r["train_loss"]) for r in a])
    loss_b = torch.tensor([float(r["train_loss"]) for r in b])
    torch.testing.assert_close(loss_b[0], loss_a[0], rtol=1e-5, atol=0)  # same weights, views
    torch.testing.assert_close(loss_b[1], loss_a[1], rtol=1e-3, atol=0)  # one Adam step on
    val_a = torch.tensor([float(r["val_loss"]) for r in a])  # eval mode: BN running stats
    val_b = torch.tensor([float(r["val_loss"]) for r in b])
    torch.testing.assert_close(val_b, val_a, rtol=1e-2, atol=0)
    enc_a = torch.load(one / "encoder.pt", weights_only=True)
    enc_b = torch.load(two / "encoder.pt", weights_only=True)
    diff = sum(float((enc_a[k].float() - enc_b[k].float()).norm() ** 2) for k in enc_a)
    norm = sum(float(enc_a[k].float().norm() ** 2) for k in enc_a)
    assert (diff / norm) ** 0.5 < 1e-2
    state_a = load_checkpoint(one / "checkpoint.pt")["model"]
    state_b = load_checkpoint(two / "checkpoint.pt")["model"]
    if "queue" in state_a:  # MoCo: both ranks' keys, in the one-device order
        assert int(state_b["queue_ptr"]) == int(state_a["queue_ptr"]) == 2 * GLOBAL_BATCH
        torch.testing.assert_close(state_b["queue"], state_a["queue"])


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(HEADS))
def test_two_processes_give_the_one_process_curve(method, two_ranks, one_process):
    _assert_same_run(one_process(method), two_ranks / method)


@pytest.mark.slow
def test_cli_launches_the_second_process(curve_db, one_process, tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "medssl.cli.main", "pretrain", "--method", "moco"]
    argv += ["--preset", PRESET]
    argv += ["--database", curve_db, "--out", str(out), "--epochs", "2", "--device", "cpu"]
    for s in _overrides("moco", devices=WORLD):
        argv += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("encoder.pt", "metrics.csv", "done.json", "loss_curve.png", "config.yaml"):
        assert (out / name).is_file(), name
    _assert_same_run(one_process("moco"), out)
