"""The batch-norm statistics that eval-mode outputs read (Wu & Johnson 2021, "Rethinking
'Batch' in BatchNorm" §3).

With few optimizer steps per epoch the exponential running averages (PyTorch's default,
momentum 0.1) lag weights that change quickly, and eval-mode outputs (validation, the kNN
monitor) read an older network. Two remedies, both BatchNorm's own machinery:

- ``average_epoch_bn`` at the start of an epoch: the layers forget their running statistics
  and average the epoch's training batches with equal weights (``momentum=None``, BatchNorm's
  cumulative average). Free: the statistics are those the training steps compute anyway; they
  lag by at most the epoch's own steps and follow the training batches' augmentation.
- ``recompute_bn`` before validation ("precise BN"): the exact average over the given batches
  in train mode under the current weights — ``torch.optim.swa_utils.update_bn``, with a batch
  of a single image merged into the one before it (batch norm cannot train on one). It costs a
  forward pass over those batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

BN_STATISTICS = ("epoch", "precise", "running")
"""What fine-tuning's ``bn_statistics`` may name: the epoch's average, precise BN, or the
running averages left as PyTorch keeps them."""


def average_epoch_bn(module: nn.Module) -> None:
    """Make every BatchNorm of ``module`` that is in training mode average the batches to come
    with equal weights, from scratch (``reset_running_stats`` and ``momentum=None``); call it
    after ``module.train()`` at the start of each epoch. Layers in eval mode (a frozen encoder)
    keep their statistics."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats:
            m.reset_running_stats()
            m.momentum = None


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
