"""Batch streams of fine-tuning tensors already on the training device.

``TrainBatches`` shuffles and augments (``data.augment.augment_supervised``, the same geometry
for an image and its mask) as a pure function of (seed, epoch), so a resumed run sees the
same batches; ``eval_batches`` walks a split in order. Batches are dicts of tensors with the
same first dimension: images ``x`` (N, 1, H, W) and ``y`` (N,) labels or ``mask``
(N, 1, H, W).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from medssl.data.augment import SupervisedAugmentConfig, augment_supervised


class TrainBatches:
    """Shuffled, augmented mini-batches of device tensors for one epoch (a sized iterable).

    A last batch of a single image joins the one before it (batch norm cannot train on one
    image, and dropping it would lose an image each epoch), so batches hold 2 to
    2 x batch_size - 1 images.
    """

    def __init__(
        self,
        data: dict[str, torch.Tensor],
        batch_size: int,
        *,
        seed: int,
        epoch: int,
        augment: SupervisedAugmentConfig,
    ) -> None:
        n = len(next(iter(data.values())))
        self.generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        self.perm = torch.randperm(n, generator=self.generator)
        self.data, self.batch_size, self.augment = data, batch_size, augment
        starts = list(range(0, n, batch_size))
        if len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()
        self.bounds = list(zip(starts, [*starts[1:], n], strict=True))

    def __len__(self) -> int:
        return len(self.bounds)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        device = next(iter(self.data.values())).device
        for start, stop in self.bounds:
            idx = self.perm[start:stop].to(device)
            batch = {key: t[idx] for key, t in self.data.items()}
            batch["x"], mask = augment_supervised(
                batch["x"], batch.get("mask"), self.augment, self.generator
            )
            if mask is not None:
                batch["mask"] = mask
            yield batch


def eval_batches(
    data: dict[str, torch.Tensor], batch_size: int
) -> Iterator[dict[str, torch.Tensor]]:
    """Consecutive slices of ``batch_size`` rows, in order."""
    n = len(next(iter(data.values())))
    for start in range(0, n, batch_size):
        yield {k: v[start : start + batch_size] for k, v in data.items()}


def n_batches(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)
