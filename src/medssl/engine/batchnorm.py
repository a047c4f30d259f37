"""Batch-norm running statistics re-estimated from data ("precise BN", Wu & Johnson 2021).

With few optimizer steps per epoch the exponential running averages lag weights that change
quickly, and eval-mode outputs (validation, the kNN monitor) read an older network.
``recompute_bn`` resets every BatchNorm's running mean and variance and replaces them by their
exact average over the given batches in train mode — ``torch.optim.swa_utils.update_bn``,
with a batch of a single image merged into the one before it (batch norm cannot train on one).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


@torch.no_grad()
def recompute_bn(module: nn.Module, batches: Sequence[torch.Tensor]) -> None:
    """Running statistics of every BatchNorm in ``module`` from ``batches`` (each (B, ...),
    fed to ``module`` in train mode); the module's mode is restored (update_bn does)."""
    from torch.optim.swa_utils import update_bn

    chunks = list(batches)
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2:] = [torch.cat(chunks[-2:])]
    if sum(len(c) for c in chunks) < 2:
        return  # fewer than two images: no statistics to estimate, keep the running ones
    update_bn(chunks, module)
