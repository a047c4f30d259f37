"""Lesion outlines as radial functions: one outline gives both the mask and the ROI polygon.

An outline is ``r(theta)``, the lesion radius (relative to its semi-axes) in each direction.
Smooth, low-order harmonics make oval, circumscribed (benign-looking) lesions; higher
harmonics plus narrow spikes make irregular, spiculated (malignant-looking) ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Outline:
    """An elliptical lesion outline in pixel coordinates.

    cy, cx: centre (row, col); ry, rx: vertical / horizontal semi-axes before the radial
    modulation; angle: rotation (radians); harmonics: (k, amplitude, phase) rows; spikes:
    (angle, amplitude, width) rows, amplitudes relative to the semi-axes.
    """

    cy: float
    cx: float
    ry: float
    rx: float
    angle: float
    harmonics: np.ndarray  # (K, 3)
    spikes: np.ndarray  # (S, 3)

    def scaled(self, f: float) -> Outline:
        """The same outline in an image resized by factor ``f`` (pixel centres kept aligned)."""
        return Outline(
            (self.cy + 0.5) * f - 0.5,
            (self.cx + 0.5) * f - 0.5,
            self.ry * f,
            self.rx * f,
            self.angle,
            self.harmonics,
            self.spikes,
        )

    def radius(self, theta: np.ndarray) -> np.ndarray:
        """Relative radius r(theta) >= 0.3 for angles ``theta`` (any shape)."""
        r = np.ones_like(theta, dtype=np.float64)
        for k, amp, phase in self.harmonics:
            r += amp * np.cos(k * theta + phase)
        for a, amp, width in self.spikes:
            d = (theta - a + np.pi) % (2 * np.pi) - np.pi  # wrapped angular distance
            r += amp * np.exp(-0.5 * (d / width) ** 2)
        return np.maximum(r, 0.3)

    def extent(self) -> float:
        """An upper bound of the outline's radius in pixels."""
        bound = 1 + np.abs(self.harmonics[:, 1]).sum() + np.clip(self.spikes[:, 1], 0, None).sum()
        return float(max(self.ry, self.rx) * bound) + 2.0

    def signed(self, shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray]:
        """Inside-ness over the outline's bounding box, clipped to ``shape``.

        Returns (box, s) where ``box`` is a (row, col) slice pair into an image of ``shape``
        and ``s`` (box shape, float32) is ``r(theta) - rho``: > 0 inside, in relative units.
        """
        box, a, b = self._frame(shape)
        rho = np.sqrt(a**2 + b**2)
        return box, _lookup(self._table(), a, b) - rho

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """(H, W) bool mask of the outline in an image of ``shape``.

        The same pixels as ``signed(shape)[1] > 0``, with the angle (an arctangent, the costly
        part) computed only in the ring ``min r <= rho <= max r`` where the sign depends on it.
        """
        out = np.zeros(shape, dtype=bool)
        box, a, b = self._frame(shape)
        rho = np.sqrt(a**2 + b**2)
        table = self._table()
        inside = rho < table.min()
        ring = ~inside & (rho <= table.max())
        inside[ring] = _lookup(table, a[ring], b[ring]) - rho[ring] > 0
        out[box] = inside
        return out

    def _frame(self, shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
        """(box, a, b): the bounding box clipped to ``shape`` and its pixels' coordinates in
        the lesion frame (rotated, divided by the semi-axes; rho = 1 on the plain ellipse)."""
        e = self.extent()
        y0, y1 = max(0, int(self.cy - e)), min(shape[0], int(self.cy + e) + 1)
        x0, x1 = max(0, int(self.cx - e)), min(shape[1], int(self.cx + e) + 1)
        # a row and a column broadcast, not a meshgrid: the same values at half the cost
        dy = np.arange(y0, y1, dtype=np.float32)[:, None] - self.cy
        dx = np.arange(x0, x1, dtype=np.float32)[None, :] - self.cx
        c, s = np.cos(self.angle), np.sin(self.angle)
        a = (c * dx + s * dy) / self.rx
        b = (-s * dx + c * dy) / self.ry
        return (slice(y0, y1), slice(x0, x1)), a, b

    def _table(self) -> np.ndarray:
        """r(theta) at ``_STEPS + 1`` angles over [-pi, pi]: the harmonics evaluated once, not
        per pixel."""
        return self.radius(np.linspace(-np.pi, np.pi, _STEPS + 1)).astype(np.float32)

    def polygon(self, n: int = 64) -> np.ndarray:
        """(n, 2) float array of (x, y) outline points in pixels, counter-clockwise."""
        theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
        r = self.radius(theta)
        u, v = r * self.rx * np.cos(theta), r * self.ry * np.sin(theta)
        c, s = np.cos(self.angle), np.sin(self.angle)
        return np.stack([self.cx + c * u - s * v, self.cy + s * u + c * v], axis=1)


def smooth_outline(
    rng: np.random.Generator,
    cy: float,
    cx: float,
    ry: float,
    rx: float,
    *,
    angle: float = 0.0,
    lobes: float = 0.06,
) -> Outline:
    """Oval, circumscribed outline (gentle macro-lobulation up to ``lobes``)."""
    ks = np.array([2.0, 3.0, 4.0])
    harmonics = np.stack(
        [ks, rng.uniform(0, lobes, 3) / ks * 2, rng.uniform(0, 2 * np.pi, 3)], axis=1
    )
    return Outline(cy, cx, ry, rx, angle, harmonics, np.zeros((0, 3)))


def irregular_outline(
    rng: np.random.Generator,
    cy: float,
    cx: float,
    ry: float,
    rx: float,
    *,
    angle: float = 0.0,
    roughness: float = 0.12,
    spikes: int = 10,
    spike_amp: float = 0.5,
) -> Outline:
    """Irregular outline: harmonics 2..9 with amplitude ``roughness`` and ``spikes`` narrow spicules."""
    ks = np.arange(2, 10, dtype=float)
    harmonics = np.stack(
        [
            ks,
            rng.uniform(0, roughness, ks.size) / np.sqrt(ks - 1),
            rng.uniform(0, 2 * np.pi, ks.size),
        ],
        axis=1,
    )
    sp = np.stack(
        [
            rng.uniform(0, 2 * np.pi, spikes),
            rng.uniform(0.3, 1.0, spikes) * spike_amp,
            rng.uniform(0.04, 0.09, spikes),
        ],
        axis=1,
    )
    return Outline(cy, cx, ry, rx, angle, harmonics, sp.reshape(-1, 3))


_STEPS = 1024  # angular steps of an outline's r(theta) table


def _lookup(table: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """r(theta) from ``table`` at the angles ``theta = atan2(b, a)`` (nearest entry)."""
    theta = np.arctan2(b, a)  # in [-pi, pi]
    return table[np.rint((theta + np.pi) * (_STEPS / (2 * np.pi))).astype(np.intp)]
