"""Mammography phantoms: a breast silhouette on black with fibroglandular texture and lesions.

The breast is a half-ellipse against the chest wall (with the pectoral muscle in MLO views),
darkening toward the skin line as it thins. Fibroglandular tissue is thresholded smooth noise
of varying density, denser toward the chest wall. Lesions follow the BI-RADS mammography
lexicon's classic signs: benign masses round/oval and circumscribed, malignant masses
irregular and spiculated; calcifications as clusters (benign: few, coarse, round; malignant:
many, fine, pleomorphic). ``ATYPICAL`` of masses take the other class's shape.

Geometry is drawn on a grid 1/4 of the final size and upsampled; only calcifications and
quantum noise are drawn at (half to full) resolution.

Calibrated for the 64 px databases (tests/data/test_demo_data.py): masses 6-10 px in radius at
64 px, denser than the fibroglandular tissue, and spicules ~1 px wide there. With the earlier
masses (4-7 px, contrast 0.18-0.35 over tissue of amplitude 0.45, hair-thin spicules) a
U-Net found them (Dice 0.46) but a classifier trained from scratch on the demo MG2 stayed at
chance (balanced accuracy 0.30-0.37 over seeds and variants); with these it reads 0.51-0.55
over three seeds (Dice 0.73).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medssl.data.synth.fields import noise_1d, resize, smooth_noise
from medssl.data.synth.shapes import Outline, irregular_outline, smooth_outline

ATYPICAL = {"benign": 0.15, "malignant": 0.2}
"""Share of masses drawn with the other class's shape (benign spiculated, malignant circumscribed)."""

CALCIFICATION_SHARE = {"benign": 0.3, "malignant": 0.35}
"""Share of lesions that are calcification clusters rather than masses."""

HEIGHT_RANGE = (1200, 2400)
"""Image rows at ``scale=1`` (real full-field mammograms are ~3000-5000 rows; kept moderate for disk)."""

ASPECT_RANGE = (0.6, 0.8)
"""Image columns / rows."""


@dataclass(frozen=True)
class Lesion:
    """One finding. ``outline``: the mass, or the region around a calcification cluster (pixels).

    ``points``: (N, 2) float (x, y) centres of calcifications; empty for masses.
    """

    kind: str  # "mass" | "calcification"
    outline: Outline
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) bool lesion mask (the outline's inside)."""
        m = self.outline.mask(shape)
        if not m.any():
            cy = int(np.clip(self.outline.cy, 0, shape[0] - 1))
            cx = int(np.clip(self.outline.cx, 0, shape[1] - 1))
            m[max(0, cy - 1) : cy + 2, max(0, cx - 1) : cx + 2] = True
        return m


@dataclass(frozen=True)
class Mammogram:
    """A phantom mammogram.

    image: (H, W) uint16 in [0, 2**bits - 1], display convention (high = dense = bright).
    """

    image: np.ndarray
    bits: int
    lesions: tuple[Lesion, ...]
    laterality: str  # "L" | "R"
    view: str  # "CC" | "MLO"
    density: int  # ACR 1..4

    def mask(self) -> np.ndarray:
        """(H, W) bool union of the lesion masks (all False for a normal image)."""
        out = np.zeros(self.image.shape, dtype=bool)
        for lesion in self.lesions:
            out |= lesion.mask(self.image.shape)
        return out


def generate_mammogram(
    rng: np.random.Generator, label: str, *, scale: float = 1.0, bits: int | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """One mammography phantom of class ``label``.

    Returns ``(image, bits_stored, mask)``: image (H, W) uint16 in [0, 2**bits_stored - 1]
    (high = bright), mask (H, W) bool (union of lesions; all False for ``normal``).
    ``scale`` multiplies the size (H ~ 1200-2400 rows at 1.0); ``bits`` in 8..16 or random.
    """
    m = render_mammogram(rng, label, scale=scale, bits=bits)
    return m.image, m.bits, m.mask()


def render_mammogram(
    rng: np.random.Generator,
    label: str,
    *,
    scale: float = 1.0,
    shape: tuple[int, int] | None = None,
    bits: int | None = None,
    laterality: str | None = None,
    view: str | None = None,
    n_lesions: int | None = None,
    kinds: tuple[str, ...] | None = None,
) -> Mammogram:
    """A :class:`Mammogram` with its lesions (for writers that need ROIs one by one).

    ``n_lesions`` (default 1, sometimes 2) lesions of class ``label``; ``kinds`` forces
    each lesion's kind ("mass" | "calcification"). ``shape`` = (H, W) overrides the size.
    """
    if label not in ("normal", "benign", "malignant"):
        raise ValueError(f"label must be normal, benign or malignant, not {label!r}")
    if shape is None:
        h = max(64, int(round(rng.uniform(*HEIGHT_RANGE) * scale)))
        w = max(48, int(round(h * rng.uniform(*ASPECT_RANGE))))
    else:
        h, w = shape
    bits = int(bits if bits is not None else rng.choice([8, 12, 16], p=[0.2, 0.4, 0.4]))
    laterality = laterality or ("L" if rng.random() < 0.5 else "R")
    view = view or ("CC" if rng.random() < 0.5 else "MLO")
    hl, wl = max(16, h // 4), max(12, w // 4)
    density = int(rng.integers(1, 5))
    low, inside, depth = _breast(rng, hl, wl, view, density)
    lesions: list[Lesion] = []
    if label != "normal":
        if n_lesions is None:
            n_lesions = 1 + int(rng.random() < 0.2)
        for i in range(n_lesions):
            kind = kinds[i] if kinds is not None else _kind(rng, label)
            lesion, low = _add_lesion(rng, label, kind, low, inside, depth, (h, w))
            lesions.append(lesion)
    image = resize(low, (h, w))
    for lesion in lesions:
        if lesion.kind == "calcification":
            _paint_calcifications(rng, image, lesion.points, label, h)
    hn, wn = (h + 1) // 2, (w + 1) // 2
    noise = rng.standard_normal((hn, wn), dtype=np.float32) * np.float32(rng.uniform(0.008, 0.02))
    image += resize(noise, (h, w), nearest=True) * (image > 0.02)
    if laterality == "L":  # chest wall on the right of the image for left breasts
        image = image[:, ::-1]
        lesions = [_mirror(lesion, w) for lesion in lesions]
    top = 2**bits - 1
    gain = rng.uniform(0.8, 1.0) * top
    out = np.clip(image * gain + 0.5, 0, top).astype(np.uint16)
    return Mammogram(np.ascontiguousarray(out), bits, tuple(lesions), laterality, view, density)


def _kind(rng: np.random.Generator, label: str) -> str:
    return "calcification" if rng.random() < CALCIFICATION_SHARE[label] else "mass"


def _breast(
    rng: np.random.Generator, h: int, w: int, view: str, density: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Low-resolution breast with the chest wall at column 0.

    Returns (image (h, w) float32 in [0, 1], inside (h, w) bool, depth (h, w) float32:
    0 at the chest wall, 1 at the skin line).
    """
    v = (np.arange(h, dtype=np.float32) + 0.5) / h
    top, bottom = rng.uniform(0.02, 0.14), rng.uniform(0.84, 0.99)
    if view == "MLO":
        top = rng.uniform(-0.3, -0.1)  # the breast runs off the top edge along the muscle
    yc, ry = (top + bottom) / 2, (bottom - top) / 2
    reach = rng.uniform(0.6, 0.9)  # nipple distance / width
    p = rng.uniform(1.7, 2.6)
    t = np.clip(np.abs(v - yc) / ry, 0, 1)
    edge = reach * (1 - t**p) ** (1 / p) * (1 + noise_1d(rng, h, knots=7, amplitude=0.03))  # (h,)
    u = (np.arange(w, dtype=np.float32) + 0.5) / w
    depth = u[None, :] / np.maximum(edge[:, None], 1e-3)  # (h, w)
    inside = depth < 1
    thick = np.sqrt(np.clip(1 - depth**2, 0, 1))  # compressed thickness falls off at the skin
    fat = 0.18 + 0.22 * thick
    # fibroglandular tissue: streaky noise (elongated toward the nipple), denser at the chest wall
    field = 0.6 * smooth_noise(rng, (h, w), cells=(h // 6, w // 10), sigma=(1.2, 2.5))
    field += 0.4 * smooth_noise(rng, (h, w), cells=(h // 3, w // 5), sigma=(0.8, 1.6))
    bias = (-1.2, -0.5, 0.1, 0.7)[density - 1] + rng.uniform(-0.2, 0.2) - 1.4 * depth
    fg = 1 / (1 + np.exp(np.clip(-(field + bias) / 0.25, -30, 30)))
    img = (fat + 0.25 * fg * thick).astype(np.float32)
    if view == "MLO":  # pectoral muscle: a bright triangle in the upper chest-wall corner
        pw, ph = rng.uniform(0.2, 0.4), rng.uniform(0.35, 0.6)
        muscle = u[None, :] < pw * (1 - v[:, None] / ph)
        img = np.where(muscle & inside, 0.72 + 0.05 * field, img)
    img = np.where(inside, img, 0).astype(np.float32)
    return img, inside, depth.astype(np.float32)


def _add_lesion(
    rng: np.random.Generator,
    label: str,
    kind: str,
    low: np.ndarray,
    inside: np.ndarray,
    depth: np.ndarray,
    shape: tuple[int, int],
) -> tuple[Lesion, np.ndarray]:
    """Place one lesion (full-resolution outline) and paint its density on the low grid."""
    h, w = shape
    hl, wl = low.shape
    f = hl / h
    # often near the skin line or the edges: depth 0.3-0.85 of the way to the skin
    rows, cols = np.nonzero(inside & (depth > 0.3) & (depth < 0.85))
    if rows.size == 0:
        rows, cols = np.nonzero(inside)
    k = int(rng.integers(rows.size))
    cy, cx = (rows[k] + rng.random()) / f, (cols[k] + rng.random()) / f
    if kind == "mass":
        outline, spiculated = _mass_outline(rng, label, cy, cx, h)
        low = _paint_mass(rng, low, outline.scaled(f), spiculated)
        return Lesion("mass", outline), low
    rc = rng.uniform(0.06, 0.1) * h
    outline = smooth_outline(
        rng, cy, cx, rc * rng.uniform(0.7, 1.0), rc, angle=rng.uniform(0, np.pi), lobes=0.15
    )
    n = int(rng.integers(15, 45) if label == "malignant" else rng.integers(5, 15))
    theta = rng.uniform(0, 2 * np.pi, n)
    rad = np.sqrt(rng.uniform(0, 1, n)) * 0.85
    rr = outline.radius(theta) * rad
    pts = np.stack(
        [cx + rr * outline.rx * np.cos(theta), cy + rr * outline.ry * np.sin(theta)], axis=1
    )
    # a faint density around the cluster keeps it visible after downsampling
    low = _paint_mass(rng, low, outline.scaled(f), False, contrast=rng.uniform(0.25, 0.4))
    return Lesion("calcification", outline, pts), low


def _mass_outline(
    rng: np.random.Generator, label: str, cy: float, cx: float, h: int
) -> tuple[Outline, bool]:
    """The full-resolution outline of a mass centred at (cy, cx), and whether it is
    spiculated (malignant, but for the ATYPICAL share of each class)."""
    r0 = rng.uniform(0.09, 0.15) * h  # a 64 px database shows masses 6-10 px in radius
    spiculated = (label == "malignant") != (rng.random() < ATYPICAL[label])
    if spiculated:
        aspect = rng.uniform(0.75, 1.3)
        outline = irregular_outline(
            rng,
            cy,
            cx,
            r0 * np.sqrt(aspect),
            r0 / np.sqrt(aspect),
            angle=rng.uniform(0, np.pi),
            roughness=rng.uniform(0.1, 0.2),
            spikes=int(rng.integers(3, 9)),
            spike_amp=rng.uniform(0.4, 0.8),
        )
    else:
        aspect = rng.uniform(0.6, 1.0)
        outline = smooth_outline(
            rng,
            cy,
            cx,
            r0 * np.sqrt(aspect),
            r0 / np.sqrt(aspect),
            angle=rng.uniform(0, np.pi),
            lobes=0.08,
        )
    return outline, spiculated


def _paint_mass(
    rng: np.random.Generator,
    low: np.ndarray,
    outline: Outline,
    spiculated: bool,
    contrast: float | None = None,
) -> np.ndarray:
    out = low.copy()
    box, s = outline.signed(out.shape)
    edge = 0.25 if spiculated else 0.08
    alpha = np.clip(0.5 + s / (2 * edge), 0, 1)
    c = contrast if contrast is not None else rng.uniform(0.35, 0.55)
    region = out[box] + c * alpha * (out[box] > 0)
    if spiculated:  # thin radiating strands beyond the core
        strands = np.clip(1 - np.abs(s + 0.0) / 1.5, 0, 1) * (s < 0)
        region = region + c * strands * _rays(rng, outline, box)
    out[box] = region
    return out


def _rays(rng: np.random.Generator, outline: Outline, box: tuple[slice, slice]) -> np.ndarray:
    """(box) float32 in [0, 1]: narrow angular spokes around the outline centre."""
    yy = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None]
    xx = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :]
    theta = np.arctan2(yy - outline.cy, xx - outline.cx)
    n = int(rng.integers(6, 16))
    angles = rng.uniform(-np.pi, np.pi, n)
    d = np.abs((theta[..., None] - angles + np.pi) % (2 * np.pi) - np.pi).min(axis=-1)
    return np.exp(-0.5 * (d / 0.15) ** 2).astype(np.float32)


def _paint_calcifications(
    rng: np.random.Generator, image: np.ndarray, points: np.ndarray, label: str, h: int
) -> None:
    """Stamp bright dots (radius ~0.1-0.4% of the height; benign coarser) in place."""
    big = label == "benign"
    for x, y in points:
        r = max(1.0, h * (rng.uniform(0.002, 0.005) if big else rng.uniform(0.001, 0.0025)))
        y0, y1 = max(0, int(y - r - 1)), min(image.shape[0], int(y + r + 2))
        x0, x1 = max(0, int(x - r - 1)), min(image.shape[1], int(x + r + 2))
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dot = np.clip(r + 0.5 - np.sqrt((yy - y) ** 2 + (xx - x) ** 2), 0, 1)
        image[y0:y1, x0:x1] = np.maximum(
            image[y0:y1, x0:x1], np.minimum(1, image[y0:y1, x0:x1] + 0.35 * dot)
        )


def _mirror(lesion: Lesion, w: int) -> Lesion:
    """The lesion after flipping the image left-right.

    With dx -> -dx and angle -> -angle the lesion-frame angle maps theta -> pi - theta, so
    cos(k (pi - t) + phi) = cos(k t - (phi + k pi)) and a spike at a moves to pi - a.
    """
    o = lesion.outline
    harmonics = o.harmonics.copy()
    harmonics[:, 2] = -(o.harmonics[:, 2] + o.harmonics[:, 0] * np.pi)
    spikes = o.spikes.copy()
    spikes[:, 0] = np.pi - o.spikes[:, 0]
    mirrored = Outline(o.cy, w - 1 - o.cx, o.ry, o.rx, -o.angle, harmonics, spikes)
    points = lesion.points.copy()
    if points.size:
        points[:, 0] = w - 1 - points[:, 0]
    return Lesion(lesion.kind, mirrored, points)
