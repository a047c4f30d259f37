"""Command-line options that several verbs share, defined once."""

from __future__ import annotations

import argparse
import difflib
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
    """``--root SOURCE=DIR`` items as {source: folder}; every SOURCE must be a registered
    source (a misspelt one is an error with the closest name, before anything is built or
    replaced by phantoms), and no source may be given twice."""
    from medssl.data.sources import SOURCES, _import_all

    _import_all()
    roots: dict[str, Path] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(
                f"--root {item!r}: expected SOURCE=DIR, e.g. --root busi=/data/Dataset_BUSI_with_GT"
            )
        name, folder = item.split("=", 1)
        name = name.strip()
        if name not in SOURCES:
            close = difflib.get_close_matches(name, SOURCES.names(), n=1, cutoff=0.6)
            hint = (
                f"did you mean {close[0]}?" if close else f"sources: {', '.join(SOURCES.names())}"
            )
            raise ConfigError(f"--root {name}=: no source {name!r}; {hint}")
        if name in roots:
            raise ConfigError(f"--root {name}= is given twice; pass each source once")
        if not folder.strip():
            raise ConfigError(f"--root {name}=: the folder is missing, e.g. --root {name}=DIR")
        roots[name] = Path(folder).expanduser()
    return roots
