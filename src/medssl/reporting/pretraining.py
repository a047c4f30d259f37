"""The health read of every pretraining run, as a table and warnings for the report.

From each pretraining run folder (listed in ``plan.json``): ``metrics.csv`` and
``random_init.json`` (the kNN reading of the run's own random-init encoder), read by
:func:`medssl.engine.health.pretraining_health`. A run that collapsed, or whose kNN reading
never beat its random-init encoder's, gets a warning at the top of the report: fine-tuning from
such an encoder tests an encoder that did not learn, not the method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medssl.artifacts import read_csv, read_json
from medssl.engine.health import Health, pretraining_health
from medssl.reporting.tables import Table, fmt_number
from medssl.runfiles import METRICS, RANDOM_INIT, RUNS


def run_health(folder: Path) -> Health | None:
    """The health of the pretraining run in ``folder``; None without its metrics.csv."""
    metrics = folder / METRICS
    if not metrics.is_file():
        return None
    random = folder / RANDOM_INIT
    random_knn = read_json(random).get("knn_acc") if random.is_file() else None
    return pretraining_health(read_csv(metrics), random_knn)


def health_of_runs(
    run_dir: Path, plan: Sequence[Mapping[str, Any]]
) -> list[tuple[Mapping[str, Any], Health]]:
    """(plan entry, health) of every pretraining run with records."""
    out = []
    for entry in plan:
        if entry.get("kind") != "pretrain" or "run_id" not in entry:
            continue
        health = run_health(run_dir / RUNS / str(entry["run_id"]))
        if health is not None:
            out.append((entry, health))
    return out


def _flag(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def health_table(items: Sequence[tuple[Mapping[str, Any], Health]]) -> Table:
    rows = tuple(
        (
            str(e.get("database", "")), str(e.get("method", "")), str(e.get("seed", "")),
            str(h.epochs), fmt_number(h.random_knn), fmt_number(h.best_knn),
            fmt_number(h.final_knn), fmt_number(h.final_std), fmt_number(h.final_alignment),
            fmt_number(h.final_uniformity), _flag(h.collapsed), _flag(h.never_beat_random),
        )
        for e, h in items
    )  # fmt: skip
    return Table(
        name="table_pretraining_health",
        title="Pretraining health: kNN monitor against the random-init encoder, collapse, "
        "alignment and uniformity (last epoch)",
        columns=(
            "database", "method", "seed", "epochs", "kNN random init", "kNN best", "kNN last",
            "std x sqrt(D)", "alignment", "uniformity", "collapsed", "never beat random",
        ),
        rows=rows,
        notes=(
            "kNN: accuracy of a cosine kNN on frozen features (finetuning-train bank, "
            "finetuning-val queries); random init: the run's own initial encoder read the same "
            "way. std x sqrt(D): ~1 spread out, 0 collapsed (collapsed below 0.1). Alignment "
            "(lower is better) and uniformity (lower is more uniform): Wang & Isola 2020."
        ),
    )  # fmt: skip


def health_warnings(
    items: Sequence[tuple[Mapping[str, Any], Health]], phantoms: Mapping[str, Any]
) -> list[str]:
    """One warning per run that collapsed or never beat its random-init encoder."""
    out = []
    for e, h in items:
        if not (h.collapsed or h.never_beat_random):
            continue
        db = str(e.get("database", ""))
        prefix = "On synthetic phantoms: " if db in phantoms else ""
        out.append(
            f"{prefix}{db} {e.get('method', '')} pretraining seed {e.get('seed', '')}: "
            f"{h.message.removeprefix('WARNING: ')}; its fine-tuning results test an encoder that "
            "did not learn, not the method."
        )
    return out
