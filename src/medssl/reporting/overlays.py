"""Segmentation example panels (thesis appendix C): input, ground truth, prediction, overlay.

Examples are drawn at random from the best 20%, the middle 60% and the worst 20% of images
ranked by a score (Dice or IoU); images whose score is undefined (nan) are not drawn. The
overlay colours true positives green, false positives red and false negatives blue.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from medssl.reporting.savefig import save_figure

GROUPS = (("best 20%", 0.0, 0.2), ("middle 60%", 0.2, 0.8), ("worst 20%", 0.8, 1.0))


def overlay_rgb(
    image: np.ndarray, mask_true: np.ndarray, mask_pred: np.ndarray, alpha: float = 0.5
) -> np.ndarray:
    """float (H, W, 3) in [0, 1]: the grey image with TP green, FP red, FN blue blended in.

    image: (H, W) uint8 or float in [0, 1]; masks: (H, W) binary.
    """
    grey = np.asarray(image, dtype=np.float64)
    if grey.max() > 1.0:
        grey = grey / 255.0
    rgb = np.repeat(grey[..., None], 3, axis=2)
    t, p = np.asarray(mask_true).astype(bool), np.asarray(mask_pred).astype(bool)
    for sel, colour in (
        (t & p, (0.0, 1.0, 0.0)),
        (~t & p, (1.0, 0.0, 0.0)),
        (t & ~p, (0.0, 0.0, 1.0)),
    ):
        rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.asarray(colour)
    return rgb


def pick_examples(
    scores: np.ndarray, n_per_group: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Indices drawn at random (without replacement) from each rank group of ``scores``.

    scores: (N,) higher is better, nan = undefined (skipped). Returns {group name: indices}
    (fewer than ``n_per_group`` when a group is small; empty when no score is defined).
    """
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.flatnonzero(~np.isnan(scores))
    order = valid[np.argsort(-scores[valid], kind="stable")]  # best first
    out: dict[str, np.ndarray] = {}
    n = len(order)
    for name, lo, hi in GROUPS:
        members = order[int(round(lo * n)) : int(round(hi * n))]
        k = min(n_per_group, len(members))
        out[name] = (
            np.sort(rng.choice(members, size=k, replace=False))
            if k
            else np.array([], dtype=np.int64)
        )
    return out


def plot_examples(
    images: np.ndarray,
    masks_true: np.ndarray,
    masks_pred: np.ndarray,
    scores: np.ndarray,
    picks: dict[str, np.ndarray],
    path: str | os.PathLike,
    *,
    score_name: str = "Dice",
    ids: list[str] | None = None,
    title: str = "",
) -> Path:
    """One row per picked image: input, ground truth, prediction, overlay (titled with score).

    images: (N, H, W); masks_true / masks_pred: (N, H, W) binary; scores: (N,).
    """
    rows = [(group, int(i)) for group, idx in picks.items() for i in idx]
    fig = Figure(figsize=(8, 2.1 * max(len(rows), 1)))
    if not rows:
        ax = fig.subplots()
        ax.text(0.5, 0.5, f"no image with a defined {score_name}", ha="center", va="center")
        ax.axis("off")
        return save_figure(fig, path)
    axes = np.atleast_2d(fig.subplots(len(rows), 4))
    for r, (group, i) in enumerate(rows):
        panels = (
            (images[i], "input", "gray"),
            (masks_true[i], "ground truth", "gray"),
            (masks_pred[i], "prediction", "gray"),
            (
                overlay_rgb(images[i], masks_true[i], masks_pred[i]),
                f"{score_name} {scores[i]:.3f}",
                None,
            ),
        )
        for c, (img, label, cmap) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(
                img,
                cmap=cmap,
                vmin=0 if cmap else None,
                vmax=(255 if c == 0 and img.max() > 1 else 1) if cmap else None,
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(label, fontsize=8)
        name = ids[i] if ids is not None else f"#{i}"
        axes[r, 0].set_ylabel(f"{group}\n{name}", fontsize=7)
    fig.suptitle(title or f"Examples by {score_name} (TP green, FP red, FN blue)", fontsize=10)
    return save_figure(fig, path)
