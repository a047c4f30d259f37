"""The health read of every pretraining run, as a table and warnings for the report.

From each pretraining run folder (listed in ``plan.json``): ``metrics.csv``,
``random_init.json`` (the reading of the run's own random-init encoder) and ``done.json``
(its pool), read by :func:`medssl.engine.health.pretraining_health`. A run that collapsed, or
whose kNN read never beat its random-init encoder's by more than 2 standard errors, gets a
warning at the top of the report: fine-tuning from such an encoder tests an encoder that did
not learn, not the method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medssl.artifacts import read_csv, read_json
from medssl.engine.health import Health, pretraining_health
from medssl.reporting.tables import Table, fmt_number
from medssl.runfiles import DONE, METRICS, RANDOM_INIT, RUNS


def run_health(folder: Path) -> Health | None:
    """The health of the pretraining run in ``folder``; None without its metrics.csv."""
    metrics = folder / METRICS
    if not metrics.is_file():
        return None
    random = folder / RANDOM_INIT
    return pretraining_health(read_csv(metrics), read_json(random) if random.is_file() else {})


def run_pool(folder: Path) -> Mapping[str, Any]:
    """The pool a finished pretraining run saw (done.json's ``pool``; {} before it finished)."""
    done = folder / DONE
    return read_json(done).get("pool") or {} if done.is_file() else {}


def health_of_runs(
    run_dir: Path, plan: Sequence[Mapping[str, Any]]
) -> list[tuple[Mapping[str, Any], Health]]:
    """(plan entry with the run's ``pool``, health) of every pretraining run with records."""
    out = []
    for entry in plan:
        if entry.get("kind") != "pretrain" or "run_id" not in entry:
            continue
        folder = run_dir / RUNS / str(entry["run_id"])
        health = run_health(folder)
        if health is not None:
            out.append(({**entry, "pool": run_pool(folder)}, health))
    return out


def _flag(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "no")


def _with_se(value: float | None, se: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:+.3f}" if signed else fmt_number(value)
    return text if se is None else f"{text} ± {se:.3f}"


def _pool(entry: Mapping[str, Any]) -> str:
    pool = entry.get("pool") or {}
    if not pool:
        return "n/a"
    return f"{pool.get('pool', '')} ({pool.get('images', '')})"


def health_table(items: Sequence[tuple[Mapping[str, Any], Health]]) -> Table:
    rows = tuple(
        (
            str(e.get("database", "")), str(e.get("method", "")), str(e.get("seed", "")),
            _pool(e), "n/a" if h.steps is None else str(h.steps),
            fmt_number(h.random_knn), _with_se(h.final_knn, h.final_knn_se),
            _with_se(h.final_knn_gain, h.final_knn_gain_se, signed=True),
            fmt_number(h.random_linear), _with_se(h.final_linear, h.final_linear_se),
            _with_se(h.final_linear_gain, h.final_linear_gain_se, signed=True),
            "never" if h.useful_step is None else str(h.useful_step),
            fmt_number(h.final_std), _flag(h.collapsed), _flag(h.never_beat_random),
        )
        for e, h in items
    )  # fmt: skip
    return Table(
        name="table_pretraining_health",
        title="Pretraining health: the health read against the run's random-init encoder "
        "(last read), collapse",
        columns=(
            "database", "method", "seed", "pool (images)", "steps", "kNN random init",
            "kNN last ± SE", "kNN gain ± SE", "linear random init", "linear last ± SE",
            "linear gain ± SE", "useful at step", "std x sqrt(D)", "collapsed",
            "never beat random",
        ),
        rows=rows,
        notes=(
            "Health read: balanced accuracy (chance 1/C) on frozen features of the labelled "
            "finetuning train and validation images (never test): kNN leave-one-patient-out "
            "(cosine, k nearest of other patients), linear = out-of-fold logistic regression "
            "(patient-grouped folds). Gain: paired difference with the run's own random-init "
            "encoder on the same images; SE over images within class, conditional on the two "
            "networks. Useful at step: the first read whose kNN gain exceeds 2 SE; never beat "
            "random: no read did. Pool: what pretraining saw (pretrain: the pretraining role; "
            "pretrain+train: also the finetuning train split's images, labels unused; under "
            "label fractions the whole train split, only its labels are subsampled). std x "
            "sqrt(D): ~1 spread out, 0 collapsed (collapsed below 0.1)."
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
            f"{h.message.removeprefix('WARNING: ')}; its fine-tuning results test an encoder no "
            "better than random init by more than its health read's noise, not the method."
        )
    return out
