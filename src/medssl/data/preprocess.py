"""Preprocessing of thesis §5.1: grey, pad black to square, resize; stored as uint8.

Finetuning images are padded with black to a square (centred) and resized to 64 × 64;
pretraining images are resized to 110 × 110 (the random resized crop to 64 happens later,
during augmentation). Sizes are settings of the recipe.

Masks are resized by area (:func:`downsample_mask`), not nearest-neighbour as in the thesis:
a mammogram thousands of pixels tall shrinks ~50-fold to 64 px, and nearest-neighbour keeps
or drops a lesion a few dozen pixels wide by where the sampling grid happens to fall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

LESION_COVERAGE = 0.5
"""An output mask pixel is lesion when at least this fraction of it is lesion."""

CONNECTIVITY = np.ones((3, 3), dtype=bool)
"""Lesion components are 8-connected: pixels touching at a corner are one lesion."""


@dataclass(frozen=True)
class MaskResize:
    """A resized mask and what the resize did to its lesions.

    mask:       uint8 {0, 1} (size, size).
    components: connected lesion components in the input mask (8-connected).
    rescued:    components that the coverage rule alone would have erased, kept as one pixel.
    """

    mask: np.ndarray
    components: int
    rescued: int


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """(H, W) -> (S, S) with S = max(H, W), content centred, padding 0 (black)."""
    h, w = image.shape
    s = max(h, w)
    out = np.zeros((s, s), dtype=image.dtype)
    top, left = (s - h) // 2, (s - w) // 2
    out[top : top + h, left : left + w] = image
    return out


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """float32 (H, W) in [0, 1] -> float32 (size, size), antialiased bilinear (PIL mode F)."""
    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32)


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One axis of the resize: (cell of each input index, first input index of each output
    index, input indices per output index).

    Shrinking, output index j gathers the input indices whose centre lies in
    [j, j + 1) * n_in / n_out (every input index in exactly one output index, as Pillow's BOX
    filter does); growing, output index j copies the input index nearest its centre.
    """
    if n_in >= n_out:
        cell = ((2 * np.arange(n_in) + 1) * n_out) // (2 * n_in)
        start = np.searchsorted(cell, np.arange(n_out))
        return cell, start, np.diff(np.append(start, n_in))
    src = ((2 * np.arange(n_out) + 1) * n_in) // (2 * n_out)
    return np.searchsorted(src, np.arange(n_in)), src, np.ones(n_out, dtype=np.int64)


def mask_coverage(mask: np.ndarray, size: int) -> np.ndarray:
    """bool (H, W) -> float64 (size, size): the fraction of each output pixel that is lesion.

    Area averaging: when shrinking, the mean of the input pixels whose centres fall in the
    output pixel (equal to Pillow's BOX resize of the mask in mode F); when growing, the
    input pixel nearest the output pixel's centre.
    """
    (_, r_start, r_len), (_, c_start, c_len) = (
        _axis(mask.shape[0], size),
        _axis(mask.shape[1], size),
    )
    m = mask.astype(np.int64)
    rows = np.add.reduceat(m, r_start, axis=0) if mask.shape[0] >= size else m[r_start]
    cells = np.add.reduceat(rows, c_start, axis=1) if mask.shape[1] >= size else rows[:, c_start]
    return cells / np.outer(r_len, c_len)


def downsample_mask(mask: np.ndarray, size: int) -> MaskResize:
    """bool (H, W) -> uint8 {0, 1} (size, size) by area, keeping every lesion.

    Rule: an output pixel is lesion where the lesion covers at least half of it
    (:func:`mask_coverage` >= :data:`LESION_COVERAGE`); then every connected lesion
    component of the input (8-connected, ``scipy.ndimage.label``) none of whose pixels lands
    in a lesion output pixel keeps the one output pixel it covers most (ties: the first in
    row-major order). So a large lesion keeps its area to within a ring of pixels, a lesion
    smaller than an output pixel survives as one pixel instead of vanishing, and an empty
    mask stays empty. Written here, not with a library resize, because the rule needs to
    know which output pixel each input pixel falls in, which a resize does not expose.
    """
    mask = np.asarray(mask, dtype=bool)
    out = mask_coverage(mask, size) >= LESION_COVERAGE
    labels, n = ndimage.label(mask, structure=CONNECTIVITY)
    if n == 0:
        return MaskResize(out.astype(np.uint8), 0, 0)
    (r_cell, _, r_len), (c_cell, _, c_len) = _axis(mask.shape[0], size), _axis(mask.shape[1], size)
    # does any pixel of each component land in a lesion output pixel?
    landed = out[r_cell][:, c_cell]
    survives = ndimage.maximum(landed, labels, index=np.arange(1, n + 1))
    rescued = 0
    boxes = ndimage.find_objects(labels)
    for k in np.flatnonzero(~np.asarray(survives, dtype=bool)):
        box = boxes[k]
        rr, cc = np.nonzero(labels[box] == k + 1)
        cr, ccell = r_cell[rr + box[0].start], c_cell[cc + box[1].start]
        keys, own = np.unique(cr * size + ccell, return_counts=True)
        share = own / (r_len[keys // size] * c_len[keys % size])
        best = int(keys[int(np.argmax(share))])
        out[best // size, best % size] = True
        rescued += 1
    return MaskResize(out.astype(np.uint8), n, rescued)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """bool (H, W) -> uint8 {0, 1} (size, size) by the rule of :func:`downsample_mask`."""
    return downsample_mask(mask, size).mask


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float (H, W) in [0, 1] -> uint8, rounded and clipped."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def finetune_view(
    image: np.ndarray, mask: np.ndarray | None, size: int
) -> tuple[np.ndarray, MaskResize | None]:
    """Pad to square, resize; returns the uint8 image (size, size) and the resized mask
    (:class:`MaskResize`, its ``mask`` uint8 {0,1} (size, size)) or None."""
    img = to_uint8(resize_image(pad_to_square(image), size))
    m = None if mask is None else downsample_mask(pad_to_square(mask), size)
    return img, m


def pretrain_view(image: np.ndarray, size: int, *, pad: bool = False) -> np.ndarray:
    """Resize (optionally after padding to square) to (size, size) uint8 (thesis §5.1: resize to 110)."""
    if pad:
        image = pad_to_square(image)
    return to_uint8(resize_image(image, size))
