"""Batched on-device augmentation: shapes, range, per-sample randomness, determinism, presets."""

from __future__ import annotations

import pytest
import torch

from medssl.data.augment import (
    AUGMENTATIONS,
    AugmentConfig,
    augment,
    gaussian_blur,
    to_float,
    views,
)
from medssl.errors import ConfigError


def images(n=8, seed=0):
    return (torch.rand(n, 110, 110, generator=torch.Generator().manual_seed(seed)) * 255).to(
        torch.uint8
    )


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_shape_range_and_determinism(name):
    cfg = AUGMENTATIONS.get(name)
    x = images()
    a = augment(x, cfg, torch.Generator().manual_seed(1))
    b = augment(x, cfg, torch.Generator().manual_seed(1))
    c = augment(x, cfg, torch.Generator().manual_seed(2))
    assert a.shape == (8, 1, 64, 64) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_per_sample_parameters_differ():
    x = images(1).expand(6, -1, -1).contiguous()  # the same image six times
    out = augment(x, AUGMENTATIONS.get("thesis"), torch.Generator().manual_seed(0))
    diffs = [(out[0] - out[i]).abs().mean().item() for i in range(1, 6)]
    assert min(diffs) > 1e-3


def test_identity_config_is_a_resize_and_flip_is_a_flip():
    x = torch.arange(64).repeat(64, 1).to(torch.uint8)[None]  # (1, 64, 64) horizontal ramp
    ident = AugmentConfig(
        crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), hflip_p=0.0, jitter_p=0.0, blur_p=0.0
    )
    out = augment(x, ident, torch.Generator().manual_seed(0))
    assert torch.allclose(out, to_float(x), atol=1e-5)
    flipped = augment(
        x, AugmentConfig(**{**ident.__dict__, "hflip_p": 1.0}), torch.Generator().manual_seed(0)
    )
    assert torch.allclose(flipped, to_float(x).flip(-1), atol=1e-5)


def test_blur_keeps_constant_images_and_smooths_noise():
    x = torch.full((2, 1, 16, 16), 0.5)
    y = gaussian_blur(x, torch.tensor([1.0, 2.0]), torch.tensor([True, True]), kernel=7)
    assert torch.allclose(y, x, atol=1e-6)
    noise = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    y = gaussian_blur(noise, torch.tensor([1.5, 1.5]), torch.tensor([True, False]), kernel=7)
    assert y[0].std() < 0.6 * noise[0].std() and torch.equal(y[1], noise[1])


def test_views_are_independent_and_presets_registered():
    v0, v1 = views(images(), AUGMENTATIONS.get("thesis"), torch.Generator().manual_seed(0))
    assert not torch.equal(v0, v1)
    assert (
        AUGMENTATIONS.get("edges").blur_p == 0
        and AUGMENTATIONS.get("edges").crop_scale[0] > AUGMENTATIONS.get("thesis").crop_scale[0]
    )
    with pytest.raises(ConfigError, match="edges, thesis"):
        AUGMENTATIONS.get("nope")
