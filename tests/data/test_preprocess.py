"""Preprocessing: padding, image resize, and the area rule that downsamples lesion masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medssl.data.preprocess import (
    downsample_mask,
    finetune_view,
    mask_coverage,
    pad_to_square,
    resize_mask,
)


def _disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    """bool (H, W): pixels whose centre lies within ``radius`` of ``centre`` (row, col)."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows + 0.5 - centre[0]) ** 2 + (cols + 0.5 - centre[1]) ** 2 <= radius**2


def test_pad_to_square_centres_the_content():
    img = np.ones((2, 4), np.float32)
    out = pad_to_square(img)
    assert out.shape == (4, 4)
    np.testing.assert_array_equal(out.sum(axis=1), [0, 4, 4, 0])


def test_a_3px_lesion_in_a_1000px_mask_survives_at_64px():
    mask = np.zeros((1000, 1000), bool)
    mask[500:503, 700:703] = True  # 9 px: 4% of one 15.6 x 15.6 px output pixel
    assert mask_coverage(mask, 64).max() < 0.5  # the coverage rule alone erases it
    out = downsample_mask(mask, 64)
    assert (out.components, out.rescued) == (1, 1)
    # one pixel, where the lesion lies: row 500-502 -> 32, column 700-702 -> 44 (x 64/1000)
    assert np.argwhere(out.mask).tolist() == [[32, 44]]
    old = Image.fromarray(mask.astype(np.uint8) * 255).resize((64, 64), Image.Resampling.NEAREST)
    assert not np.asarray(old).any(), "nearest-neighbour, the thesis rule, loses this lesion"


def test_a_large_lesion_keeps_its_area_within_a_pixel_ring():
    mask = _disc((1000, 1000), (430.0, 610.0), 300.0)
    out = downsample_mask(mask, 64)
    assert (out.components, out.rescued) == (1, 0)
    f = 64 / 1000
    inner = _disc((64, 64), (430 * f, 610 * f), 300 * f - 1)
    outer = _disc((64, 64), (430 * f, 610 * f), 300 * f + 1)
    assert out.mask[inner].all() and not out.mask[~outer].any()
    assert abs(int(out.mask.sum()) - np.pi * (300 * f) ** 2) < 2 * np.pi * 300 * f


def test_empty_mask_stays_empty_and_a_full_one_full():
    empty = downsample_mask(np.zeros((700, 500), bool), 64)
    assert not empty.mask.any() and (empty.components, empty.rescued) == (0, 0)
    assert empty.mask.shape == (64, 64) and empty.mask.dtype == np.uint8
    assert resize_mask(np.ones((700, 500), bool), 64).all()


def test_every_small_lesion_keeps_a_pixel_and_touching_pixels_are_one_lesion():
    mask = np.zeros((2000, 2000), bool)
    for r, c in [(100, 100), (900, 1500), (1700, 300)]:
        mask[r : r + 4, c : c + 4] = True
    mask[1200, 1200] = mask[1201, 1201] = True  # diagonal neighbours: one 8-connected lesion
    out = downsample_mask(mask, 64)
    assert (out.components, out.rescued) == (4, 4)
    assert int(out.mask.sum()) == 4


def test_rescued_pixel_is_the_one_the_lesion_covers_most():
    mask = np.zeros((100, 100), bool)  # 10 x 10 px per output pixel at size 10
    mask[18:22, 30:33] = True  # rows 18-19 in output row 1 (6 px), rows 20-21 in row 2 (6 px)
    mask[22, 30:33] = True  # a third row in output row 2: 9 px there
    out = downsample_mask(mask, 10)
    assert np.argwhere(out.mask).tolist() == [[2, 3]]


@pytest.mark.parametrize("shape, size", [((1040, 720), 48), ((656, 880), 80), ((3328, 3328), 64)])
def test_coverage_is_pillows_box_resize(shape, size):
    """Where no input pixel centre falls on an output pixel border, the coverage is exactly
    Pillow's BOX (area) resize of the mask in mode F."""
    mask = np.random.default_rng(0).random(shape) < 0.3
    box = Image.fromarray(mask.astype(np.float32), mode="F").resize(
        (size, size), Image.Resampling.BOX
    )
    np.testing.assert_allclose(mask_coverage(mask, size), np.asarray(box), atol=1e-6)


@pytest.mark.parametrize("shape, size", [((1000, 1000), 64), ((13, 13), 6), ((997, 613), 64)])
def test_coverage_counts_every_input_pixel_once(shape, size):
    """Input pixels whose centre falls on a border (Pillow's BOX may drop them: 13 -> 6 px
    drops pixel 6) belong to exactly one output pixel: the lesion area is conserved."""
    mask = np.random.default_rng(1).random(shape) < 0.3
    rows = np.bincount(((2 * np.arange(shape[0]) + 1) * size) // (2 * shape[0]))
    cols = np.bincount(((2 * np.arange(shape[1]) + 1) * size) // (2 * shape[1]))
    assert rows.sum() == shape[0] and cols.sum() == shape[1] and rows.min() >= 1
    area = mask_coverage(mask, size) * np.outer(rows, cols)
    assert round(float(area.sum())) == int(mask.sum())


def test_growing_a_mask_is_nearest_neighbour():
    mask = np.random.default_rng(2).random((40, 40)) < 0.3
    nearest = Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (64, 64), Image.Resampling.NEAREST
    )
    np.testing.assert_array_equal(resize_mask(mask, 64), np.asarray(nearest) > 127)


def test_finetune_view_pads_then_resizes_image_and_mask():
    image = np.zeros((300, 200), np.float32)
    image[100:200, 50:150] = 1.0
    mask = image > 0.5
    img, m = finetune_view(image, mask, 30)
    assert img.shape == m.mask.shape == (30, 30) and img.dtype == np.uint8
    assert m.components == 1 and m.rescued == 0
    # the 100 x 100 square in a 300 x 300 canvas, columns shifted by 50: 10 x 10 px at 10..19
    assert np.argwhere(m.mask).min(0).tolist() == [10, 10]
    assert np.argwhere(m.mask).max(0).tolist() == [19, 19]
    assert finetune_view(image, None, 30)[1] is None
