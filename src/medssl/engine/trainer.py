# Over 400 lines: one loop and the protocol it documents (~60 lines of docstring); fit is split into _setup/_restore/_train_epoch/_end_epoch/_save.
"""The training loop. It knows no method, model or task: only the protocol below.

A *task* is an ``nn.Module`` with

- ``training_step(batch) -> (loss, logs)``: ``loss`` a scalar tensor, ``logs`` a dict of
  floats or 0-d tensors (tensors are kept on the device and read in bulk, so a step costs no
  host round trip);
- ``validation_step(batch) -> logs`` (averaged over batches, weighted by batch size);
- ``after_optimizer_step(step, total_steps) -> None``: the explicit hook where momentum
  encoders and queues are updated (``step`` counts from 1).

and optionally ``sync_batchnorm = False`` (see DDP below).

``Trainer.fit`` owns devices, precision and DDP (Lightning Fabric), the epoch loop, the
per-epoch ``metrics.csv``, the resume state ``checkpoint.pt`` and ``best.pt`` on a monitored
value (atomic; snapshotted every epoch, written behind training every ``checkpoint_every_s``
and when fit ends), early stopping, ``resume`` and the NaN/inf guard. Batches come from
callables ``train_batches(epoch)`` / ``val_batches(epoch)`` returning sized iterables, so data
can be tensors already on the device, indexed and augmented there; ``val_batches`` may return
None to skip validation after that epoch (pretraining validates at its health reads only).

DDP (``devices`` x ``num_nodes`` > 1) computes what one device computes on the global batch:
``train_batches`` yields this rank's equal share of each global batch; batch norm uses the
global batch's statistics (``engine.sync_batchnorm``) unless the task sets
``sync_batchnorm = False``; Fabric averages the gradients over ranks, so a loss that is
this rank's mean over its share gives the one-device gradient; the logged epoch means are
averaged over ranks. ``val_batches`` yields whole batches on every rank (validation is not
split), so a validation step must not gather across ranks. Rank 0 alone writes files.

Typical use::

    trainer = Trainer(TrainerConfig(epochs=10))
    task = MyTask(...)                    # moved to trainer.device by fit
    opt = torch.optim.Adam(task.parameters(), lr=1e-3)
    history = trainer.fit(task, opt, train_batches, val_batches, out_dir=out, fingerprint=cfg)
"""

from __future__ import annotations

import contextlib
import math
import numbers
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medssl.artifacts import write_csv
from medssl.engine.checkpoint import (
    BackgroundWriter,
    check_fingerprint,
    checkpoint_record,
    load_checkpoint,
    rng_state,
    set_rng_state,
    snapshot,
)
from medssl.engine.sync_batchnorm import synchronised_batchnorm
from medssl.errors import ConfigError, TrainingError
from medssl.runfiles import BEST, CHECKPOINT, METRICS


@dataclass
class TrainerConfig:
    epochs: int = 100  # thesis §5.2 (pretraining and fine-tuning)
    accelerator: str = "auto"  # auto | cpu | cuda
    devices: int = 1  # devices (processes) per machine; > 1 runs DDP
    num_nodes: int = 1  # machines (Fabric's num_nodes); > 1 under Slurm srun, see README
    precision: str | None = (
        None  # 32-true | bf16-mixed; None: bf16-mixed on GPUs and CPUs with bf16 units, else 32-true
    )
    seed: int = 0
    monitor: str | None = None  # a log key (e.g. "val_loss", "val_mcc") that selects best.pt
    monitor_mode: str = "min"  # min | max
    patience: int | None = None  # epochs without improvement of `monitor` before stopping
    progress_bar: bool = True
    epoch_log: bool = False  # print one line per epoch (for runs without a progress bar)
    channels_last: bool = False  # convert the model's 4-D weights to channels_last (GPUs like it)
    check_every: int = 1  # steps between host reads of the loss (NaN guard, progress postfix)
    # seconds between writes of the resume state (checkpoint.pt, with best.pt): every epoch's
    # state is kept in memory and written when this much time has passed since the last write,
    # and always when fit ends, however it ends (a kill -9 loses at most this much training);
    # 0 writes every epoch. Not part of a run's identity.
    checkpoint_every_s: float = 60.0

    def __post_init__(self) -> None:
        """The counts are checked where the config is made (a preset, ``--set``, a benchmark's
        plan), not when the first epoch would start: ``--set trainer.epochs=-2`` once planned
        runs at "-1 s" and failed 150 s into the benchmark."""
        for name in ("epochs", "devices", "num_nodes", "check_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"trainer.{name}: expected an integer >= 1, got {value!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ConfigError(
                f"trainer.patience: expected an integer >= 1 or null, got {self.patience!r}"
            )


def resolve_accelerator(accelerator: str) -> str:
    if accelerator not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"trainer.accelerator: {accelerator!r} is not one of auto, cpu, cuda")
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "trainer.accelerator: cuda was asked for but no CUDA GPU is visible; use --device cpu"
        )
    return accelerator


def cpu_has_bf16_units() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX flags in /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool({"avx512_bf16", "amx_bf16"} & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def default_precision(accelerator: str) -> str:
    """bf16 autocast on GPUs and CPUs that have bf16 units, fp32 elsewhere.

    On CPUs the choice rests on a parity test (tests/engine/test_precision.py: the same short
    pretraining in fp32 and bf16 gives the same loss curve and kNN reading within tolerance);
    without bf16 units autocast would only emulate bf16, slower than fp32.
    """
    if accelerator == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    if accelerator == "cpu" and cpu_has_bf16_units():
        return "bf16-mixed"
    return "32-true"


class Trainer:
    def __init__(self, config: TrainerConfig | None = None, *, loggers: Sequence[Any] = ()) -> None:
        """``loggers``: Lightning Fabric loggers that get every epoch's row (e.g.
        ``engine.tensorboard.run_loggers``); they are no part of the run's configuration."""
        from lightning_fabric import Fabric

        self.config = cfg = config or TrainerConfig()
        if cfg.monitor_mode not in ("min", "max"):
            raise ConfigError(f"trainer.monitor_mode: {cfg.monitor_mode!r} is not one of min, max")
        if cfg.patience is not None and cfg.monitor is None:
            raise ConfigError(
                "trainer.patience is set but trainer.monitor is not; name the value to watch"
            )
        if cfg.checkpoint_every_s < 0:
            raise ConfigError(
                f"trainer.checkpoint_every_s: expected >= 0 (0: every epoch), got "
                f"{cfg.checkpoint_every_s}"
            )
        if cfg.epochs < 1:
            raise ConfigError(f"trainer.epochs: expected >= 1, got {cfg.epochs}")
        for name in ("devices", "num_nodes"):
            if getattr(cfg, name) < 1:
                raise ConfigError(f"trainer.{name}: expected >= 1, got {getattr(cfg, name)}")
        self.accelerator = resolve_accelerator(cfg.accelerator)
        self.precision = cfg.precision or default_precision(self.accelerator)
        if self.precision not in ("32-true", "bf16-mixed"):
            raise ConfigError(
                f"trainer.precision: {self.precision!r} is not one of 32-true, bf16-mixed"
            )
        if self.accelerator == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.fabric = Fabric(
            accelerator=self.accelerator,
            devices=cfg.devices,
            num_nodes=cfg.num_nodes,
            precision=self.precision,
            loggers=list(loggers),
        )
        if cfg.devices * cfg.num_nodes > 1:
            self.fabric.launch()

    @property
    def device(self) -> torch.device:
        return self.fabric.device

    def seed_everything(self, seed: int | None = None) -> None:
        seed = self.config.seed if seed is None else seed
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)

    def fit(
        self,
        task: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_batches: Callable[[int], Iterable[Any]],
        val_batches: Callable[[int], Iterable[Any] | None] | None = None,
        *,
        out_dir: str | Path,
        scheduler: Any | None = None,
        epoch_start: Callable[[int], None] | None = None,
        epoch_end: Callable[[int, dict[str, Any]], Mapping[str, Any] | None] | None = None,
        resume: bool = False,
        fingerprint: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """Train ``task`` for ``config.epochs`` epochs; return the per-epoch history.

        ``scheduler`` (optional, e.g. :func:`medssl.engine.optim.build_schedule`) is stepped
        after every optimizer step. ``epoch_start(epoch)`` is called when the task has been put
        in training mode, before the epoch's first step. ``epoch_end(epoch, logs)`` may
        return extra logs (they join the epoch's row and may be the monitored value) or raise
        TrainingError to stop the run (after the row is written). With ``resume=True`` the run
        continues from ``out_dir/checkpoint.pt`` (if present) and ends at the same weights as an
        uninterrupted run; a checkpoint with another ``fingerprint`` is refused.

        Under DDP every ``nn.BatchNorm*d`` of ``task`` normalises with the statistics of the
        global batch during ``fit`` (``engine.sync_batchnorm``), as on one device, unless the
        task sets ``sync_batchnorm = False`` because it normalises per device on purpose.
        """
        sync_bn = self.fabric.world_size > 1 and getattr(task, "sync_batchnorm", True)
        bn = synchronised_batchnorm(task, self.device) if sync_bn else contextlib.nullcontext()
        with bn:
            return self._fit(
                task,
                optimizer,
                train_batches,
                val_batches,
                out_dir=out_dir,
                scheduler=scheduler,
                epoch_start=epoch_start,
                epoch_end=epoch_end,
                resume=resume,
                fingerprint=fingerprint,
            )

    def _fit(
        self,
        task: nn.Module,
        optimizer: torch.optim.Optimizer,
        train_batches: Callable[[int], Iterable[Any]],
        val_batches: Callable[[int], Iterable[Any] | None] | None,
        *,
        out_dir: str | Path,
        scheduler: Any | None,
        epoch_start: Callable[[int], None] | None,
        epoch_end: Callable[[int, dict[str, Any]], Mapping[str, Any] | None] | None,
        resume: bool,
        fingerprint: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        cfg = self.config
        run = self._setup(task, optimizer, scheduler, Path(out_dir), dict(fingerprint))
        self._restore(run, resume)
        if run.epoch >= cfg.epochs:
            return run.history
        run.total_steps = _length(train_batches(run.epoch), "train_batches") * cfg.epochs
        best = BestTracker(cfg.monitor, cfg.monitor_mode, run.history)
        bar = _progress(
            cfg.progress_bar and self.fabric.is_global_zero, run.total_steps, run.global_step
        )
        try:
            for epoch in range(run.epoch, cfg.epochs):
                t0 = time.perf_counter()
                run.task.train()
                if epoch_start is not None:
                    epoch_start(epoch)
                sums, n_steps, n_seen = self._train_epoch(run, epoch, train_batches(epoch), bar, t0)
                row, stop = self._end_epoch(run, epoch, sums, n_steps, val_batches, epoch_end)
                row["epoch_time_s"] = round(time.perf_counter() - t0, 3)
                row["img_per_s"] = round(n_seen / max(row["epoch_time_s"], 1e-9), 1)
                run.history.append(row)
                self.fabric.log_dict(_scalars(row), step=row["step"])  # rank 0 logs
                if cfg.epoch_log and self.fabric.is_global_zero:
                    print(_epoch_line(row, epoch, cfg), flush=True)
                improved = stop is None and best.update(row)
                self._save(run, epoch, improved, best.value)
                if stop is not None:
                    raise stop
                if cfg.patience is not None and best.stale_epochs >= cfg.patience:
                    break
        finally:
            if bar is not None:
                bar.close()
            if self.fabric.is_global_zero:
                self._flush(run)  # the last finished epoch's state, however fit ends
            run.writer.close()  # ... on disk before fit returns
            for logger in self.fabric.loggers:
                logger.finalize("success")  # flushed and closed (rank 0)
        self.fabric.barrier()  # ... and before any rank reads them
        return run.history

    def _setup(self, task, optimizer, scheduler, out_dir: Path, fingerprint) -> _FitState:
        """Fabric's wrapped model and optimizer for ``task``, in the state of a fresh run."""
        out_dir.mkdir(parents=True, exist_ok=True)
        if self.config.channels_last:
            task = task.to(memory_format=torch.channels_last)
        model, opt = self.fabric.setup(task, optimizer)
        for name in ("training_step", "validation_step"):
            if hasattr(task, name) and self.fabric.world_size > 1:
                model.mark_forward_method(name)
        return _FitState(task, model, opt, scheduler, out_dir, fingerprint)

    def _restore(self, run: _FitState, resume: bool) -> None:
        """Continue from ``checkpoint.pt`` with ``resume`` (same fingerprint only); refuse to
        start over an earlier run's checkpoint without it; else seed a fresh run."""
        path = run.out_dir / CHECKPOINT
        if resume and path.is_file():
            state = load_checkpoint(path)
            check_fingerprint(state["fingerprint"], run.fingerprint, path=path)
            run.task.load_state_dict(state["model"])
            run.opt.load_state_dict(state["optimizer"])
            if run.scheduler is not None and state.get("scheduler") is not None:
                run.scheduler.load_state_dict(state["scheduler"])
            set_rng_state(state["rng"])
            run.history = list(state["history"])
            run.epoch, run.global_step = int(state["epoch"]) + 1, int(state["global_step"])
        elif path.is_file():
            raise TrainingError(
                f"{path} exists: this folder holds an earlier run; pass --resume to continue "
                "it, or choose another --out"
            )
        else:
            self.seed_everything()

    def _train_epoch(self, run: _FitState, epoch: int, batches, bar, t0: float):
        """One pass over ``batches`` (the task in training mode): (summed logs, steps, images of
        the global batches)."""
        cfg, fabric = self.config, self.fabric
        sums: dict[str, torch.Tensor | float] = {}
        pending: list[tuple[int, torch.Tensor, dict[str, Any]]] = []
        last_finite: dict[str, float] = {}
        n_steps = n_seen = 0
        for batch in batches:
            with fabric.autocast():
                loss, logs = run.model.training_step(batch)
            run.opt.zero_grad(set_to_none=True)
            fabric.backward(loss)
            run.opt.step()
            if run.scheduler is not None:
                run.scheduler.step()
            run.global_step += 1
            n_steps += 1
            run.task.after_optimizer_step(run.global_step, run.total_steps)
            logs = {"loss": loss.detach(), **logs}
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + (
                    v.detach().float() if torch.is_tensor(v) else float(v)
                )
            pending.append((run.global_step, loss.detach(), logs))
            n_seen += _batch_len(batch) * fabric.world_size  # images of the global batch
            if len(pending) >= cfg.check_every:
                last_finite = _check_finite(pending, last_finite, epoch)
                pending = []
                if bar is not None:
                    rate = n_seen / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix_str(
                        f"epoch {epoch + 1}/{cfg.epochs} loss {last_finite['loss']:.4f} {rate:.0f} img/s"
                    )
            if bar is not None:
                bar.update(1)
        _check_finite(pending, last_finite, epoch)
        if n_steps == 0:
            raise TrainingError(
                f"epoch {epoch}: train_batches yielded no batch; is the training split empty?"
            )
        return sums, n_steps, n_seen

    def _end_epoch(self, run, epoch, sums, n_steps, val_batches, epoch_end):
        """The epoch's row (train means over ranks, lr, validation, epoch_end's logs) and the
        TrainingError epoch_end raised to stop the run, if any."""
        row: dict[str, Any] = {"epoch": epoch, "step": run.global_step}
        row.update({f"train_{k}": v / n_steps for k, v in self._global_mean(sums).items()})
        row["lr"] = float(run.opt.param_groups[0]["lr"])
        batches = val_batches(epoch) if val_batches is not None else None
        if batches is not None:  # None: no validation after this epoch
            logs = self._validate(run.model, run.task, batches)
            row.update({f"val_{k}": v for k, v in logs.items()})
        stop: TrainingError | None = None
        if epoch_end is not None:
            try:
                row.update(epoch_end(epoch, dict(row)) or {})
            except TrainingError as e:
                stop = e
        return row, stop

    def _save(self, run: _FitState, epoch: int, improved: bool, best: float | None) -> None:
        """metrics.csv now; a snapshot of the epoch's resume state (and of its weights as best.pt
        when the monitor improved), written behind training when ``checkpoint_every_s`` has
        passed since the last write (rank 0); the rest is left to :meth:`_flush`."""
        if self.fabric.is_global_zero:
            write_csv(run.out_dir / METRICS, run.history, _columns(run.history))
            model = snapshot(run.task.state_dict())
            if improved:
                run.unwritten[BEST] = {"model": model, "epoch": epoch,
                                       "monitor": self.config.monitor, "value": best}  # fmt: skip
            run.unwritten[CHECKPOINT] = checkpoint_record({
                "model": model,
                "optimizer": snapshot(run.opt.state_dict()),
                "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
                "epoch": epoch,
                "global_step": run.global_step,
                "rng": rng_state(),
                "history": list(run.history),
                "fingerprint": run.fingerprint,
            })  # fmt: skip
            if time.monotonic() - run.written_at >= self.config.checkpoint_every_s:
                self._flush(run)
        self.fabric.barrier()

    def _flush(self, run: _FitState) -> None:
        """Hand the unwritten files (best.pt before checkpoint.pt) to the background writer."""
        if run.unwritten:
            run.writer.submit([(run.out_dir / name, obj) for name, obj in run.unwritten.items()])
            run.unwritten = {}
            run.written_at = time.monotonic()

    def _global_mean(self, sums: dict[str, torch.Tensor | float]) -> dict[str, float]:
        """The mean over ranks of each rank's epoch sums (the sums themselves on one device).

        Every rank averages over the same number of equal shares of the global batch, so the
        mean of the ranks' means is the global batch's mean: the curve in metrics.csv does
        not change with the number of devices.
        """
        if self.fabric.world_size == 1 or not sums:
            return {k: _to_float(v) for k, v in sums.items()}
        local = torch.stack(
            [torch.as_tensor(v, dtype=torch.float32, device=self.device) for v in sums.values()]
        )
        mean = self.fabric.all_reduce(local, reduce_op="mean")
        return dict(zip(sums, mean.cpu().tolist(), strict=True))

    @torch.no_grad()
    def _validate(
        self, model: nn.Module, task: nn.Module, batches: Iterable[Any]
    ) -> dict[str, float]:
        task.eval()
        sums: dict[str, torch.Tensor | float] = {}
        total = 0
        for batch in batches:
            n = _batch_len(batch)
            with self.fabric.autocast():
                logs = model.validation_step(batch)
            for k, v in logs.items():
                v = v.detach().float() if torch.is_tensor(v) else float(v)
                sums[k] = sums.get(k, 0.0) + v * n
            total += n
        task.train()
        return {k: _to_float(v) / max(total, 1) for k, v in sums.items()}


def _check_finite(
    pending: list[tuple[int, torch.Tensor, dict[str, Any]]], last: dict[str, float], epoch: int
) -> dict[str, float]:
    """Read the pending steps' logs to the host in one transfer; raise at the first non-finite loss."""
    if not pending:
        return last
    losses = torch.stack([p[1].float() for p in pending]).cpu()
    for (step, _, logs), value in zip(pending, losses.tolist(), strict=True):
        if not math.isfinite(value):
            shown = ", ".join(f"{k}={v:.6g}" for k, v in last.items()) or "none (first step)"
            raise TrainingError(
                f"loss became {value} at step {step} (epoch {epoch}); last finite values: {shown}. "
                "Lower the learning rate (--set optimizer.lr=...) or use precision 32-true; "
                "the last checkpoint.pt holds the previous epoch"
            )
        last = {k: _to_float(v) for k, v in logs.items()}
    return last


def _epoch_line(row: Mapping[str, Any], epoch: int, cfg: TrainerConfig) -> str:
    """``epoch 3/20: train_loss 0.9120, val_loss 0.8800, val_mcc 0.3100 (4.2 s)``."""
    keys = [k for k in ("train_loss", "val_loss", cfg.monitor) if k and k in row]
    shown = ", ".join(f"{k} {float(row[k]):.4f}" for k in dict.fromkeys(keys))
    return f"epoch {epoch + 1}/{cfg.epochs}: {shown} ({row.get('epoch_time_s', 0):.1f} s)"


def _scalars(row: Mapping[str, Any]) -> dict[str, float]:
    """The numeric columns of a metrics.csv row but ``step`` (the loggers' x axis)."""
    return {
        k: float(v)
        for k, v in row.items()
        if k != "step" and isinstance(v, numbers.Real) and not isinstance(v, bool)
    }


def _to_float(v: torch.Tensor | float) -> float:
    return float(v.item()) if torch.is_tensor(v) else float(v)


def _batch_len(batch: Any) -> int:
    if torch.is_tensor(batch):
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        return _batch_len(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_len(batch[0])
    return 1


def _length(batches: Iterable[Any], name: str) -> int:
    try:
        return len(batches)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(
            f"{name}(epoch) must return a sized iterable (a list, a DataLoader, or an object with "
            "__len__) so that schedules and the ETA know the number of steps"
        ) from None


def _columns(history: list[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for row in history:
        cols.extend(k for k in row if k not in cols)
    return cols


def _improves(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return best is None or (value < best if mode == "min" else value > best)


class BestTracker:
    """The best value of the monitored log so far and the epochs since it (early stopping),
    rebuilt from a resumed history; no monitor: never improves, never stale."""

    def __init__(self, key: str | None, mode: str, history: Sequence[Mapping[str, Any]]) -> None:
        self.key, self.mode = key, mode
        self.value: float | None = None
        self.stale_epochs = 0
        for row in history:
            self._observe(row.get(key) if key is not None else None)

    def _observe(self, value: Any) -> bool:
        if value is not None and _improves(float(value), self.value, self.mode):
            self.value, self.stale_epochs = float(value), 0
            return True
        self.stale_epochs += 1
        return False

    def update(self, row: Mapping[str, Any]) -> bool:
        """Whether ``row``'s monitored value improves on the best (a missing key is an error)."""
        if self.key is None:
            return False
        if self.key not in row:
            raise ConfigError(
                f"trainer.monitor: {self.key!r} is not among this run's logs "
                f"({', '.join(sorted(row))}); choose one of them"
            )
        return self._observe(row[self.key])


@dataclass
class _FitState:
    """What one ``fit`` carries from epoch to epoch."""

    task: nn.Module
    model: nn.Module  # the task wrapped by Fabric
    opt: torch.optim.Optimizer
    scheduler: Any | None
    out_dir: Path
    fingerprint: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    # best.pt and checkpoint.pt snapshots not yet written (in writing order), the thread that
    # writes them while training goes on, and when it was last given some
    writer: BackgroundWriter = field(default_factory=BackgroundWriter)
    unwritten: dict[str, dict[str, Any]] = field(default_factory=dict)
    written_at: float = field(default_factory=time.monotonic)
    epoch: int = 0  # the next epoch to train
    global_step: int = 0
    total_steps: int = 0


def _progress(enabled: bool, total: int, done: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # One bar over the whole run: its rate is steps/s and its ETA covers all remaining epochs;
    # images per second are logged per epoch (img_per_s) and shown in the postfix.
    return tqdm(total=total, initial=done, unit="step", dynamic_ncols=True, desc="train")
