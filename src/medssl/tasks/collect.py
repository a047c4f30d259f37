"""A benchmark folder's finished runs: their records gathered into ``OUT/results.csv``, and the
planned runs that are not finished yet.

The plan is ``OUT/plan.json`` (written by the benchmark before its first run); a run is
finished when ``OUT/runs/<id>/done.json`` exists, whichever executor wrote it. The benchmark
gathers once every run is done, and ``medssl report`` (``build_report``) gathers again
before each report, so a report built while runs are still training, queued or lost holds
what has finished and says what has not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl.artifacts import read_csv, read_json, write_csv
from medssl.errors import DataError
from medssl.runfiles import (
    BENCHMARK_CONFIG,
    BENCHMARK_RESULT_COLUMNS,
    DONE,
    PLAN,
    RESULT_DEFAULTS,
    RESULTS,
    RUNS,
)

LISTED = 10
"""Unfinished runs named one by one in the note up to this many; beyond, counts per kind."""


@dataclass(frozen=True)
class Progress:
    """Where a benchmark stands: ``planned`` runs, the ``unfinished`` ones as (kind, run id)
    in plan order, and how many evaluation runs (fine-tunes, probes) gave records."""

    planned: int
    unfinished: tuple[tuple[str, str], ...]
    evaluated: int

    def note(self) -> str | None:
        """The report's line on what is missing; None when every planned run is finished."""
        if not self.unfinished:
            return None
        kinds = Counter(kind for kind, _ in self.unfinished)
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        ids = (
            ": " + ", ".join(rid for _, rid in self.unfinished)
            if len(self.unfinished) <= LISTED
            else ""
        )
        return (
            f"{len(self.unfinished)} of {self.planned} planned runs not finished ({counts}){ids}. "
            "This report holds only the finished runs' results; rerun `medssl benchmark` with "
            "the same --out to finish the others."
        )


def is_benchmark(out: Path) -> bool:
    """Whether ``out`` is a `medssl benchmark` folder with a plan (not a hand-made one)."""
    return (Path(out) / BENCHMARK_CONFIG).is_file() and (Path(out) / PLAN).is_file()


def read_progress(out: str | Path) -> Progress:
    """How far the benchmark in ``out`` is, from its plan and its runs' ``done.json``."""
    out = Path(out)
    plan = _plan(out)
    unfinished = tuple(
        (r["kind"], r["run_id"]) for r in plan if not (out / RUNS / r["run_id"] / DONE).is_file()
    )
    return Progress(len(plan), unfinished, sum(_records(out, r) is not None for r in plan))


def collect_results(out: str | Path) -> Progress:
    """Every finished evaluation run's records of ``OUT/plan.json`` in ``OUT/results.csv``,
    each tagged with the run's evaluation, label fraction and pretraining database
    (BENCHMARK_RESULT_COLUMNS); the benchmark's progress. Runs without ``done.json`` add
    nothing, even where their results.csv was written before a kill."""
    out = Path(out)
    rows: list[dict[str, str]] = []
    for run in _plan(out):
        f = _records(out, run)
        if f is None:
            continue
        tag = {
            "evaluation": run.get("evaluation") or RESULT_DEFAULTS["evaluation"],
            "fraction": repr(float(run.get("fraction", RESULT_DEFAULTS["fraction"]))),
            "pretrain_data": run.get("pretrain_data") or RESULT_DEFAULTS["pretrain_data"],
        }
        rows.extend(r | tag for r in read_csv(f))
    write_csv(out / RESULTS, rows, BENCHMARK_RESULT_COLUMNS)
    return read_progress(out)


def _records(out: Path, run: dict[str, Any]) -> Path | None:
    """A finished evaluation run's results.csv; None for pretraining or an unfinished run."""
    run_dir = out / RUNS / run["run_id"]
    f = run_dir / RESULTS
    if run["kind"] == "pretrain" or not (run_dir / DONE).is_file() or not f.is_file():
        return None
    return f


def _plan(out: Path) -> list[dict[str, Any]]:
    path = out / PLAN
    data = read_json(path)
    if not isinstance(data, list) or not all(
        isinstance(r, dict) and "run_id" in r and "kind" in r for r in data
    ):
        raise DataError(
            "expected the benchmark's list of runs, each with its run_id and kind; rerun "
            "`medssl benchmark` with the same --out to write it again",
            file=str(path),
        )
    return data
