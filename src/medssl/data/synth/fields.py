"""Smooth random fields for phantom textures: drawn at low resolution, upsampled.

Texture is drawn on a coarse grid and resized (Pillow bilinear on float32); only the
speckle or quantum noise is drawn near full resolution.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def resize(field: np.ndarray, shape: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    """Resize a float field with Pillow (bilinear, or nearest-neighbour), in mode F.

    field: (h, w) float; returns (H, W) float32 with ``(H, W) = shape`` exactly.
    """
    h, w = shape
    if field.shape == (h, w):
        return field.astype(np.float32, copy=False)
    img = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), mode="F")
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.array(img.resize((w, h), method), dtype=np.float32)  # a writable copy


def smooth_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    *,
    cells: tuple[int, int],
    sigma: float | tuple[float, float] = 1.0,
) -> np.ndarray:
    """Zero-mean, unit-std smooth noise.

    A (cells) grid of white noise is Gaussian-blurred (``sigma`` in cells) and resized to
    ``shape``. Returns (H, W) float32.
    """
    ch, cw = max(2, int(cells[0])), max(2, int(cells[1]))
    coarse = ndimage.gaussian_filter(rng.standard_normal((ch, cw)), sigma, mode="reflect")
    coarse -= coarse.mean()
    std = coarse.std()
    coarse /= std if std > 0 else 1.0
    return resize(coarse, shape)


def noise_1d(rng: np.random.Generator, n: int, *, knots: int, amplitude: float) -> np.ndarray:
    """A smooth random curve of length ``n`` (linear interpolation of ``knots`` values). (n,) float."""
    k = max(2, knots)
    values = rng.uniform(-amplitude, amplitude, size=k)
    return np.interp(np.linspace(0, k - 1, n), np.arange(k), values)
