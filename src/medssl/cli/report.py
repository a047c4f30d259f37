"""`medssl report RUN_DIR`: rebuild the report from saved results alone (no models needed)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild a benchmark's report from its saved results",
        description="Rebuild tables, statistics and the HTML report of a benchmark folder from "
        "results.csv and the saved per-image predictions, without the models. While a benchmark "
        "is unfinished, the report holds its finished runs and names the others. A single run's "
        "folder (`medssl pretrain` or `medssl finetune`) is refused: its results are its own "
        "results.csv and figures.",
    )
    p.add_argument("run_dir", type=Path, help="benchmark folder (the --out of `medssl benchmark`)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from medssl.reporting.report import build_report
    from medssl.tasks.collect import is_benchmark, read_progress

    path = build_report(args.run_dir)  # refuses a folder that is not a benchmark's
    print(f"report: {path}")
    if is_benchmark(args.run_dir) and (note := read_progress(args.run_dir).note()):
        print(note)
    return 0
