"""Batched augmentation on tensors, on the training device, with per-sample random parameters.

One call turns a batch of uint8 images (N, S, S) into float views (N, 1, 64, 64) in [-1, 1]:
random resized crop (per-sample boxes, one ``F.grid_sample`` over the batch, flip folded into
the same affine), brightness/contrast jitter, Gaussian blur (per-sample sigma, one grouped
convolution) and normalisation. No PIL, no worker processes, no host round trip: random
parameters are drawn on the images' device from the caller's ``torch.Generator``, so a view
stream is a pure function of (images, generator seed).

Presets are named in ``AUGMENTATIONS`` (``"thesis"``: the operations of thesis §5.1;
``"edges"``: no blur and milder crops, which keeps lesion boundaries for the segmentation
question the thesis left open). Every value is a field of ``AugmentConfig``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from medssl.registry import Registry


@dataclass(frozen=True)
class AugmentConfig:
    size: int = 64  # output side; thesis §5.1: 110 px input, random resized crop to 64
    # Crop area fraction and aspect ratio ranges: torchvision RandomResizedCrop / SimCLR
    # (Chen et al. 2020, App. A) use (0.08, 1); 0.2 is the MoCo v2 / lightly default lower
    # bound, kinder to 110 px grey images where small crops hold only speckle.
    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip_p: float = 0.5  # thesis §5.1: horizontal flip
    # Brightness/contrast jitter (thesis §5.1; saturation and hue have no meaning on grey).
    # Strengths 0.4 with probability 0.8 follow SimCLR's colour jitter (App. A, s = 0.5).
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    # Gaussian blur (thesis §5.1); sigma range and probability 0.5 follow SimCLR App. A,
    # kernel about 10% of the image side (SimCLR), odd.
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_kernel: int = 7


AUGMENTATIONS: Registry[AugmentConfig] = Registry("augmentation preset")
AUGMENTATIONS.add("thesis", AugmentConfig())
AUGMENTATIONS.add("edges", AugmentConfig(crop_scale=(0.5, 1.0), blur_p=0.0))


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W) or (N, 1, H, W) -> float32 (N, 1, H, W) in [-1, 1] (no augmentation)."""
    x = images if images.dim() == 4 else images.unsqueeze(1)
    return x.float().mul_(2.0 / 255.0).sub_(1.0)


def augment(
    images: torch.Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator,
    *,
    channels_last: bool = False,
) -> torch.Tensor:
    """One random view per image.

    images: uint8 (N, S, S) (or (N, 1, S, S)) on any device; ``generator`` on the same device.
    Returns float32 (N, 1, cfg.size, cfg.size) in [-1, 1] on that device.
    """
    x = images if images.dim() == 4 else images.unsqueeze(1)
    n, dev = x.shape[0], x.device
    x = x.float().mul_(1.0 / 255.0)  # (N, 1, S, S) in [0, 1]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=generator.device).to(dev)

    u = rand(n, 10)  # all per-sample uniforms of this call, in one draw

    # Random resized crop + flip as one affine sampling grid (normalised coords, [-1, 1]).
    lo, hi = cfg.crop_scale
    area = lo + (hi - lo) * u[:, 0]
    log_r = (
        math.log(cfg.crop_ratio[0])
        + (math.log(cfg.crop_ratio[1]) - math.log(cfg.crop_ratio[0])) * u[:, 1]
    )
    ratio = torch.exp(log_r)
    w = torch.sqrt(area * ratio).clamp(max=1.0)  # box width / image width
    h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - w) * (2 * u[:, 2] - 1)  # box centre, box fully inside the image
    cy = (1 - h) * (2 * u[:, 3] - 1)
    flip = torch.where(u[:, 4] < cfg.hflip_p, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [n, 1, cfg.size, cfg.size], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    # Brightness then contrast (around each image's mean), applied together with prob jitter_p.
    on = (u[:, 5] < cfg.jitter_p).float()
    b = 1 + on * cfg.brightness * (2 * u[:, 6] - 1)
    c = 1 + on * cfg.contrast * (2 * u[:, 7] - 1)
    x = x * b.view(n, 1, 1, 1)
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * c.view(n, 1, 1, 1) + mean).clamp_(0.0, 1.0)

    if cfg.blur_p > 0:
        x = gaussian_blur(
            x,
            sigma=cfg.blur_sigma[0] + (cfg.blur_sigma[1] - cfg.blur_sigma[0]) * u[:, 8],
            apply=u[:, 9] < cfg.blur_p,
            kernel=cfg.blur_kernel,
        )

    x = x.mul_(2.0).sub_(1.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def gaussian_blur(
    x: torch.Tensor, sigma: torch.Tensor, apply: torch.Tensor, kernel: int
) -> torch.Tensor:
    """Separable per-sample Gaussian blur.

    x: (N, 1, H, W); sigma: (N,) > 0; apply: (N,) bool (False -> identity kernel);
    kernel: odd size. Reflect padding keeps the border bright level.
    """
    n = x.shape[0]
    r = kernel // 2
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)  # (K,)
    k = torch.exp(-(t[None, :] ** 2) / (2 * sigma[:, None] ** 2))  # (N, K)
    k = k / k.sum(dim=1, keepdim=True)
    identity = (t == 0).to(x.dtype).expand(n, -1)
    k = torch.where(apply[:, None], k, identity)
    y = x.reshape(1, n, *x.shape[2:])  # samples as channels: one grouped conv for the batch
    y = F.pad(y, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(n, 1, 1, kernel), groups=n)
    y = F.conv2d(y, k.view(n, 1, kernel, 1), groups=n)
    return y.reshape_as(x)


def views(
    images: torch.Tensor,
    cfg: AugmentConfig,
    generator: torch.Generator,
    *,
    n_views: int = 2,
    channels_last: bool = False,
) -> tuple[torch.Tensor, ...]:
    """``n_views`` independent views of the same images (each (N, 1, size, size))."""
    return tuple(
        augment(images, cfg, generator, channels_last=channels_last) for _ in range(n_views)
    )


@dataclass(frozen=True)
class SupervisedAugmentConfig:
    """Light augmentation of labelled images (and their masks) for fine-tuning.

    The transform family of nnU-Net's default training (Isensee et al. 2021, Nature Methods:
    mirroring, rotation, scaling, brightness, contrast) at milder ranges, since a 64-px image
    holds lesions of a few pixels and the breast or probe border must stay in view: every
    value is a field, zero switches a transform off.
    """

    hflip_p: float = 0.5  # left-right mirror (breast laterality and probe side are arbitrary)
    rotate_deg: float = 10.0  # uniform in ±rotate_deg
    scale: tuple[float, float] = (0.9, 1.1)  # isotropic zoom factor range
    translate: float = 0.05  # shift up to this fraction of the side, each axis
    brightness: float = 0.1  # multiplicative, uniform in 1 ± brightness
    contrast: float = 0.1  # around each image's mean, uniform in 1 ± contrast


SUPERVISED_AUGMENTATIONS: Registry[SupervisedAugmentConfig] = Registry(
    "fine-tuning augmentation preset"
)
# thesis §5.3: supervised images are used unaltered
SUPERVISED_AUGMENTATIONS.add(
    "none",
    SupervisedAugmentConfig(
        hflip_p=0.0, rotate_deg=0.0, scale=(1.0, 1.0), translate=0.0, brightness=0.0, contrast=0.0
    ),
)
SUPERVISED_AUGMENTATIONS.add(
    "flip",
    SupervisedAugmentConfig(
        rotate_deg=0.0, scale=(1.0, 1.0), translate=0.0, brightness=0.0, contrast=0.0
    ),
)
SUPERVISED_AUGMENTATIONS.add("light", SupervisedAugmentConfig())


def is_identity(cfg: SupervisedAugmentConfig) -> bool:
    return (
        cfg.hflip_p == 0 and cfg.rotate_deg == 0 and tuple(cfg.scale) == (1.0, 1.0)
        and cfg.translate == 0 and cfg.brightness == 0 and cfg.contrast == 0
    )  # fmt: skip


def augment_supervised(
    x: torch.Tensor,
    masks: torch.Tensor | None,
    cfg: SupervisedAugmentConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One random geometric + intensity transform per image, the same geometry for its mask.

    x: float (N, 1, H, W) in [-1, 1]; masks: float (N, 1, H, W) {0, 1} or None; ``generator``
    on the CPU (parameters are drawn there, then moved to x's device). Geometry: one affine
    ``grid_sample`` (bilinear for images, nearest for masks, so masks stay binary; outside the
    image is black / background). Returns the transformed (x, masks).
    """
    if is_identity(cfg) or len(x) == 0:
        return x, masks
    n, dev = x.shape[0], x.device
    u = torch.rand(n, 7, generator=generator).to(dev)
    angle = math.radians(cfg.rotate_deg) * (2 * u[:, 0] - 1)
    zoom = cfg.scale[0] + (cfg.scale[1] - cfg.scale[0]) * u[:, 1]
    flip = torch.where(u[:, 2] < cfg.hflip_p, -1.0, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip, cos
    theta[:, 0, 2] = 2 * cfg.translate * (2 * u[:, 3] - 1)
    theta[:, 1, 2] = 2 * cfg.translate * (2 * u[:, 4] - 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    img = F.grid_sample(
        (x + 1) / 2, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    b = 1 + cfg.brightness * (2 * u[:, 5] - 1)
    c = 1 + cfg.contrast * (2 * u[:, 6] - 1)
    img = img * b.view(n, 1, 1, 1)
    mean = img.mean(dim=(2, 3), keepdim=True)
    img = ((img - mean) * c.view(n, 1, 1, 1) + mean).clamp(0.0, 1.0) * 2 - 1
    if masks is not None:
        masks = F.grid_sample(
            masks, grid, mode="nearest", padding_mode="zeros", align_corners=False
        )
    return img, masks
