"""The training engine: protocol, artifacts, resume equivalence, guards (tiny CPU task)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medssl.artifacts import read_csv
from medssl.engine.checkpoint import load_checkpoint
from medssl.engine.trainer import Trainer, TrainerConfig
from medssl.errors import ConfigError, TrainingError


class TinyTask(nn.Module):
    """Regression with BN and noise injection (so resume must restore the RNG to match)."""

    def __init__(self, nan_at: int | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4, 1),
        )
        self.register_buffer("hook_calls", torch.zeros((), dtype=torch.long))
        self.nan_at = nan_at
        self.total_steps_seen = None

    def training_step(self, batch):
        x, y = batch
        x = x + 0.1 * torch.randn_like(x)
        loss = ((self.net(x).squeeze(1) - y) ** 2).mean()
        if self.nan_at is not None and int(self.hook_calls) + 1 == self.nan_at:
            loss = loss * float("nan")
        return loss, {"mse": loss.detach()}

    def validation_step(self, batch):
        x, y = batch
        return {"loss": ((self.net(x).squeeze(1) - y) ** 2).mean()}

    def after_optimizer_step(self, step, total_steps):
        self.hook_calls += 1
        self.total_steps_seen = total_steps


def make_data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = x.mean(dim=(1, 2, 3)) * 3
    return x, y


class Batches:
    def __init__(self, x, y, epoch, bs=8, interrupt_at=None):
        self.x, self.y, self.epoch, self.bs, self.interrupt_at = x, y, epoch, bs, interrupt_at

    def __len__(self):
        return len(self.x) // self.bs

    def __iter__(self):
        perm = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.epoch))
        for i in range(len(self)):
            if self.interrupt_at == (self.epoch, i):
                raise KeyboardInterrupt
            idx = perm[i * self.bs : (i + 1) * self.bs]
            yield self.x[idx], self.y[idx]


def run(
    tmp,
    epochs=3,
    resume=False,
    interrupt_at=None,
    fingerprint=None,
    monitor=None,
    patience=None,
    nan_at=None,
    seed=0,
):
    torch.manual_seed(123)  # model init
    task = TinyTask(nan_at=nan_at)
    opt = torch.optim.Adam(task.parameters(), lr=1e-2)
    x, y = make_data()
    cfg = TrainerConfig(
        epochs=epochs,
        accelerator="cpu",
        seed=seed,
        progress_bar=False,
        monitor=monitor,
        patience=patience,
    )
    hist = Trainer(cfg).fit(
        task,
        opt,
        lambda e: Batches(x, y, e, interrupt_at=interrupt_at),
        lambda e: Batches(x, y, 100 + e),
        out_dir=tmp,
        resume=resume,
        epoch_end=lambda e, logs: {"extra": e * 1.0},
        fingerprint=fingerprint or {"a": 1, "b": {"c": 2}},
    )
    return task, hist


def test_fit_writes_metrics_checkpoint_and_calls_hook(tmp_path):
    task, hist = run(tmp_path, epochs=2, monitor="val_loss")
    assert [r["epoch"] for r in hist] == [0, 1]
    assert int(task.hook_calls) == 8 and task.total_steps_seen == 8
    rows = read_csv(tmp_path / "metrics.csv")
    assert len(rows) == 2
    for key in ("epoch", "step", "train_loss", "train_mse", "val_loss", "lr", "extra", "img_per_s"):
        assert key in rows[0]
    assert math.isclose(float(rows[1]["train_loss"]), float(rows[1]["train_mse"]), rel_tol=1e-6)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 8 and len(ckpt["history"]) == 2
    assert (tmp_path / "best.pt").is_file()
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["value"] == min(r["val_loss"] for r in hist)


def test_resume_ends_at_same_weights(tmp_path):
    full, hist_full = run(tmp_path / "full", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", epochs=3, interrupt_at=(1, 2))
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["epoch"] == 0
    resumed, hist_res = run(tmp_path / "cut", epochs=3, resume=True)
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert [r["train_loss"] for r in hist_full] == [r["train_loss"] for r in hist_res]


def test_files_written_behind_training_hold_their_epochs_weights(tmp_path, monkeypatch):
    """best.pt and checkpoint.pt are written in a thread while the next epoch trains (every
    epoch with checkpoint_every_s=0): with each write held back until later epochs have changed
    the weights, they still hold the weights of the epoch they were taken at (an epoch-0 best.pt
    equals a 1-epoch run's weights), and the last epoch's files are on disk when fit returns."""
    import time

    import medssl.engine.checkpoint as checkpoint

    one_epoch, _ = run(tmp_path / "one", epochs=1)
    save = checkpoint.save_torch

    def slow_save(path, obj):
        time.sleep(0.3)  # several tiny epochs train meanwhile
        return save(path, obj)

    monkeypatch.setattr(checkpoint, "save_torch", slow_save)
    torch.manual_seed(123)
    task = TinyTask()
    opt = torch.optim.Adam(task.parameters(), lr=1e-2)
    x, y = make_data()
    cfg = TrainerConfig(epochs=3, accelerator="cpu", progress_bar=False, monitor="extra",
                        monitor_mode="min", checkpoint_every_s=0)  # fmt: skip
    Trainer(cfg).fit(
        task, opt, lambda e: Batches(x, y, e), None, out_dir=tmp_path / "three",
        epoch_end=lambda e, logs: {"extra": float(e)}, fingerprint={"a": 1},
    )  # fmt: skip
    best = torch.load(tmp_path / "three" / "best.pt", weights_only=True)
    assert best["epoch"] == 0
    for k, v in one_epoch.state_dict().items():
        assert torch.equal(best["model"][k], v), k
    last = load_checkpoint(tmp_path / "three" / "checkpoint.pt")
    assert last["epoch"] == 2 and len(last["history"]) == 3
    for k, v in task.state_dict().items():
        assert torch.equal(last["model"][k], v), k


def test_a_failed_background_write_is_raised(tmp_path):
    from medssl.engine.checkpoint import BackgroundWriter

    (tmp_path / "a-file").write_text("not a folder")
    writer = BackgroundWriter()
    writer.submit([(tmp_path / "a-file" / "best.pt", {"w": torch.zeros(2)})])
    with pytest.raises(OSError):
        writer.close()


def test_epoch_start_is_called_in_training_mode_before_the_first_step(tmp_path):
    torch.manual_seed(123)
    task = TinyTask()
    seen = []
    x, y = make_data()
    Trainer(TrainerConfig(epochs=2, accelerator="cpu", progress_bar=False)).fit(
        task, torch.optim.Adam(task.parameters()), lambda e: Batches(x, y, e), None,
        out_dir=tmp_path, fingerprint={"a": 1},
        epoch_start=lambda e: seen.append((e, task.training, int(task.hook_calls))),
        epoch_end=lambda e, logs: task.eval() and None,  # the next epoch_start sees train mode
    )  # fmt: skip
    assert seen == [(0, True, 0), (1, True, 4)]


def test_resume_refuses_other_fingerprint(tmp_path):
    run(tmp_path, epochs=1)
    with pytest.raises(TrainingError, match=r"b\.c: checkpoint 2 vs now 3"):
        run(tmp_path, epochs=2, resume=True, fingerprint={"a": 1, "b": {"c": 3}})


def test_existing_checkpoint_without_resume_is_refused(tmp_path):
    run(tmp_path, epochs=1)
    with pytest.raises(TrainingError, match="--resume"):
        run(tmp_path, epochs=1)


def test_nan_loss_stops_with_step(tmp_path):
    with pytest.raises(TrainingError, match=r"at step 6 \(epoch 1\).*last finite values: loss="):
        run(tmp_path, epochs=3, nan_at=6)


def test_early_stopping(tmp_path):
    _, hist = run(
        tmp_path, epochs=6, monitor="extra", patience=2
    )  # "extra" rises: best stays epoch 0 in min mode
    assert len(hist) == 3


def test_bad_config():
    with pytest.raises(ConfigError, match="monitor"):
        Trainer(TrainerConfig(patience=2, accelerator="cpu"))
    with pytest.raises(ConfigError, match="accelerator"):
        Trainer(TrainerConfig(accelerator="tpu"))


def test_written_files_and_folders_follow_the_umask(tmp_path):
    """Atomic writers go through mkstemp/mkdtemp (0600/0700): the artifacts they leave must get
    the permissions a plain open/mkdir would, so a colleague can read a report."""
    import os
    import stat

    from medssl.artifacts import atomic_dir, write_text

    old = os.umask(0o022)
    try:
        f = write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "folder") as tmp:
            write_text(tmp / "b.txt", "y")
        assert stat.S_IMODE(f.stat().st_mode) == 0o644
        assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755
        assert stat.S_IMODE((tmp_path / "folder" / "b.txt").stat().st_mode) == 0o644
        os.umask(0o077)
        g = write_text(tmp_path / "c.txt", "z")
        assert stat.S_IMODE(g.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_save_torch_streams_atomically(tmp_path):
    """save_torch streams into a temporary sibling: the file reads back, and a save that fails
    half-way (an object torch cannot pickle) leaves the previous file intact and no temporary
    file behind."""
    import pickle

    from medssl.artifacts import save_torch

    path = tmp_path / "checkpoint.pt"
    save_torch(path, {"w": torch.arange(5.0)})
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(5.0))
    with pytest.raises((pickle.PicklingError, AttributeError)):  # a local object: either
        save_torch(path, {"w": torch.zeros(1000), "bad": lambda: None})
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(5.0))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_two_writers_replacing_one_folder_at_once_both_succeed(tmp_path, monkeypatch):
    """Writer A is paused between moving the current folder aside and moving its own in, and
    writer B replaces the folder meanwhile (two benchmark commands ending at once, each
    rebuilding the report): both succeed, A's folder (written last) stays, nothing is left
    aside."""
    import os
    import threading

    from medssl import artifacts
    from medssl.artifacts import atomic_dir, write_text

    target = tmp_path / "report"

    def write(who: str) -> None:
        with atomic_dir(target, overwrite=True) as tmp:
            write_text(tmp / "who.txt", who)

    write("first")
    real_replace = os.replace
    paused, resume = threading.Event(), threading.Event()

    def replace(src, dst):
        real_replace(src, dst)
        a_moved_the_folder_aside = threading.current_thread().name == "A" and src == target
        if a_moved_the_folder_aside and not paused.is_set():
            paused.set()  # the current folder is aside, A's own not yet in place
            resume.wait(30)

    monkeypatch.setattr(artifacts.os, "replace", replace)
    errors: list[BaseException] = []

    def run_a() -> None:
        try:
            write("A")
        except BaseException as e:  # handed to the test below
            errors.append(e)

    a = threading.Thread(target=run_a, name="A")
    a.start()
    try:
        assert paused.wait(30)
        write("B")
    finally:
        resume.set()
        a.join(30)
    assert errors == []
    assert (target / "who.txt").read_text(encoding="utf-8") == "A"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_learning_rate_scaling_warmup_and_cosine():
    import math

    import torch

    from medssl.engine.optim import OptimizerConfig, build_optimizer, build_schedule, scaled_lr

    cfg = OptimizerConfig(name="adamw", lr=3e-4, reference_batch=16, lr_scaling="sqrt")
    assert scaled_lr(cfg, 64) == pytest.approx(6e-4)  # sqrt(64 / 16) = 2
    lin = OptimizerConfig(name="sgd", lr=0.3, reference_batch=256, lr_scaling="linear")
    assert scaled_lr(lin, 64) == pytest.approx(0.075)
    cosine = OptimizerConfig(
        name="adamw", lr=1.0, schedule="cosine", warmup_fraction=0.2, min_lr_fraction=0.0
    )
    p = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([p], cosine, batch_size=256)
    sched = build_schedule(opt, cosine, steps_per_epoch=5, epochs=2)  # 10 steps, 2 warm-up
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:2] == pytest.approx([0.5, 1.0])  # linear warm-up
    assert lrs[2] == pytest.approx(1.0)  # the cosine starts at the full rate ...
    assert lrs[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 4 / 8)))
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:], strict=False))  # ... and decays
    assert build_schedule(opt, OptimizerConfig(), steps_per_epoch=5, epochs=2) is None
