"""Overview figures: per database, the curves of every run drawn over each other.

- pretraining: the health read's kNN gain over each run's own random-init encoder against the
  optimizer step (0: no better than random init) and the training loss relative to its first
  epoch (losses of different methods have different scales, their relative fall does not);
- fine-tuning, per task: the validation monitor (MCC / Dice, the value best.pt is chosen on)
  and the training loss of every initialisation.

Seeds of one method are drawn as its mean with a band from the lowest to the highest seed.
Read from the runs' ``metrics.csv`` alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medssl.artifacts import read_csv, read_json
from medssl.runfiles import DONE, METRICS, RUNS

LABELS = {"val_mcc": "validation MCC", "val_dice": "validation Dice"}


def _monitor(folder: Path) -> str | None:
    """The validation value that chose best.pt (done.json's "monitor")."""
    done = folder / DONE
    if not done.is_file():
        return None
    return str(read_json(done).get("monitor") or "") or None


def _series(rows: Sequence[Mapping[str, str]], column: str, x: str = "epoch") -> dict[int, float]:
    out = {}
    for r in rows:
        try:
            e, v = int(float(r[x])), float(r.get(column, "nan"))
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(v):
            out[e] = v
    return out


def _draw(
    ax, curves: Mapping[str, list[dict[int, float]]], ylabel: str, xlabel: str = "epoch"
) -> dict[str, str]:
    """Mean over seeds of each label's curves, with a min-max band; label -> colour."""
    from medssl.reporting.curves import epoch_axis

    colours = {}
    for label, seeds in curves.items():
        epochs = sorted(set().union(*seeds)) if seeds else []
        if not epochs:
            continue
        values = np.array([[s.get(e, np.nan) for e in epochs] for s in seeds], dtype=float)
        with np.errstate(all="ignore"):
            mean = np.nanmean(values, axis=0)
        (line,) = ax.plot(epochs, mean, marker="o" if len(epochs) < 30 else None, ms=3, label=label)
        colours[label] = line.get_color()
        if len(seeds) > 1:
            ax.fill_between(
                epochs, np.nanmin(values, axis=0), np.nanmax(values, axis=0),
                color=line.get_color(), alpha=0.15,
            )  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    epoch_axis(ax, [e for seeds in curves.values() for s in seeds for e in s])
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    return colours


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * panels, 3.8))
    return fig, fig.subplots(1, panels, squeeze=False)[0]


def pretraining_overviews(
    run_dir: Path, plan: Sequence[Mapping[str, Any]], out: Path
) -> list[tuple[str, Path]]:
    """One figure per database: (caption, PNG path) written under ``out``."""
    from medssl.reporting.savefig import save_figure

    by_db: dict[str, dict[str, list]] = {}
    for e in plan:
        if e.get("kind") != "pretrain":
            continue
        folder = run_dir / RUNS / str(e.get("run_id"))
        if not (folder / METRICS).is_file():
            continue
        rows = read_csv(folder / METRICS)
        db = by_db.setdefault(str(e.get("database")), {"knn": {}, "loss": {}})
        method = str(e.get("method"))
        db["knn"].setdefault(method, []).append(_series(rows, "knn_gain", x="step"))
        loss = _series(rows, "train_loss")
        first = loss.get(min(loss), math.nan) if loss else math.nan
        db["loss"].setdefault(method, []).append(
            {k: v / first for k, v in loss.items()} if first else {}
        )
    figures = []
    for name, curves in by_db.items():
        fig, (ax_knn, ax_loss) = _figure(2)
        _draw(ax_knn, curves["knn"], "kNN balanced accuracy gain", xlabel="optimizer step")
        ax_knn.axhline(0.0, ls="--", lw=1, color="grey")
        ax_knn.set_title(f"{name}: health read over its random init (0 dashed)")
        _draw(ax_loss, curves["loss"], "training loss / first epoch")
        ax_loss.set_title(f"{name}: relative training loss")
        fig.tight_layout()
        path = save_figure(fig, out / f"overview_pretraining_{name}.png")
        figures.append(
            (f"{name}: pretraining of every method (mean over seeds, band: range)", path)
        )
    return figures


def finetuning_overviews(
    run_dir: Path, records: Sequence[Mapping[str, Any]], out: Path
) -> list[tuple[str, Path]]:
    """One figure per (database, task): validation monitor and training loss of every init."""
    from medssl.reporting.inputs import runs_of
    from medssl.reporting.savefig import save_figure

    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for run_id, run in runs_of(records).items():
        folder = run_dir / RUNS / run_id
        monitor = _monitor(folder)
        if monitor is None or not (folder / METRICS).is_file():
            continue
        rows = read_csv(folder / METRICS)
        g = groups.setdefault((run["database"], run["task"]), {"val": {}, "loss": {}})
        g["monitor"] = monitor
        g["val"].setdefault(run["init"], []).append(_series(rows, monitor))
        g["loss"].setdefault(run["init"], []).append(_series(rows, "train_loss"))
    figures = []
    for (db, task), curves in groups.items():
        fig, (ax_val, ax_loss) = _figure(2)
        label = LABELS.get(curves["monitor"], curves["monitor"])
        _draw(ax_val, curves["val"], label)
        ax_val.set_title(f"{db} {task}: {label}")
        _draw(ax_loss, curves["loss"], "training loss")
        ax_loss.set_title(f"{db} {task}: training loss")
        fig.tight_layout()
        path = save_figure(fig, out / f"overview_{task}_{db}.png")
        figures.append(
            (
                f"{db} {task}: fine-tuning of every initialisation (mean over runs, band: range)",
                path,
            )
        )
    return figures
