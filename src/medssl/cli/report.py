"""`medssl report RUN_DIR`: rebuild the report from saved results alone (no models needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medssl.errors import DataError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="rebuild a benchmark's report from its saved results",
        description="Rebuild tables, statistics and the HTML report of a benchmark folder from "
        "results.csv and the saved per-image predictions, without the models.",
    )
    p.add_argument("run_dir", type=Path, help="benchmark folder (holds results.csv)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from medssl.reporting.report import build_report

    if not (args.run_dir / "results.csv").is_file():
        raise DataError(
            "no results.csv: not a benchmark folder, or no run has finished yet",
            file=str(args.run_dir),
        )
    path = build_report(args.run_dir)
    print(f"report: {path}")
    return 0
