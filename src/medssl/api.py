"""The notebook API: a database, an encoder and its features in three calls.

``load_database`` and ``Database`` need only numpy; ``load_encoder`` and ``embed`` import torch
when first called, so ``import medssl`` and loading a database stay fast.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from medssl.data.database import ROLES, Database
from medssl.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn


def load_database(path: str | os.PathLike, *, verify_checksum: bool = True) -> Database:
    """A built database folder (``medssl data build --out DIR`` writes ``DIR/<NAME>/``).

    The folder is verified first (manifest, array shapes against the manifest and
    database.json and, unless ``verify_checksum=False``, the content checksum); a damaged or
    edited folder raises ``medssl.errors.DataError`` naming the file. ``print(db)`` gives its
    counts per role and split; ``db.images("finetune", "test")``, ``db.labels(...)``,
    ``db.masks(...)`` the arrays (see ``help(medssl.Database)``).
    """
    return Database.load(path, verify_checksum=verify_checksum)


def load_encoder(path: str | os.PathLike) -> nn.Module:
    """The 1-channel torchvision ResNet-18 of a run or a weights file, on the CPU, in eval mode.

    ``path``: an ``encoder.pt`` (or any file of that format), a pretraining run folder (its
    ``encoder.pt``), a fine-tuning run folder or its ``best.pt`` (the fine-tuned encoder), a
    ``medssl export`` folder or its files, or a torchvision or timm ResNet-18 state dict (its
    3-channel ``conv1`` folded to one channel, ``fc`` dropped), as ``.pt``/``.pth`` or
    ``.safetensors``: what ``medssl finetune --init`` takes (:mod:`medssl.models.weights`).
    The model maps x (N, 1, H, W) in [-1, 1] to features (N, 512) (``fc`` is the identity).
    Anything else raises ``medssl.errors.ConfigError`` saying what was expected.
    """
    from medssl.models.encoder import build_encoder
    from medssl.models.weights import load_weights

    encoder = build_encoder()
    load_weights(path, encoder)
    return encoder.eval()


def embed(
    encoder: nn.Module,
    images: np.ndarray | torch.Tensor | Database,
    *,
    role: str = "finetune",
    split: str | None = None,
    size: int = 64,
    batch_size: int = 256,
) -> np.ndarray:
    """float32 features (N, D) of ``images`` (D = 512 for medssl's ResNet-18).

    ``images``: uint8 (N, H, W) in [0, 255] (what ``db.images()`` returns), float (N, H, W) in
    [0, 1] (medssl.data.imaging's grey convention), either also as (N, 1, H, W), as a numpy
    array or a torch tensor; or a Database, whose ``role`` images of ``split`` (None: all) are
    taken in manifest order. Images are square; another side than ``size`` (the training
    view size, 64 px) is resized, antialiased. The encoder runs in eval mode (its BatchNorm
    running statistics, restored mode afterwards) on its own device, in batches of
    ``batch_size``: :func:`medssl.engine.monitor.embed_images`, the kNN monitor's reading.
    """
    import torch

    from medssl.engine.monitor import embed_images
    from medssl.models.encoder import FEATURE_DIM

    if isinstance(images, Database):
        if role not in ROLES:
            raise ConfigError(f"role {role!r}: expected one of {', '.join(ROLES)}")
        images = images.images(role, split)
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    x = _as_pixels(x)
    device = next(encoder.parameters()).device
    if len(x) == 0:
        return np.zeros((0, FEATURE_DIM), dtype=np.float32)
    return embed_images(encoder, x.to(device), size=size, batch_size=batch_size).cpu().numpy()


def _as_pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 as is, float [0, 1] scaled to [0, 255] (float, not rounded): what embed_images
    takes; (N, 1, H, W) squeezed to (N, H, W)."""
    import torch

    if x.dim() == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dim() != 3 or x.shape[1] != x.shape[2]:
        raise ConfigError(
            f"images of shape {tuple(x.shape)}: expected square images (N, H, W) or "
            "(N, 1, H, W), H = W (one image: images[None])"
        )
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point():
        raise ConfigError(f"images of dtype {x.dtype}: expected uint8 [0, 255] or float [0, 1]")
    if len(x) and not (torch.isfinite(x).all() and x.min() >= 0 and x.max() <= 1):
        raise ConfigError(
            f"float images in [{float(x.min()):.4g}, {float(x.max()):.4g}]: expected [0, 1] "
            "(or uint8 [0, 255])"
        )
    return x.float() * 255.0  # a copy: to_float (in embed_images) scales float32 in place
