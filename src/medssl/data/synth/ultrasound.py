"""Breast-ultrasound phantoms: B-mode-like RGB images with grey content and a lesion mask.

Layers from the skin down (skin line, subcutaneous fat with hypoechoic lobules, the
fibroglandular layer, the pectoral muscle), multiplicative speckle elongated laterally, and
depth attenuation. Lesions follow the BI-RADS ultrasound lexicon's classic signs
(Stavros et al., Radiology 196:123, 1995): benign ones mostly oval, circumscribed,
wider-than-tall, homogeneous, with posterior enhancement; malignant ones mostly irregular or
spiculated, taller-than-wide, heterogeneous, with an echogenic halo and posterior shadowing.
A minority of each class (``ATYPICAL``) takes the other class's signs, so classes overlap.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from medssl.data.synth.fields import noise_1d, resize, smooth_noise
from medssl.data.synth.shapes import Outline, irregular_outline, smooth_outline

ATYPICAL = {"benign": 0.18, "malignant": 0.18}
"""Probability that a lesion draws each sign (shape, orientation, margin, posterior) from the other class."""

SIZE_RANGE = ((310, 719), (190, 1048))
"""(rows, cols) ranges of image sizes, as in BUSI (Al-Dhabyani et al. 2020)."""

TINT_PROBABILITY = 0.15
"""Share of images stored with a faint colour tint (as some scanners export)."""


def phantom_size(rng: np.random.Generator, scale: float) -> tuple[int, int] | None:
    """(H, W) of a phantom written at ``scale`` (None at 1.0: :data:`SIZE_RANGE`'s sizes);
    at least 48 px a side."""
    if scale == 1.0:
        return None
    h = max(48, int(rng.integers(310, 720) * scale))
    return h, max(48, int(h * rng.uniform(0.85, 1.6)))


def generate_ultrasound(
    rng: np.random.Generator, label: str, *, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One ultrasound phantom of class ``label`` (normal | benign | malignant).

    Returns ``(rgb, mask)``: rgb (H, W, 3) uint8 with grey content (a faint tint on some),
    mask (H, W) bool, all False for ``normal``. ``size`` = (H, W) overrides the random size.
    """
    rgb, masks = render_ultrasound(rng, label, size=size)
    mask = np.zeros(rgb.shape[:2], dtype=bool)
    for m in masks:
        mask |= m
    return rgb, mask


def render_ultrasound(
    rng: np.random.Generator, label: str, *, size: tuple[int, int] | None = None, n_lesions: int = 1
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Like :func:`generate_ultrasound` with ``n_lesions`` lesions (0 for normal), one mask each.

    Returns (rgb (H, W, 3) uint8, [mask (H, W) bool, ...]).
    """
    if label not in ("normal", "benign", "malignant"):
        raise ValueError(f"label must be normal, benign or malignant, not {label!r}")
    if size is None:
        h = int(rng.integers(SIZE_RANGE[0][0], SIZE_RANGE[0][1] + 1))
        w = int(np.clip(h * rng.uniform(0.85, 1.6), *SIZE_RANGE[1]))
    else:
        h, w = size
    # the image is drawn at half resolution and upsampled once: 4x fewer pixels to shade
    hl, wl = (h + 1) // 2, (w + 1) // 2
    tissue, depth = _tissue(rng, hl, wl)
    masks = []
    for i in range(0 if label == "normal" else n_lesions):
        outline, signs = _lesion_signs(rng, label, h, w, small=i > 0)
        tissue = _paint_lesion(rng, tissue, outline.scaled(hl / h), signs)
        mask = outline.mask((h, w))
        if not mask.any():  # a lesion always shows at least its centre
            cy, cx = int(np.clip(outline.cy, 0, h - 1)), int(np.clip(outline.cx, 0, w - 1))
            mask[max(0, cy - 1) : cy + 2, max(0, cx - 1) : cx + 2] = True
        masks.append(mask)
    grey = tissue * _speckle(rng, hl, wl) * _attenuation(rng, depth)
    grey = np.clip(grey * (rng.uniform(0.75, 1.1) * 255.0) + 0.5, 0, 255).astype(np.uint8)
    full = np.asarray(Image.fromarray(grey, mode="L").resize((w, h), Image.Resampling.BILINEAR))
    return _to_rgb(rng, _frame(rng, full.copy())), masks


def _tissue(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean echogenicity of the tissue layers. Returns (tissue (H, W) float32 ~[0, 1], depth (H, 1) in [0, 1])."""
    depth = (np.arange(h, dtype=np.float32) / h)[:, None]
    cells = (max(4, h // 12), max(4, w // 12))
    skin = rng.uniform(0.03, 0.07) + noise_1d(rng, w, knots=5, amplitude=0.01)
    fat = skin + rng.uniform(0.12, 0.3) + noise_1d(rng, w, knots=6, amplitude=0.05)
    gland = fat + rng.uniform(0.3, 0.5) + noise_1d(rng, w, knots=6, amplitude=0.07)
    muscle = np.minimum(gland + rng.uniform(0.08, 0.15), 0.98)
    lobules = smooth_noise(rng, (h, w), cells=(cells[0] // 1.5, cells[1] // 3), sigma=(1.0, 1.6))
    glandular = smooth_noise(rng, (h, w), cells=cells, sigma=1.0)
    fibres = smooth_noise(
        rng, (h, w), cells=(cells[0] * 2, max(4, cells[1] // 4)), sigma=(0.7, 2.0)
    )
    out = np.empty((h, w), dtype=np.float32)
    out[:] = 0.3 + 0.1 * fibres  # retromammary / deep
    layer_gland = depth < gland[None, :]
    out = np.where(layer_gland, 0.55 + 0.14 * glandular + 0.05 * fibres, out)
    layer_fat = depth < fat[None, :]
    fat_level = np.where(lobules > 0.55, 0.2, 0.38 + 0.05 * lobules)  # hypoechoic fat lobules
    out = np.where(layer_fat, fat_level, out)
    out = np.where(depth < skin[None, :], 0.85, out)
    band = (depth >= gland[None, :]) & (depth < muscle[None, :])
    out = np.where(band, 0.42 + 0.12 * fibres, out)  # pectoral muscle, striated
    return out, depth


def _lesion_signs(
    rng: np.random.Generator, label: str, h: int, w: int, *, small: bool = False
) -> tuple[Outline, dict]:
    """Draw a lesion outline and its echo signs; each sign flips to the other class's with ``ATYPICAL``."""
    malignant = label == "malignant"

    def sign(typical_malignant: bool) -> bool:
        return typical_malignant if rng.random() >= ATYPICAL[label] else not typical_malignant

    irregular = sign(malignant)
    tall = sign(malignant)
    shadow = sign(malignant)
    heterogeneous = sign(malignant)
    r0 = rng.uniform(0.07, 0.15) * h * (0.5 if small else 1.0)  # equivalent radius (px)
    aspect = rng.uniform(1.05, 1.5) if tall else rng.uniform(0.45, 0.85)  # height / width
    ry, rx = r0 * np.sqrt(aspect), r0 / np.sqrt(aspect)
    cy = rng.uniform(0.3, 0.6) * h
    cx = rng.uniform(0.25, 0.75) * w
    angle = rng.normal(0, 0.15)
    if irregular:
        outline = irregular_outline(
            rng,
            cy,
            cx,
            ry,
            rx,
            angle=angle,
            roughness=rng.uniform(0.08, 0.2),
            spikes=int(rng.integers(4, 14)),
            spike_amp=rng.uniform(0.2, 0.6),
        )
    else:
        outline = smooth_outline(rng, cy, cx, ry, rx, angle=angle, lobes=rng.uniform(0.0, 0.1))
    signs = {
        "irregular": irregular,
        "level": rng.uniform(0.1, 0.3) if heterogeneous else rng.uniform(0.04, 0.22),
        "heterogeneous": heterogeneous,
        "halo": irregular and rng.random() < 0.5,
        "posterior": -rng.uniform(0.25, 0.6) if shadow else rng.uniform(0.2, 0.6),
        "edge": rng.uniform(0.12, 0.3)
        if irregular
        else rng.uniform(0.03, 0.08),  # margin blur (relative)
    }
    return outline, signs


def _paint_lesion(
    rng: np.random.Generator, tissue: np.ndarray, outline: Outline, signs: dict
) -> np.ndarray:
    """Paint the lesion and its posterior feature into ``tissue`` (H, W); returns the new tissue."""
    h, w = tissue.shape
    box, s = outline.signed((h, w))
    mask = np.zeros((h, w), dtype=bool)
    mask[box] = s > 0
    alpha = np.clip(0.5 + s / (2 * signs["edge"]), 0, 1)  # soft margin, 1 inside
    bh, bw = alpha.shape
    inner = np.full((bh, bw), signs["level"], dtype=np.float32)
    if signs["heterogeneous"]:
        inner += 0.12 * smooth_noise(
            rng, (bh, bw), cells=(max(3, bh // 10), max(3, bw // 10)), sigma=0.8
        )
    inner = np.clip(inner, 0.02, 1)
    out = tissue.copy()
    region = out[box]
    if signs["halo"]:  # echogenic rim around an infiltrating lesion
        rim = np.exp(-0.5 * (s / 0.12) ** 2) * (s < 0.05)
        region = region + 0.25 * rim
    out[box] = region * (1 - alpha) + inner * alpha
    # posterior feature: columns under the lesion, below its lower edge, fading with depth
    cols = mask.any(axis=0)
    rows_bottom = np.where(cols, h - 1 - np.argmax(mask[::-1], axis=0), 0)
    profile = resize(cols.astype(np.float32)[None, :], (1, max(2, w // 8)))
    profile = resize(profile, (1, w))[0]
    yy = np.arange(h, dtype=np.float32)[:, None]
    below = np.clip((yy - rows_bottom[None, :]) / (0.04 * h), 0, 1)
    fade = np.exp(-(yy - rows_bottom[None, :]).clip(0) / (rng.uniform(0.3, 0.8) * h))
    gain = 1 + signs["posterior"] * below * fade * profile[None, :] * (~mask)
    return out * gain.astype(np.float32)


def _speckle(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Multiplicative speckle (Rayleigh, mean 1) on the half-resolution grid, grains ~1 x 2 px. (H, W) float32."""
    gh, gw = h, max(2, w // 2)
    grains = rng.rayleigh(1.0, size=(gh, gw)).astype(np.float32) / np.float32(np.sqrt(np.pi / 2))
    return 0.35 + 0.65 * resize(grains, (h, w))


def _attenuation(rng: np.random.Generator, depth: np.ndarray) -> np.ndarray:
    """Depth attenuation after imperfect time-gain compensation. (H, 1) float32."""
    a = rng.uniform(0.4, 1.4)
    near = 1 - 0.25 * np.exp(-depth / 0.04)  # dim near field
    return (np.exp(-a * depth) * near).astype(np.float32)


def _frame(rng: np.random.Generator, grey: np.ndarray) -> np.ndarray:
    """Scanner framing: black side margins on some images, a small bright depth-scale on others."""
    h, w = grey.shape
    if rng.random() < 0.3:
        m = int(rng.uniform(0.02, 0.08) * w)
        grey[:, :m] = 0
        grey[:, w - m :] = 0
    if rng.random() < 0.4:
        x = int(rng.uniform(0.005, 0.02) * w)
        ticks = np.arange(int(0.05 * h), h, max(8, h // 12))
        grey[ticks[:, None], x + np.arange(3)[None, :]] = 230
    return grey


def _to_rgb(rng: np.random.Generator, grey: np.ndarray) -> np.ndarray:
    """(H, W) uint8 -> (H, W, 3) uint8, grey or faintly tinted."""
    if rng.random() >= TINT_PROBABILITY:
        return np.repeat(grey[:, :, None], 3, axis=2)
    tint = 1 + rng.uniform(-0.06, 0.06, 3).astype(np.float32)
    return np.clip(grey[:, :, None] * tint[None, None, :] + 0.5, 0, 255).astype(np.uint8)
