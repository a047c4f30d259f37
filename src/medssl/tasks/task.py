"""Fine-tuning tasks: one small protocol, one file per task, registered in ``TASKS``.

A task says what a labelled split becomes on the device, which network and loss train on it,
which validation value selects ``best.pt``, and what its metrics, saved predictions and figures
are. The fine-tuning loop (:func:`medssl.tasks.finetune.run_finetune`) knows no task: it asks
the registered one. A new task is one new module in this package that subclasses
:class:`FinetuneTask` and registers itself with ``@TASKS.register("name")``; the modules of
this package are imported on first use of the registry.

The network a task builds follows the trainer's protocol (``engine.trainer``):
``training_step(batch) -> (loss, logs)``, ``after_optimizer_step(step, total)``, plus
``predict_step(batch) -> {"probs": ..., "loss_sum": ...}`` for evaluation.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from medssl.data.labelled import SplitData
from medssl.registry import Registry

if TYPE_CHECKING:
    from medssl.tasks.finetune import FinetuneConfig


class FinetuneTask:
    """Base class of a fine-tuning task; ``cfg`` is the run's resolved FinetuneConfig."""

    name: ClassVar[str]
    monitor: ClassVar[str]  # the val_* value that selects best.pt (higher is better)
    needs_masks: ClassVar[bool] = False  # train/val/test keep only images with a mask
    epoch_metrics: ClassVar[tuple[str, ...]] = ()  # logged each epoch on val as val_<name>
    summary_metrics: ClassVar[tuple[str, ...]] = ()  # the final line of `medssl finetune`

    def __init__(self, cfg: FinetuneConfig) -> None:
        self.cfg = cfg

    def build(self, init: str, train: SplitData) -> nn.Module:
        """The network (with its loss) to train, its encoder from ``init`` (random or a file)."""
        raise NotImplementedError

    def tensors(self, split: SplitData, device: torch.device) -> dict[str, torch.Tensor]:
        """The split as device tensors: ``x`` (N, 1, H, W) in [-1, 1] and the targets."""
        raise NotImplementedError

    def metrics(
        self, split: SplitData, probs: np.ndarray, loss: float, *, distances: bool = True
    ) -> dict[str, float]:
        """Every scalar metric of a split from its predictions (nan = undefined);
        ``distances=False``: skip what is costly (per-epoch validation)."""
        raise NotImplementedError

    def epoch_logs(self, val: dict[str, float], row: dict[str, Any]) -> dict[str, float]:
        """The epoch's extra logs from the validation metrics ``val`` and the epoch's ``row``."""
        return {f"val_{k}": val[k] for k in self.epoch_metrics}

    def save_predictions(
        self, out: Path, split_name: str, split: SplitData, probs: np.ndarray
    ) -> None:
        """``predictions_<split>.npz`` (and whatever per-image files the task keeps)."""
        raise NotImplementedError

    def split_figures(
        self, out: Path, split_name: str, split: SplitData, probs: np.ndarray,
        metrics: dict[str, float], seed: int,
    ) -> None:  # fmt: skip
        """Figures of one split (drawn for the splits in ``cfg.figure_splits``)."""

    def history_figures(self, out: Path, history: list[dict[str, Any]]) -> None:
        """Figures of the per-epoch records."""


TASKS: Registry[type[FinetuneTask]] = Registry("task")
_DISCOVERED = False


def get_task(name: str) -> type[FinetuneTask]:
    _discover()
    return TASKS.get(name)


def task_names() -> list[str]:
    _discover()
    return TASKS.names()


def _discover() -> None:
    """Import every module of this package once, so that each task registers itself."""
    global _DISCOVERED
    if not _DISCOVERED:
        _DISCOVERED = True
        package = importlib.import_module("medssl.tasks")
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"medssl.tasks.{info.name}")
