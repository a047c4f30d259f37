"""`medssl report` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from medssl.errors import MedsslError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="(not yet available)", description="(not yet available)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    raise MedsslError("`medssl report` is not implemented yet")
