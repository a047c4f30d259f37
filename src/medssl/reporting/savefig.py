"""Saving a matplotlib figure atomically (PNG), without pyplot's global state."""

from __future__ import annotations

import io
import os
from pathlib import Path

from matplotlib.figure import Figure

from medssl.artifacts import write_bytes


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, PNG by default) in one atomic move."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())
