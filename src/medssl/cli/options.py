"""Command-line options that several verbs share, defined once."""

from __future__ import annotations

import argparse
from pathlib import Path

from medssl.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def add_overrides(p: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help=f"override a setting, e.g. --set {example} (repeatable)",
    )  # fmt: skip


def add_device(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument(
        "--device", choices=DEVICES, default=default,
        help=f"where to train (default: {default or 'the preset, auto'})",
    )  # fmt: skip


def add_roots(p: argparse.ArgumentParser) -> None:
    """``--root SOURCE=DIR`` (repeatable); parse with :func:`parse_roots`."""
    p.add_argument(
        "--root", action="append", default=[], metavar="SOURCE=DIR",
        help="folder of a downloaded source, e.g. --root busi=~/data/Dataset_BUSI_with_GT (repeatable)",
    )  # fmt: skip


def parse_roots(items: list[str]) -> dict[str, Path]:
    roots: dict[str, Path] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(
                f"--root {item!r}: expected SOURCE=DIR, e.g. --root busi=/data/Dataset_BUSI_with_GT"
            )
        name, folder = item.split("=", 1)
        roots[name.strip()] = Path(folder).expanduser()
    return roots
