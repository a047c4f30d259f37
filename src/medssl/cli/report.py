"""`medssl report RUN_DIR`: rebuild the report from saved results alone (no models needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medssl.errors import DataError

BENCHMARK_HINT = "pass a benchmark folder (the --out of `medssl benchmark`)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild a benchmark's report from its saved results",
        description="Rebuild tables, statistics and the HTML report of a benchmark folder from "
        "results.csv and the saved per-image predictions, without the models. A single run's "
        "folder (`medssl pretrain` or `medssl finetune`) is refused: its results are its own "
        "results.csv and figures.",
    )
    p.add_argument("run_dir", type=Path, help="benchmark folder (the --out of `medssl benchmark`)")
    p.set_defaults(func=_run)


def check_benchmark_folder(path: Path) -> Path:
    """``path`` if a benchmark report can be built from it (it holds ``results.csv`` and is not
    one run's folder), else a DataError that says what the folder is and what to pass.

    One run's folder is recognised by the ``done.json`` that `medssl pretrain` and
    `medssl finetune` write at its root; a benchmark writes ``plan.json`` there instead (and
    keeps its runs' ``done.json`` in ``runs/<id>/``).
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"no such folder; {BENCHMARK_HINT}", file=str(path))
    if (path / "done.json").is_file() and not (path / "plan.json").is_file():
        if (path / "results.csv").is_file() or (path / "best.pt").is_file():
            kind = (
                "a fine-tuning run folder (from `medssl finetune`; its metrics are its results.csv)"
            )
        else:
            kind = "a pretraining run folder (from `medssl pretrain`; it has no results to report)"
        parent = path.parent.parent
        owner = (
            f"; this run belongs to the benchmark {parent}: `medssl report {parent}`"
            if path.parent.name == "runs" and (parent / "plan.json").is_file()
            else ""
        )
        raise DataError(f"{kind}, not a benchmark folder; {BENCHMARK_HINT}{owner}", file=str(path))
    if not (path / "results.csv").is_file():
        started = (path / "plan.json").is_file()
        raise DataError(
            "no results.csv: no run of this benchmark has finished yet; rerun `medssl "
            "benchmark` with the same --out"
            if started
            else f"no results.csv: not a benchmark folder; {BENCHMARK_HINT}",
            file=str(path),
        )
    return path


def _run(args: argparse.Namespace) -> int:
    from medssl.reporting.report import build_report

    path = build_report(check_benchmark_folder(args.run_dir))
    print(f"report: {path}")
    return 0
