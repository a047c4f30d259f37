"""Segmentation curves per epoch (thesis appendix C): Dice, IoU, PA, precision, recall, loss."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from medssl.reporting.curves import epoch_axis
from medssl.reporting.savefig import save_figure

PANELS = (
    ("loss", "loss"),
    ("dice", "Dice"),
    ("iou", "IoU"),
    ("pixel_accuracy", "pixel accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
)


def plot_segmentation_curves(
    history: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str = ""
) -> Path:
    """One panel per metric, train and validation per epoch, from the rows of ``metrics.csv``.

    Reads ``train_<m>_pooled`` / ``val_<m>_pooled`` (micro over the split's pixels) and, when
    present, ``val_<m>`` (per-image mean over lesion images, dashed); loss from
    ``train_loss`` / ``val_loss``. Missing or undefined values leave gaps.
    """
    fig = Figure(figsize=(12, 6.5))
    axes = fig.subplots(2, 3).ravel()
    epochs = [int(float(r["epoch"])) + 1 for r in history]
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        series = (
            [("train_loss", "train"), ("val_loss", "val")]
            if key == "loss"
            else [
                (f"train_{key}_pooled", "train (pooled)"),
                (f"val_{key}_pooled", "val (pooled)"),
                (f"val_{key}", "val (per image, lesions)"),
            ]
        )
        for col, name in series:
            ys = [_num(r.get(col)) for r in history]
            if any(not math.isnan(y) for y in ys):
                ax.plot(epochs, ys, marker=".", ls="--" if "per image" in name else "-", label=name)
        ax.set(
            title=label,
            xlabel="epoch (1-based)",
            ylabel=label if key == "loss" else f"{label} (0-1)",
        )
        epoch_axis(ax, epochs)
        if key != "loss":
            ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")
