"""Per-epoch curves (loss, metrics) from a run's ``metrics.csv`` rows (thesis figure A.1).

Generic on purpose: pretraining plots train/val loss, fine-tuning plots its own columns.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medssl.artifacts import write_bytes


def epoch_axis(ax, epochs) -> None:
    """Integer epoch ticks: one per epoch when there are few (the range padded by half an
    epoch, so a single epoch is a point in the middle), else integer steps."""
    from matplotlib.ticker import MaxNLocator

    seen = sorted({int(e) for e in epochs})
    if 0 < len(seen) <= 12:
        ax.set_xticks(seen)
        ax.set_xlim(seen[0] - 0.5, seen[-1] + 0.5)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_curves(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    path: str | os.PathLike,
    title: str,
    *,
    x: str = "epoch",
    ylabel: str | None = None,
    xlabel: str | None = None,
) -> Path:
    """One line per column of ``rows`` (dicts or ``read_csv`` rows) against ``x``; PNG, atomic.

    Empty, missing or non-finite values are left out; a column absent from every row is
    skipped (so the same call works with and without validation). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    xs: list[float] = []
    try:
        for col in columns:
            pts = [(_num(r.get(x)), _num(r.get(col))) for r in rows]
            pts = [(a, b) for a, b in pts if a is not None and b is not None]
            xs += [a for a, _ in pts]
            if pts:
                ax.plot(
                    [a for a, _ in pts],
                    [b for _, b in pts],
                    marker="o" if len(pts) < 30 else None,
                    markersize=3,
                    label=col,
                )
        ax.set_title(title)
        ax.set_xlabel(xlabel or x)
        if x == "epoch":
            epoch_axis(ax, xs)
        if ylabel:
            ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return write_bytes(path, buf.getvalue())


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
