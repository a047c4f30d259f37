"""The health of a pretraining run, decided from its per-epoch records alone.

``pretraining_health(rows, random_init)`` reads a run's ``metrics.csv`` rows (dicts, as
``Trainer.fit`` returns them or as ``read_csv`` gives them back: numbers or strings, ``""``
for missing) and the reading of the run's own random-init encoder (``random_init.json``),
taken by the same monitor before the first step. The rows that hold a health read (every
``health_every`` steps and the last epoch) carry ``knn_bacc`` / ``linear_bacc`` with their
``_se`` and the paired gains over random init ``knn_gain`` / ``linear_gain`` with theirs
(``engine.health_read``). It answers:

- collapsed: the last read's ``collapse_std`` (per-dimension std of L2-normalised features
  times sqrt(D), ``engine.monitor``) is below ``COLLAPSE_STD``. Chen & He 2021 §4.1: that
  std is about 1/sqrt(D) for spread-out outputs and goes to 0 under collapse, i.e. about 1
  and 0 on this scale; a tenth of the healthy value flags a representation that has lost
  most of its spread well before the training guard (``collapse_threshold``, 0.01) stops it.
- beat random init: a read whose kNN gain exceeds 2 standard errors
  (``engine.health_read.SE_MARGIN``). ``never_beat_random``: no read did, i.e. the encoder
  was never better than random init by more than the reading's noise; ``final_beat_random``
  says the same of the last read alone (one read above 2 SE among many is weaker evidence:
  the best of many noisy reads). The linear reading is kept beside it (a random ResNet-18's
  features with a logistic regression are a strong baseline; its gain says whether the
  encoder learned more than a linear read of random features finds).
- time to a useful encoder: the step, and the training seconds up to it (``epoch_time_s``
  summed over the rows up to that read, reads included), of the first read whose kNN gain
  exceeds 2 SE (``useful_step`` / ``useful_s``; ``useful_step_linear`` / ``useful_s_linear``
  for the linear reading); None when no read did.

The message starts with "WARNING: " when the run collapsed or never beat random init,
"healthy: " when it did neither and its last read beat random init, "caution: " otherwise
(a last read not above random init by 2 SE, or a flag that cannot be decided).

Undefined cases are ``None``, never a silent pass: no ``collapse_std`` in any row -> collapsed
is None; no read with a gain (no labelled images, no random-init reading) ->
never_beat_random is None; the message says which. ``plot_health`` draws the same records
(health.png).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl.artifacts import write_bytes
from medssl.engine.health_read import SE_MARGIN, beats

COLLAPSE_STD = 0.1
"""collapsed below this ``collapse_std`` (std x sqrt(D); ~1 healthy, 0 collapsed, §4.1 of
Chen & He 2021)."""

READ_COLUMNS = (
    "knn_bacc", "knn_bacc_se", "linear_bacc", "linear_bacc_se",
    "knn_gain", "knn_gain_se", "linear_gain", "linear_gain_se",
)  # fmt: skip
"""The health read's columns of a metrics.csv row (engine.health_read)."""


@dataclass(frozen=True)
class Health:
    """One run's health; every reading is None where the records do not hold it."""

    epochs: int  # rows read
    steps: int | None  # the last row's optimizer step
    reads: int  # rows with a health read
    random_knn: float | None  # kNN balanced accuracy of the run's random-init encoder
    random_linear: float | None
    final_knn: float | None  # the last read
    final_knn_se: float | None
    final_linear: float | None
    final_linear_se: float | None
    final_knn_gain: float | None  # paired gain over random init, and its SE
    final_knn_gain_se: float | None
    final_linear_gain: float | None
    final_linear_gain_se: float | None
    best_knn_gain: float | None
    best_knn_gain_step: int | None
    useful_step: int | None  # first read whose kNN gain > 2 SE
    useful_s: float | None  # training seconds up to it
    useful_step_linear: int | None
    useful_s_linear: float | None
    read_fraction: float | None  # seconds of health reads / seconds of the rows
    final_std: float | None  # collapse_std of the last read
    final_alignment: float | None
    final_uniformity: float | None
    collapsed: bool | None
    never_beat_random: bool | None
    final_beat_random: bool | None
    message: str  # one line


def pretraining_health(
    rows: Sequence[Mapping[str, Any]],
    random_init: Mapping[str, Any] | None,
    *,
    collapse_std: float = COLLAPSE_STD,
) -> Health:
    """Health of a run from its per-epoch ``rows`` and its random-init reading (see the module
    docstring for the flags and thresholds)."""
    random_init = random_init or {}
    reads = [r for r in rows if _num(r.get("knn_gain")) is not None]
    last_read = reads[-1] if reads else {}
    std = [v for r in rows if (v := _num(r.get("collapse_std"))) is not None]
    final_std = std[-1] if std else None
    best = max(reads, key=lambda r: _num(r["knn_gain"])) if reads else None
    knn_useful, lin_useful = _first_beat(rows, "knn"), _first_beat(rows, "linear")
    collapsed = None if final_std is None else final_std < collapse_std
    never = None if not reads else knn_useful is None
    final_beat = None if not reads else _beats(last_read, "knn")
    seconds = sum(_num(r.get("epoch_time_s")) or 0.0 for r in rows)
    read_s = sum(_num(r.get("health_s")) or 0.0 for r in rows)
    health = dict(
        epochs=len(rows),
        steps=_int(rows[-1].get("step")) if rows else None,
        reads=len(reads),
        random_knn=_num(random_init.get("knn_bacc")),
        random_linear=_num(random_init.get("linear_bacc")),
        **{f"final_{c.replace('_bacc', '')}": _num(last_read.get(c)) for c in READ_COLUMNS},
        best_knn_gain=None if best is None else _num(best["knn_gain"]),
        best_knn_gain_step=None if best is None else _int(best.get("step")),
        useful_step=knn_useful[0] if knn_useful else None,
        useful_s=knn_useful[1] if knn_useful else None,
        useful_step_linear=lin_useful[0] if lin_useful else None,
        useful_s_linear=lin_useful[1] if lin_useful else None,
        read_fraction=read_s / seconds if seconds > 0 and read_s > 0 else None,
        final_std=final_std,
        final_alignment=_num(last_read.get("alignment")),
        final_uniformity=_num(last_read.get("uniformity")),
        collapsed=collapsed,
        never_beat_random=never,
        final_beat_random=final_beat,
    )
    return Health(**health, message=_message(health, collapse_std))


def _beats(row: Mapping[str, Any], reading: str) -> bool:
    gain, se = _num(row.get(f"{reading}_gain")), _num(row.get(f"{reading}_gain_se"))
    return gain is not None and se is not None and beats(gain, se)


def _first_beat(rows: Sequence[Mapping[str, Any]], reading: str) -> tuple[int, float] | None:
    """(step, training seconds up to and including that row) of the first row whose
    ``reading`` gain exceeds 2 SE; None if none does."""
    seconds = 0.0
    for r in rows:
        seconds += _num(r.get("epoch_time_s")) or 0.0
        if _beats(r, reading):
            return _int(r.get("step")), round(seconds, 2)
    return None


def _message(h: Mapping[str, Any], collapse_std: float) -> str:
    parts = []
    if h["collapsed"] is None:
        parts.append("collapse unknown (no collapse_std)")
    elif h["collapsed"]:
        parts.append(f"COLLAPSED: std {h['final_std']:.3g} < {collapse_std:g} at the last read")
    else:
        parts.append(f"std {h['final_std']:.3g}")
    if h["never_beat_random"] is None:
        parts.append("health read vs random init unknown (no read with a random-init reading)")
    else:
        gain = f"gain {_signed(h['final_knn_gain'])} (SE {_fmt(h['final_knn_gain_se'])})"
        if h["never_beat_random"]:
            head = f"kNN read NEVER BEAT random init by more than {SE_MARGIN:g} SE"
        else:
            head = (
                f"kNN read beat random init by {SE_MARGIN:g} SE from step {h['useful_step']} "
                f"({h['useful_s']:.0f} s)"
            )
        last = "" if h["final_beat_random"] else " (the last read not above it by 2 SE)"
        lin = (
            f"linear {_fmt(h['final_linear'])}, gain {_signed(h['final_linear_gain'])} "
            f"(SE {_fmt(h['final_linear_gain_se'])})"
        )
        parts.append(
            f"{head}: last read {_fmt(h['final_knn'])} vs random init {_fmt(h['random_knn'])}, "
            f"{gain}{last}; {lin}"
        )
    if h["collapsed"] or h["never_beat_random"]:
        prefix = "WARNING: "
    elif h["collapsed"] is False and h["never_beat_random"] is False and h["final_beat_random"]:
        prefix = "healthy: "
    else:
        prefix = "caution: "
    return prefix + "; ".join(parts)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _signed(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.3f}"


def plot_health(
    rows: Sequence[Mapping[str, Any]],
    random_init: Mapping[str, Any] | None,
    path: str | os.PathLike,
    title: str,
    *,
    collapse_std: float = COLLAPSE_STD,
) -> Path:
    """health.png against the optimizer step: the kNN and linear balanced accuracies (± 2 SE
    bands, random init dashed), their paired gains over random init (± 2 SE), the collapse std,
    alignment and uniformity; PNG, atomic. Panels without readings say so. Returns ``path``."""
    import io

    from matplotlib.figure import Figure

    random_init = random_init or {}
    fig = Figure(figsize=(13, 7), dpi=100)
    axes = fig.subplots(2, 3).ravel()
    for ax, col in zip(axes[:2], ("knn", "linear"), strict=True):
        _band(ax, rows, f"{col}_bacc", f"{col}_bacc_se", "run")
        if (ref := _num(random_init.get(f"{col}_bacc"))) is not None:
            ax.axhline(ref, color="grey", linestyle="--", label=f"random init {ref:.3f}")
        _finish(ax, f"{col} balanced accuracy", "balanced accuracy (chance 1/C)")
    for col in ("knn", "linear"):
        _band(axes[2], rows, f"{col}_gain", f"{col}_gain_se", col)
    axes[2].axhline(0.0, color="grey", linestyle="--")
    _finish(axes[2], "gain over random init (± 2 SE)", "paired difference")
    panels = [
        ("collapse_std", "std of L2-normalised features x sqrt(D)"),
        ("alignment", "E||f(x)-f(x')||² (lower: views closer)"),
        ("uniformity", "log E exp(-2||f(x)-f(y)||²) (lower: more uniform)"),
    ]
    for ax, (col, label) in zip(axes[3:], panels, strict=True):
        _band(ax, rows, col, None, "run")
        if (ref := _num(random_init.get(col))) is not None:
            ax.axhline(ref, color="grey", linestyle="--", label=f"random init {ref:.3f}")
        if col == "collapse_std":
            ax.axhline(
                collapse_std, color="red", linestyle=":", label=f"collapse below {collapse_std:g}"
            )
        _finish(ax, col, label)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return write_bytes(path, buf.getvalue())


def _band(ax: Any, rows: Sequence[Mapping[str, Any]], col: str, se: str | None, label: str):
    pts = [(_num(r.get("step")), _num(r.get(col)), _num(r.get(se)) if se else None) for r in rows]
    pts = [p for p in pts if p[0] is not None and p[1] is not None]
    if not pts:
        ax.text(0.5, 0.5, f"no {col} readings", ha="center", va="center", transform=ax.transAxes)
        return
    x, y = [p[0] for p in pts], [p[1] for p in pts]
    (line,) = ax.plot(x, y, marker="o", markersize=3, label=label)
    if se and all(p[2] is not None for p in pts):
        lo = [p[1] - SE_MARGIN * p[2] for p in pts]
        hi = [p[1] + SE_MARGIN * p[2] for p in pts]
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)


def _finish(ax: Any, title: str, ylabel: str) -> None:
    ax.set_title(title)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _num(v: Any) -> float | None:
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(v: Any) -> int | None:
    f = _num(v)
    return None if f is None else int(f)
