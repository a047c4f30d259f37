"""Preprocessing of thesis §5.1: grey, pad black to square, resize; stored as uint8.

Finetuning images are padded with black to a square (centred) and resized to 64 × 64;
pretraining images are resized to 110 × 110 (the random resized crop to 64 happens later,
during augmentation). Sizes are settings of the recipe.

Masks are resized by area (:func:`downsample_mask`), not nearest-neighbour as in the thesis:
a mammogram thousands of pixels tall shrinks ~50-fold to 64 px, and nearest-neighbour keeps
or drops a lesion a few dozen pixels wide by where the sampling grid happens to fall.

Mammograms may first be cropped to the breast (:func:`breast_box`, recipe ``crop: breast``):
a full-field mammogram is mostly black background, and the crop gives the breast, and its
lesions, more of the stored pixels.
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


BREAST_THRESHOLD = 0.05
"""Grey level (display scale [0, 1]) above which a mammogram pixel may be breast: the
background of a (display-converted) mammogram is black, its thinnest tissue at the skin line
well above this."""

BREAST_MARGIN = 0.02
"""Margin added around the breast on every side, as a fraction of the image's larger side."""


@dataclass(frozen=True)
class Box:
    """A crop in pixel coordinates: rows ``top:top + height``, columns ``left:left + width``."""

    top: int
    left: int
    height: int
    width: int

    def crop(self, array: np.ndarray) -> np.ndarray:
        return array[self.top : self.top + self.height, self.left : self.left + self.width]

    def text(self) -> str:
        """``top,left,height,width`` (the manifest's ``crop_box``)."""
        return f"{self.top},{self.left},{self.height},{self.width}"


def breast_box(image: np.ndarray, mask: np.ndarray | None = None) -> tuple[Box, bool]:
    """The breast region of a mammogram, and whether the lesion mask widened it.

    image: (H, W) float in [0, 1], high = bright; mask: (H, W) bool or None.
    Rule: pixels above :data:`BREAST_THRESHOLD`, their largest 8-connected component
    (``scipy.ndimage.label``; labels, markers and noise are smaller and apart from the
    breast), its bounding box grown by :data:`BREAST_MARGIN` of the larger side and clipped
    to the image. A lesion mask reaching outside that box widens it to hold the whole mask,
    so a crop never cuts a lesion (returned ``True``, and counted by the builder). An image
    with no pixel above the threshold keeps its whole extent.
    """
    h, w = image.shape
    labels, n = ndimage.label(image > BREAST_THRESHOLD, structure=CONNECTIVITY)
    if n == 0:
        return Box(0, 0, h, w), False
    sizes = np.bincount(labels.ravel())[1:]
    rows, cols = ndimage.find_objects(labels)[int(np.argmax(sizes))]
    r0, r1, c0, c1 = rows.start, rows.stop, cols.start, cols.stop
    widened = False
    if mask is not None and mask.any():
        mr, mc = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        n0, n1, m0, m1 = min(r0, mr[0]), max(r1, mr[-1] + 1), min(c0, mc[0]), max(c1, mc[-1] + 1)
        widened = (n0, n1, m0, m1) != (r0, r1, c0, c1)
        r0, r1, c0, c1 = n0, n1, m0, m1
    grow = int(round(BREAST_MARGIN * max(h, w)))
    r0, c0 = max(0, r0 - grow), max(0, c0 - grow)
    r1, c1 = min(h, r1 + grow), min(w, c1 + grow)
    return Box(r0, c0, r1 - r0, c1 - c0), widened


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


@dataclass(frozen=True)
class _Axis:
    """How one axis of a mask maps onto the output grid.

    Shrinking, output index j gathers the input indices whose centre lies in
    [j, j + 1) * n_in / n_out, so every input index belongs to exactly one output index;
    growing, output index j copies the input index nearest its centre.
    cell:   (n_in,) the (first) output index each input index goes to.
    start:  (n_out,) the first input index of each output index.
    length: (n_out,) input indices per output index (1 when growing).
    """

    cell: np.ndarray
    start: np.ndarray
    length: np.ndarray
    grows: bool

    @classmethod
    def of(cls, n_in: int, n_out: int) -> _Axis:
        if n_in >= n_out:
            cell = ((2 * np.arange(n_in) + 1) * n_out) // (2 * n_in)
            start = np.searchsorted(cell, np.arange(n_out))
            return cls(cell, start, np.diff(np.append(start, n_in)), False)
        src = ((2 * np.arange(n_out) + 1) * n_in) // (2 * n_out)
        return cls(np.searchsorted(src, np.arange(n_in)), src, np.ones(n_out, np.int64), True)

    def window(self, lo: int, hi: int) -> tuple[slice, slice, _Axis]:
        """For input indices lo..hi (inclusive): the output slice they reach, the input slice
        those output indices draw from, and the axis restricted to both."""
        ja, jb = int(self.cell[lo]), int(np.searchsorted(self.start, hi, side="right"))
        a, b = int(self.start[ja]), int(self.start[jb - 1] + self.length[jb - 1])
        sub = _Axis(self.cell[a:b] - ja, self.start[ja:jb] - a, self.length[ja:jb], self.grows)
        return slice(ja, jb), slice(a, b), sub

    def gather(self, values: np.ndarray, axis: int) -> np.ndarray:
        """Sum (shrinking) or copy (growing) ``values`` along ``axis`` into output indices."""
        if self.grows:
            return np.take(values, self.start, axis=axis)
        return np.add.reduceat(values, self.start, axis=axis)


def _coverage(mask: np.ndarray, rows: _Axis, cols: _Axis) -> np.ndarray:
    counts = cols.gather(rows.gather(mask.astype(np.int32), 0), 1)
    return counts / np.outer(rows.length, cols.length)


def mask_coverage(mask: np.ndarray, size: int) -> np.ndarray:
    """bool (H, W) -> float64 (size, size): the fraction of each output pixel that is lesion.

    Area averaging: when shrinking, the mean of the input pixels whose centres fall in the
    output pixel; when growing, the input pixel nearest the output pixel's centre. Pillow's
    BOX resize of the mask in mode F gives the same, except that its floating-point weights
    may drop an input pixel whose centre lies exactly on an output border (13 -> 6 px drops
    pixel 6); integer arithmetic here gives every input pixel to exactly one output pixel.
    """
    mask = np.asarray(mask, dtype=bool)
    return _coverage(mask, _Axis.of(mask.shape[0], size), _Axis.of(mask.shape[1], size))


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
    The work is done in the window of output pixels the lesions reach (a few percent of a
    mammogram), so a full-field mask costs tens of milliseconds.
    """
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros((size, size), dtype=bool)
    lesion_rows, lesion_cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if lesion_rows.size == 0:
        return MaskResize(out.astype(np.uint8), 0, 0)
    out_r, in_r, rows = _Axis.of(mask.shape[0], size).window(lesion_rows[0], lesion_rows[-1])
    out_c, in_c, cols = _Axis.of(mask.shape[1], size).window(lesion_cols[0], lesion_cols[-1])
    crop = mask[in_r, in_c]
    win = _coverage(crop, rows, cols) >= LESION_COVERAGE
    labels, n = ndimage.label(crop, structure=CONNECTIVITY)
    # the components with a pixel in a lesion output pixel survive the coverage rule
    landed = win[rows.cell][:, cols.cell] & crop
    survives = np.zeros(n + 1, dtype=bool)
    survives[np.unique(labels[landed])] = True
    rescued = 0
    boxes = ndimage.find_objects(labels)
    for k in np.flatnonzero(~survives[1:]):
        box = boxes[k]
        rr, cc = np.nonzero(labels[box] == k + 1)
        cr, ccell = rows.cell[rr + box[0].start], cols.cell[cc + box[1].start]
        width = len(cols.length)
        keys, own = np.unique(cr * width + ccell, return_counts=True)
        share = own / (rows.length[keys // width] * cols.length[keys % width])
        best = int(keys[int(np.argmax(share))])
        win[best // width, best % width] = True
        rescued += 1
    out[out_r, out_c] = win
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
