"""Batch streams of tensors already on the training device: view pairs for pretraining
(``ViewBatches``) and labelled batches for fine-tuning.

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

from medssl.data.augment import AugmentConfig, SupervisedAugmentConfig, augment_supervised, views
from medssl.errors import ConfigError


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


class ViewBatches:
    """Sized, re-iterable stream of (view0, view1) batches from uint8 images on the device.

    images: uint8 (N, S, S) on the training device. Order and views come from a generator on
    that device seeded with ``seed``: the stream is a pure function of (images, seed), which
    is what makes ``--resume`` land on the same weights. The last batch is dropped when it
    is partial (``drop_last``) or smaller than 2 (batch norm and pairs need two).

    Under DDP (``world_size`` > 1) ``batch_size`` is the global batch. Every rank draws the
    same order and the views of the whole global batch from the same generator, and keeps
    its contiguous block of rows (rank 0 the first ``batch_size / world_size``): the ranks'
    views together are, row for row, the one-device batch, so N devices train on what one
    would. Each rank pays for augmenting the whole batch (25 ms per 64 images against a
    ~2 s training step on a 2-core CPU, README "Performance"); contiguous blocks make a
    rank's rows one group of the one-device batch (MoCo's shuffled BN, ``ssl.moco``).
    """

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int,
        aug: AugmentConfig,
        seed: int,
        *,
        shuffle: bool,
        drop_last: bool,
        channels_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if world_size > 1 and batch_size % world_size:
            raise ConfigError(
                f"batch_size {batch_size} must be a multiple of the {world_size} devices "
                "(it is the global batch, split evenly across them)"
            )
        self.images, self.batch_size, self.aug, self.seed = images, batch_size, aug, seed
        self.shuffle, self.channels_last = shuffle, channels_last
        self.rank, self.world_size = rank, world_size
        n = images.shape[0]
        full, rest = divmod(n, batch_size)
        partial = rest >= 2 and not drop_last
        if partial and rest % world_size:
            raise ConfigError(
                f"the last batch of {rest} images cannot be split evenly across the "
                f"{world_size} devices; choose a batch_size that divides the {n} images"
            )
        self.n_batches = full + (1 if partial else 0)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        dev = self.images.device
        g = torch.Generator(device=dev).manual_seed(self.seed)
        n = self.images.shape[0]
        order = (
            torch.randperm(n, generator=g, device=dev)
            if self.shuffle
            else torch.arange(n, device=dev)
        )
        for i in range(self.n_batches):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            pair = views(self.images[idx], self.aug, g, channels_last=self.channels_last)
            if self.world_size > 1:
                share = len(idx) // self.world_size
                rows = slice(self.rank * share, (self.rank + 1) * share)
                pair = tuple(v[rows] for v in pair)
            yield pair
