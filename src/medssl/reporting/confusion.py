"""Confusion-matrix figure: counts and row-normalised rates (rows true, columns predicted)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from medssl.data.records import CLASSES
from medssl.reporting.savefig import save_figure


def plot_confusion(
    cm: np.ndarray,
    path: str | os.PathLike,
    *,
    title: str = "",
    class_names: Sequence[str] = CLASSES,
) -> Path:
    """cm: (K, K) counts, rows = true class. Each cell shows the count and the row fraction
    (the per-class sensitivity on the diagonal); a row of an absent class shows "-"."""
    cm = np.asarray(cm, dtype=np.float64)
    support = cm.sum(axis=1, keepdims=True)
    rate = np.divide(cm, support, out=np.full_like(cm, np.nan), where=support > 0)
    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.subplots()
    ax.imshow(np.nan_to_num(rate), cmap="Blues", vmin=0, vmax=1)
    k = len(class_names)
    for i in range(k):
        for j in range(k):
            frac = "-" if np.isnan(rate[i, j]) else f"{rate[i, j]:.2f}"
            colour = "white" if np.nan_to_num(rate[i, j]) > 0.5 else "black"
            ax.text(
                j, i, f"{int(cm[i, j])}\n{frac}", ha="center", va="center", color=colour, fontsize=9
            )
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title or "Confusion matrix")
    return save_figure(fig, path)
