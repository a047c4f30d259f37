"""The health of a pretraining run, decided from its per-epoch records alone.

``pretraining_health(rows, random_knn)`` reads a run's ``metrics.csv`` rows (dicts, as
``Trainer.fit`` returns them or as ``read_csv`` gives them back: numbers or strings, ``""``
for missing) and the kNN reading of the run's own random-init encoder, taken by the same
monitor before the first step. It answers two questions:

- collapsed: the last epoch's ``collapse_std`` (per-dimension std of L2-normalised features
  times sqrt(D), ``engine.monitor``) is below ``COLLAPSE_STD``. Chen & He 2021 §4.1: that
  std is about 1/sqrt(D) for spread-out outputs and goes to 0 under collapse, i.e. about 1
  and 0 on this scale. A random-init ResNet-18 reads 0.76 on the phantoms of
  tests/tasks/test_pretrain.py; a tenth of the healthy value flags a representation that has lost
  most of its spread well before the training guard (``collapse_threshold``, 0.01) stops it.
- never_beat_random: no epoch's ``knn_acc`` exceeds the random-init reading by more than
  ``margin`` (default 0: "did kNN ever beat random init"). One epoch above it is weak
  evidence (the best of many noisy readings), so ``final_beat_random`` says the same of the
  last epoch alone, and ``best_knn`` / ``final_knn`` are kept so that a reader can judge by
  how much.

The message starts with "WARNING: " when the run collapsed or never beat random init,
"healthy: " when it did neither and its last epoch beat random init, "caution: " otherwise
(a last epoch at or below random init, or a flag that cannot be decided).

Undefined cases are ``None``, never a silent pass: no ``collapse_std`` in any row -> collapsed
is None; no ``knn_acc`` or no random-init reading -> never_beat_random is None; the message
says which. ``plot_health`` draws the same records (health.png).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl.artifacts import write_bytes

COLLAPSE_STD = 0.1
"""collapsed below this ``collapse_std`` (std x sqrt(D); ~1 healthy, 0 collapsed, §4.1 of
Chen & He 2021)."""


@dataclass(frozen=True)
class Health:
    """One run's health; every reading is None where the records do not hold it."""

    epochs: int  # rows read
    random_knn: float | None  # kNN accuracy of the run's random-init encoder
    best_knn: float | None
    best_knn_epoch: int | None
    final_knn: float | None
    final_std: float | None  # collapse_std of the last epoch
    final_alignment: float | None
    final_uniformity: float | None
    collapsed: bool | None
    never_beat_random: bool | None
    final_beat_random: bool | None  # the last epoch's knn_acc > random_knn + margin
    message: str  # one line


def pretraining_health(
    rows: Sequence[Mapping[str, Any]],
    random_knn: float | None,
    *,
    collapse_std: float = COLLAPSE_STD,
    margin: float = 0.0,
) -> Health:
    """Health of a run from its per-epoch ``rows`` and its random-init kNN reading.

    rows: one mapping per epoch with ``epoch`` and any of ``knn_acc``, ``collapse_std``,
    ``alignment``, ``uniformity``. See the module docstring for the flags and their
    thresholds; ``random_knn`` None (a run without that reading) leaves never_beat_random None.
    """
    epochs = [_int(r.get("epoch"), i) for i, r in enumerate(rows)]
    knn = [
        (e, v)
        for e, r in zip(epochs, rows, strict=True)
        if (v := _num(r.get("knn_acc"))) is not None
    ]
    std = [v for r in rows if (v := _num(r.get("collapse_std"))) is not None]
    last = rows[-1] if rows else {}
    final_std = _num(last.get("collapse_std"))
    if final_std is None and std:
        final_std = std[-1]
    best_epoch, best = max(knn, key=lambda p: p[1]) if knn else (None, None)
    final_knn = knn[-1][1] if knn else None
    random_knn = _num(random_knn)

    collapsed = None if final_std is None else final_std < collapse_std
    never = None if (best is None or random_knn is None) else not best > random_knn + margin
    final_beat = None if never is None else final_knn > random_knn + margin

    parts = []
    if collapsed is None:
        parts.append("collapse unknown (no collapse_std)")
    elif collapsed:
        parts.append(f"COLLAPSED: std {final_std:.3g} < {collapse_std:g} at the last epoch")
    else:
        parts.append(f"std {final_std:.3g}")
    if never is None:
        parts.append(
            "kNN vs random init unknown ("
            + ("no knn_acc" if best is None else "no random-init reading")
            + ")"
        )
    else:
        verdict = "NEVER BEAT random init" if never else "beat random init"
        final = "" if final_beat else " (not above random init)"
        parts.append(
            f"kNN {verdict}: best {best:.3f} (epoch {best_epoch}), final {final_knn:.3f}"
            f"{final}, random init {random_knn:.3f}"
        )
    if collapsed or never:
        prefix = "WARNING: "
    elif collapsed is False and never is False and final_beat:
        prefix = "healthy: "
    else:
        prefix = "caution: "
    message = prefix + "; ".join(parts)
    return Health(
        epochs=len(rows),
        random_knn=random_knn,
        best_knn=best,
        best_knn_epoch=best_epoch,
        final_knn=final_knn,
        final_std=final_std,
        final_alignment=_num(last.get("alignment")),
        final_uniformity=_num(last.get("uniformity")),
        collapsed=collapsed,
        never_beat_random=never,
        final_beat_random=final_beat,
        message=message,
    )


def plot_health(
    rows: Sequence[Mapping[str, Any]],
    random_init: Mapping[str, Any] | None,
    path: str | os.PathLike,
    title: str,
    *,
    collapse_std: float = COLLAPSE_STD,
) -> Path:
    """health.png: kNN accuracy, collapse std, alignment and uniformity against the epoch,
    one panel each, integer epoch ticks; PNG, atomic.

    ``random_init``: the random-init reading (``random_init.json``: the same four keys),
    drawn as a dashed line in each panel where it has a value. Panels without readings say
    so instead of staying blank. Returns ``path``.
    """
    import io

    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [
        ("knn_acc", "kNN accuracy (fraction of queries)"),
        ("collapse_std", "std of L2-normalised features x sqrt(D)"),
        ("alignment", "E||f(x)-f(x')||² (lower: views closer)"),
        ("uniformity", "log E exp(-2||f(x)-f(y)||²) (lower: more uniform)"),
    ]
    fig = Figure(figsize=(10, 7), dpi=100)
    axes = fig.subplots(2, 2).ravel()
    random_init = random_init or {}
    for ax, (col, label) in zip(axes, panels, strict=True):
        pts = [(_num(r.get("epoch")), _num(r.get(col))) for r in rows]
        pts = [(a, b) for a, b in pts if a is not None and b is not None]
        if pts:
            ax.plot([a for a, _ in pts], [b for _, b in pts], marker="o", markersize=3, label="run")
        else:
            ax.text(
                0.5, 0.5, f"no {col} readings", ha="center", va="center", transform=ax.transAxes
            )
        if (ref := _num(random_init.get(col))) is not None:
            ax.axhline(ref, color="grey", linestyle="--", label=f"random init {ref:.3f}")
        if col == "collapse_std":
            ax.axhline(
                collapse_std, color="red", linestyle=":", label=f"collapse below {collapse_std:g}"
            )
        ax.set_title(col)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return write_bytes(path, buf.getvalue())


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(v: Any, default: int) -> int:
    f = _num(v)
    return default if f is None else int(f)
