"""What a bench path trained: the evidence that paths (a), (b) and (c) ran the same model and step.

A fingerprint names the task's class, its parameter counts, a checksum of its initial
parameters, the optimizer and the number of optimizer steps it took, the precision, and the
shape and dtype of the input it was fed. The paths of one method must have equal
fingerprints; speed is the only thing allowed to differ.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import nn


def parameter_checksum(module: nn.Module) -> str:
    """sha1 (first 16 hex digits) of the parameters' bytes, in ``named_parameters`` order."""
    h = hashlib.sha1()
    for name, p in module.named_parameters():
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def optimizer_steps(optimizer: torch.optim.Optimizer) -> int:
    """Steps the optimizer took, from its per-parameter ``step`` state (Adam, AdamW); 0 if none."""
    steps = [int(s["step"]) for s in optimizer.state.values() if "step" in s]
    return max(steps, default=0)


def fingerprint(
    task: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    init_checksum: str,
    input_shape: list[int] | None,
    input_dtype: str | None,
    precision: str,
) -> dict[str, Any]:
    return {
        "task": type(task).__name__,
        "parameters": sum(p.numel() for p in task.parameters()),
        "trainable_parameters": sum(p.numel() for p in task.parameters() if p.requires_grad),
        "init_checksum": init_checksum,
        "optimizer": type(optimizer).__name__,
        "optimizer_steps": optimizer_steps(optimizer),
        "precision": precision,
        "input_shape": input_shape,
        "input_dtype": input_dtype,
    }
