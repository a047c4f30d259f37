"""Path (c) of ``medssl bench``: the input pipeline users build today.

lightly's PIL transform for the method (``SimCLRTransform``, ``MoCoV2Transform``,
``BYOLTransform``) in a ``torch.utils.data.DataLoader`` with worker processes (persistent,
one per CPU by default, pinned memory on CUDA), over the same uint8 images as path (b)
converted once to 8-bit grey PIL images. Each batch is copied to the device with
``.to(device, non_blocking=True)``, as a training script would.

The transforms are set up for 1-channel 64 px input and the thesis augmentation wherever
lightly exposes the same knob (crop scale, flip, brightness/contrast jitter and its
probability; saturation, hue and random greyscale are 0, they mean nothing on grey), with
``normalize`` mean 0.5 / std 0.5, i.e. [-1, 1] as medssl's views. Blur and solarisation keep
each method's lightly defaults (they are part of what "the method's lightly transform" is).
A method without a registered transform here uses SimCLR's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from medssl.data.augment import AugmentConfig
from medssl.registry import Registry

GREY_NORMALIZE = {"mean": [0.5], "std": [0.5]}  # [0, 1] -> [-1, 1], as data.augment

ReferenceTransform = Callable[[Image.Image], list[torch.Tensor]]
REFERENCE_TRANSFORMS: Registry[Callable[[AugmentConfig], ReferenceTransform]] = Registry(
    "lightly reference transform"
)
DEFAULT_TRANSFORM = "simclr"


def _common(aug: AugmentConfig) -> dict[str, Any]:
    """The knobs that lightly's SimCLR, MoCo v2 and BYOL view transforms share with AugmentConfig."""
    return {
        "input_size": aug.size,
        "min_scale": aug.crop_scale[0],
        "hf_prob": aug.hflip_p,
        "cj_prob": aug.jitter_p,
        "cj_strength": 1.0,
        "cj_bright": aug.brightness,
        "cj_contrast": aug.contrast,
        "cj_sat": 0.0,
        "cj_hue": 0.0,
        "random_gray_scale": 0.0,
        "normalize": GREY_NORMALIZE,
    }


@REFERENCE_TRANSFORMS.register("simclr")
def _simclr(aug: AugmentConfig) -> ReferenceTransform:
    from lightly.transforms import SimCLRTransform

    return SimCLRTransform(**_common(aug))


@REFERENCE_TRANSFORMS.register("moco")
def _moco(aug: AugmentConfig) -> ReferenceTransform:
    from lightly.transforms import MoCoV2Transform

    return MoCoV2Transform(**_common(aug))


@REFERENCE_TRANSFORMS.register("byol")
def _byol(aug: AugmentConfig) -> ReferenceTransform:
    from lightly.transforms import BYOLTransform, BYOLView1Transform, BYOLView2Transform

    return BYOLTransform(BYOLView1Transform(**_common(aug)), BYOLView2Transform(**_common(aug)))


def reference_transform(method: str, aug: AugmentConfig) -> ReferenceTransform:
    """lightly's transform for ``method`` (SimCLR's when none is registered for it)."""
    name = method if method in REFERENCE_TRANSFORMS else DEFAULT_TRANSFORM
    return REFERENCE_TRANSFORMS.get(name)(aug)


class PILViews(Dataset):
    """images: uint8 (N, S, S), held as grey PIL images; item i -> [view0, view1], each (1, H, W)."""

    def __init__(self, images: np.ndarray, transform: ReferenceTransform) -> None:
        self.images = [Image.fromarray(np.ascontiguousarray(im), mode="L") for im in images]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> list[torch.Tensor]:
        return self.transform(self.images[i])


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def reference_loader(
    images: np.ndarray,
    method: str,
    aug: AugmentConfig,
    *,
    batch_size: int,
    num_workers: int,
    seed: int,
    pin_memory: bool,
) -> DataLoader:
    """The reference DataLoader: shuffled, last partial batch dropped (as medssl's stream)."""
    return DataLoader(
        PILViews(images, reference_transform(method, aug)),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
    )


def to_device(
    device: torch.device, *, channels_last: bool
) -> Callable[[list[torch.Tensor]], tuple[torch.Tensor, ...]]:
    """The host-to-device copy of a reference batch [view0 (N, 1, H, W), view1 ...]."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def move(batch: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(v.to(device, non_blocking=True, memory_format=fmt) for v in batch)

    return move
