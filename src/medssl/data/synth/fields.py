"""Smooth random fields for phantom textures: drawn at low resolution, upsampled.

Drawing texture on a coarse grid and resizing it (PIL bilinear on float32) keeps a
phantom's cost proportional to its coarse grid, not its pixel count; only the speckle or
quantum noise is drawn near full resolution.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def resize(field: np.ndarray, shape: tuple[int, int], *, nearest: bool = False) -> np.ndarray:
    """Resize a float field.

    field: (h, w) float; returns (H, W) float32 with ``(H, W) = shape`` exactly.
    Enlarging (the phantoms' common case) is done in numpy with PIL's sampling (pixel
    centres, edge clamping): the same values at a fraction of the cost of PIL's float image
    round trip. Shrinking goes through PIL, whose filters widen to anti-alias.
    """
    h, w = shape
    if field.shape == (h, w):
        return field.astype(np.float32, copy=False)
    if h >= field.shape[0] and w >= field.shape[1]:
        return _enlarge(np.asarray(field, dtype=np.float32), h, w, nearest)
    img = Image.fromarray(np.ascontiguousarray(field, dtype=np.float32), mode="F")
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.array(img.resize((w, h), method), dtype=np.float32)  # a writable copy


def _enlarge(field: np.ndarray, h: int, w: int, nearest: bool) -> np.ndarray:
    """(fh, fw) float32 -> (h, w) float32, h >= fh and w >= fw: columns first (on the few
    source rows), then whole rows, which are contiguous copies."""
    if nearest:
        rows = ((np.arange(h) + 0.5) * (field.shape[0] / h)).astype(np.intp)
        cols = ((np.arange(w) + 0.5) * (field.shape[1] / w)).astype(np.intp)
        return field[:, cols][rows]
    j0, j1, s = _linear_taps(field.shape[1], w)
    a = field[:, j0]
    wide = a + (field[:, j1] - a) * s
    i0, i1, t = _linear_taps(field.shape[0], h)
    a = wide[i0]
    out = wide[i1]
    out -= a
    out *= t[:, None]
    out += a
    return out


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation from ``n_in`` to ``n_out`` samples (pixel centres aligned, edges
    clamped): source indices i0, i1 (n_out,) and the weight of i1 (n_out,) float32."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.minimum(src.astype(np.intp), max(n_in - 2, 0))
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


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
