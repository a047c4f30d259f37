"""Command-line options that several verbs share, defined once."""

from __future__ import annotations

import argparse
import difflib
import os
from pathlib import Path

from medssl.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def add_overrides(p: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable), collected in ``args.overrides``."""
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help=f"override a setting, e.g. --set {example} (repeatable)",
    )  # fmt: skip


def check_one_budget(epochs: int | None, overrides: list[str]) -> None:
    """``--epochs`` and ``--set trainer.epochs=`` both given is an error (one way to set the
    epochs: the flag once beat the setting silently)."""
    given = [o for o in overrides if o.split("=", 1)[0].strip() == "trainer.epochs"]
    if epochs is not None and given:
        raise ConfigError(
            f"--epochs {epochs} and --set {given[-1]} both give the epochs; give one of them"
        )


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


def out_folder(value: str) -> Path:
    """argparse ``type`` of an ``--out`` folder: refused at once (before anything loads or is
    written) when it is a file, lies under a file, or cannot be written (a read-only
    filesystem, no permission); a folder that exists is the verb's to judge (resume,
    ``--overwrite``)."""
    return _writable(Path(value).expanduser(), folder=True)


def out_file(value: str) -> Path:
    """argparse ``type`` of an ``--out`` file (a recipe the survey writes): the same checks,
    and not a folder."""
    return _writable(Path(value).expanduser(), folder=False)


def _writable(path: Path, *, folder: bool) -> Path:
    if folder and path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path} is a file; expected a folder (a new one, or one this verb wrote before)"
        )
    if not folder and path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a folder; expected a file name to write")
    here = path if folder and path.exists() else path.parent
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path}: {here} is a file, so nothing can be written under it; choose another path"
        )
    if not os.access(here, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"{path}: {here} cannot be written (a read-only filesystem or no permission); "
            "choose a writable path"
        )
    return path
