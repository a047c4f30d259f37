"""One timed training run of a bench path: ``Trainer.fit`` over a ``TimedStream``.

Every path of ``medssl bench`` — the ceiling, medssl's pipeline, the lightly reference, the
fine-tuning steps — goes through this function, so they share the trainer's step exactly
(autocast, ``training_step``, ``zero_grad``, backward, optimizer step,
``after_optimizer_step``, the NaN guard); only the batch stream differs. The run is one
trainer epoch of ``warmup + steps`` batches, written to a temporary folder that is deleted
(checkpoint and metrics are written after the clock stops).
"""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Any

import torch

from medssl.bench.fingerprint import fingerprint, parameter_checksum
from medssl.bench.memory import cuda_peak_mb, peak_rss_mb, reset_cuda_peak
from medssl.bench.timing import TimedStream
from medssl.engine.trainer import Trainer, TrainerConfig


def bench_trainer(config: TrainerConfig) -> Trainer:
    """A Trainer for one bench run: ``config``'s device, precision and channels_last, one epoch,
    no progress bar, no monitor."""
    return Trainer(
        dataclasses.replace(config, epochs=1, progress_bar=False, monitor=None, patience=None)
    )


def train_timed(
    trainer: Trainer,
    task: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    stream: TimedStream,
    *,
    compile: bool = False,
) -> dict[str, Any]:
    """Train ``task`` on ``stream`` with ``trainer``; return the rate, timing and fingerprint.

    ``compile``: ``torch.compile`` each child module of ``task`` in place (``Module.compile``:
    parameter names and the state dict stay as they are).
    """
    init = parameter_checksum(task)
    if compile:
        for child in task.children():
            child.compile()
    reset_cuda_peak(trainer.device)
    with tempfile.TemporaryDirectory(prefix="medssl-bench-") as tmp:
        trainer.fit(
            task,
            optimizer,
            lambda epoch: stream,
            None,
            out_dir=tmp,
            fingerprint={"bench": type(task).__name__},
        )
    return {
        "rate": round(stream.rate, 2),
        "seconds": round(stream.seconds or 0.0, 4),
        "items": stream.items,
        "steps": stream.steps,
        "warmup_steps": stream.warmup,
        "cuda_max_allocated_mb": cuda_peak_mb(trainer.device),
        "peak_rss_mb": peak_rss_mb(),
        "fingerprint": fingerprint(
            task,
            optimizer,
            init_checksum=init,
            input_shape=stream.input_shape,
            input_dtype=stream.input_dtype,
            precision=trainer.precision,
        ),
    }


def plain_timed(
    task: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    stream: TimedStream,
    *,
    device: torch.device,
    precision: str,
) -> dict[str, Any]:
    """The same steps as :func:`train_timed` in the loop a user writes by hand: forward under
    autocast when ``precision`` is a mixed one, ``zero_grad``, ``backward``, ``step``; no
    Fabric, no finite-loss checks, no logging. The reference the trainer is measured against
    (issue: fine-tuning at the speed of a plain loop)."""
    task.to(device).train()
    for batch in stream:
        plain_step(task, optimizer, batch, device=device, precision=precision)
    return {
        "rate": round(stream.rate, 2),
        "seconds": round(stream.seconds or 0.0, 4),
        "items": stream.items,
        "steps": stream.steps,
    }


def plain_step(
    task: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Any,
    *,
    device: torch.device,
    precision: str,
) -> None:
    """One step of a hand-written loop: forward under autocast when ``precision`` is a mixed
    one, ``zero_grad``, ``backward``, ``step``."""
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        loss, _ = task.training_step(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
