"""The optimizer and its learning-rate schedule, one config for pretraining and fine-tuning.

``OptimizerConfig`` holds the rule, the base rate and how the rate depends on the batch and on
the step:

- ``lr`` is the rate at ``reference_batch``; ``lr_scaling`` scales it to the run's batch size:
  ``linear`` (Goyal et al. 2017, the rule of SimCLR/BYOL/MoCo for SGD/LARS: lr x B / B_ref),
  ``sqrt`` (the rule for Adam-type optimizers, Malladi et al. 2022, "On the SDEs and scaling
  rules for adaptive gradient algorithms": lr x sqrt(B / B_ref)) or ``none``.
- ``schedule``: ``constant`` or ``cosine`` decay to ``min_lr_fraction`` of the rate (Loshchilov
  & Hutter 2017, SGDR; used by SimCLR, BYOL, MoCo v2), after a linear warm-up over the first
  ``warmup_fraction`` of the run's steps (Goyal et al. 2017; SimCLR and BYOL warm up 10 of
  their 100 epochs, 0.1), so the same preset suits a run of any length. The schedule is a
  function of the optimizer step, stepped by the trainer after every step.

``build_optimizer`` wraps torch's optimizers (and lightly's LARS); ``build_schedule`` returns a
``torch.optim.lr_scheduler.LambdaLR``, so checkpoints carry its state like any torch scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

from medssl.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "lars")
SCALINGS = ("none", "linear", "sqrt")
SCHEDULES = ("constant", "cosine")


@dataclass
class OptimizerConfig:
    name: str = "adam"  # adam | adamw | sgd | lars
    lr: float = 1e-3  # the rate at reference_batch (scaled by lr_scaling)
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd and lars
    lr_scaling: str = "none"  # none | linear | sqrt (see the module docstring)
    reference_batch: int = 256  # the batch size `lr` is given for (the papers' 256)
    schedule: str = "constant"  # constant | cosine
    warmup_fraction: float = 0.0  # share of the run's steps in linear warm-up from 0
    min_lr_fraction: float = 0.0  # cosine floor, as a fraction of the rate


def check_optimizer(cfg: OptimizerConfig, where: str = "optimizer") -> None:
    for field, value, valid in (
        ("name", cfg.name, OPTIMIZERS),
        ("lr_scaling", cfg.lr_scaling, SCALINGS),
        ("schedule", cfg.schedule, SCHEDULES),
    ):
        if value not in valid:
            raise ConfigError(f"{where}.{field}: {value!r} is not one of {', '.join(valid)}")
    if not cfg.lr > 0 or cfg.weight_decay < 0 or not 0 <= cfg.warmup_fraction < 1:
        raise ConfigError(
            f"{where}: lr must be > 0, weight_decay >= 0 and warmup_fraction in [0, 1); got "
            f"lr={cfg.lr}, weight_decay={cfg.weight_decay}, warmup_fraction={cfg.warmup_fraction}"
        )
    if cfg.reference_batch < 1 or not 0 <= cfg.min_lr_fraction <= 1:
        raise ConfigError(
            f"{where}: reference_batch must be >= 1 and min_lr_fraction in [0, 1]; got "
            f"{cfg.reference_batch}, {cfg.min_lr_fraction}"
        )


def scaled_lr(cfg: OptimizerConfig, batch_size: int) -> float:
    """The base rate at ``batch_size`` under ``cfg.lr_scaling``."""
    ratio = batch_size / cfg.reference_batch
    if cfg.lr_scaling == "linear":
        return cfg.lr * ratio
    if cfg.lr_scaling == "sqrt":
        return cfg.lr * math.sqrt(ratio)
    return cfg.lr


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    cfg: OptimizerConfig,
    *,
    batch_size: int,
    device: torch.device | None = None,
) -> torch.optim.Optimizer:
    """The optimizer of ``cfg`` at the rate scaled to ``batch_size``.

    Adam/AdamW are fused (one kernel over all parameters) on CUDA and CPU devices, where fused
    Adam steps a ResNet-18 about 4x faster than the per-tensor loop on the CPU.
    """
    check_optimizer(cfg)
    params = list(params)
    lr = scaled_lr(cfg, batch_size)
    if cfg.name in ("adam", "adamw"):
        cls = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
        fused = {"fused": True} if device is not None and device.type in ("cuda", "cpu") else {}
        return cls(params, lr=lr, weight_decay=cfg.weight_decay, **fused)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    from lightly.utils.lars import LARS

    return LARS(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total_steps: int, warmup_steps: int, cfg: OptimizerConfig) -> float:
    """Multiplier of the base rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    floor = cfg.min_lr_fraction
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_schedule(
    optimizer: torch.optim.Optimizer, cfg: OptimizerConfig, *, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """The per-step schedule of ``cfg`` (None for a constant rate without warm-up)."""
    if cfg.schedule == "constant" and cfg.warmup_fraction == 0:
        return None
    total = steps_per_epoch * epochs
    warmup = round(cfg.warmup_fraction * total)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, cfg)
    )
