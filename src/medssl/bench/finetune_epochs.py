"""Fine-tuning epochs against a plain loop that does the same job.

A fine-tuning run's training phase (``tasks.finetune.train_network``: build the network, train
it for some epochs with the trainer, validate each epoch, keep the best weights, load them)
timed per epoch, and the same job written by hand (:func:`plain_finetune`): the same network,
optimizer, schedule and shuffled, augmented batches; after each epoch the validation split's
monitor in eval mode and ``torch.save`` of the weights when it improves; then the best weights
loaded. What medssl does on top — the BN statistics of ``bn_statistics``, the resume state and
metrics.csv written each epoch, the NaN guard and logs, Fabric — is what the ratio prices. The
step rates of ``finetune_rate`` time the steps alone.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from medssl.bench.measure import plain_step
from medssl.data.batches import TrainBatches
from medssl.data.database import Database
from medssl.data.labelled import SplitData, finetune_splits
from medssl.engine.optim import build_optimizer, build_schedule
from medssl.engine.trainer import Trainer, TrainerConfig
from medssl.errors import ConfigError
from medssl.runfiles import BEST
from medssl.tasks.finetune import (
    FinetuneConfig,
    predict,
    resolve_config,
    saved_config,
    supervised_augment_config,
    train_network,
)
from medssl.tasks.task import FinetuneTask, get_task, task_names


def finetune_epochs(
    db: Database,
    trainer_config: TrainerConfig,
    *,
    epochs: int,
    rounds: int,
    batch_size: int | None = None,
) -> dict[str, dict[str, Any]]:
    """{task: seconds per epoch of medssl's training phase and of the plain loop, and ratios}.

    The default fine-tuning preset (``batch_size`` overrides its batch) on ``trainer_config``'s
    device and precision, from random init. An epoch's time is that of a run of ``epochs``
    (>= 2) epochs less that of a 1-epoch run, over ``epochs - 1``: an epoch inside a run, what
    every run pays once (building, start-up, the final write of its files) cancelled. Both
    paths run one untimed epoch first, then ``rounds`` rounds of both in alternating order;
    each figure is the round with the median time, ``ratio_to_plain_loop`` = plain seconds /
    medssl seconds (1 = as fast as the plain loop), ``ratio_rounds`` each round's ratio.
    """
    if epochs < 2:
        raise ConfigError(
            f"--epochs: expected >= 2 (an epoch's time is a difference), got {epochs}"
        )
    out: dict[str, dict[str, Any]] = {}
    for task in task_names():
        overrides = [f"trainer.epochs={epochs}"]
        if batch_size is not None:
            overrides.append(f"batch_size={batch_size}")
        cfg = resolve_config(None, task=task, overrides=overrides, seed=trainer_config.seed)
        cfg = dataclasses.replace(
            cfg,
            trainer=dataclasses.replace(
                cfg.trainer,
                accelerator=trainer_config.accelerator,
                precision=trainer_config.precision,
                progress_bar=False,
                epoch_log=False,
            ),
        )
        kind = get_task(task)(cfg)
        splits, _ = finetune_splits(db, needs_masks=kind.needs_masks, task=task)
        times = _epoch_times(kind, cfg, splits, epochs, rounds)
        medssl, plain = (_median(times[p]) for p in ("medssl", "plain"))
        out[task] = {
            "preset": "default",
            "batch_size": cfg.batch_size,
            "epochs": epochs,
            "train_images": len(splits["train"]),
            "val_images": len(splits["val"]),
            "bn_statistics": cfg.bn_statistics,
            "seconds_per_epoch": round(medssl, 4),
            "plain_seconds_per_epoch": round(plain, 4),
            "rounds": [round(t, 4) for t in times["medssl"]],
            "plain_rounds": [round(t, 4) for t in times["plain"]],
            "ratio_to_plain_loop": round(plain / max(medssl, 1e-9), 3),
            "ratio_rounds": [
                round(p / max(m, 1e-9), 3)
                for m, p in zip(times["medssl"], times["plain"], strict=True)
            ],
        }
    return out


def _epoch_times(
    kind: FinetuneTask, cfg: FinetuneConfig, splits: dict[str, SplitData], epochs: int, rounds: int
) -> dict[str, list[float]]:
    """Each round's seconds per epoch of medssl and of the plain loop (see finetune_epochs)."""
    resolved = {"run": {"bench": kind.name}, "finetune": saved_config(cfg)}
    paths = {
        "medssl": lambda c, out: train_network(kind, c, "random", splits, out, resolved, False),
        "plain": lambda c, out: plain_finetune(kind, c, splits, out),
    }
    one = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, epochs=1))

    def timed(name: str, c: FinetuneConfig) -> float:
        with tempfile.TemporaryDirectory(prefix="medssl-bench-") as tmp:
            t0 = time.perf_counter()
            paths[name](c, Path(tmp))
            return time.perf_counter() - t0

    for name in paths:  # untimed: first calls into the kernels, allocator growth
        timed(name, one)
    times: dict[str, list[float]] = {"medssl": [], "plain": []}
    for i in range(rounds):
        # medssl first in even rounds, the plain loop first in odd ones: neither is always the
        # one that meets a load change or a cold cache first
        for name in ("medssl", "plain") if i % 2 == 0 else ("plain", "medssl"):
            # an epoch's time inside a run: a run of ``epochs`` epochs less a run of one, so
            # what every run pays once (building, start-up, the last write) cancels
            times[name].append((timed(name, cfg) - timed(name, one)) / (epochs - 1))
    return times


def plain_finetune(
    kind: FinetuneTask, cfg: FinetuneConfig, splits: dict[str, SplitData], out: Path
) -> torch.nn.Module:
    """The training phase of a fine-tuning run as a user writes it by hand: for each epoch the
    steps (forward under autocast when the precision is mixed, ``zero_grad``, ``backward``,
    ``step``, the schedule), the validation monitor in eval mode, ``torch.save`` of the weights
    when it improves; then the best weights loaded. No resume state, no metrics file, no
    BN statistics pass, no NaN guard, no Fabric."""
    trainer = Trainer(cfg.trainer)  # resolves the device and precision only; fit is not used
    device, precision = trainer.device, trainer.precision
    trainer.seed_everything()
    network = kind.build("random", splits["train"]).to(device)
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, cfg.optimizer, batch_size=cfg.batch_size)
    data = {s: kind.tensors(d, device) for s, d in splits.items() if len(d)}
    augment = supervised_augment_config(cfg)
    steps = len(
        TrainBatches(data["train"], cfg.batch_size, seed=cfg.seed, epoch=0, augment=augment)
    )
    schedule = build_schedule(
        optimizer, cfg.optimizer, steps_per_epoch=steps, epochs=cfg.trainer.epochs
    )
    metric, best = kind.monitor.removeprefix("val_"), float("-inf")
    for epoch in range(cfg.trainer.epochs):
        network.train()
        for batch in TrainBatches(
            data["train"], cfg.batch_size, seed=cfg.seed, epoch=epoch, augment=augment
        ):
            plain_step(network, optimizer, batch, device=device, precision=precision)
            if schedule is not None:
                schedule.step()
        probs, val_loss = predict(network, data["val"], cfg.eval_batch_size)
        value = kind.metrics(splits["val"], probs, val_loss, distances=False)[metric]
        if value > best:
            best = value
            torch.save(network.state_dict(), out / BEST)
    if (out / BEST).is_file():
        network.load_state_dict(torch.load(out / BEST, weights_only=True))
    return network


def _median(times: list[float]) -> float:
    """The round with the median time; of an even count the slower one (as the step rates
    take the lower of two median rates)."""
    return sorted(times)[len(times) // 2]
