"""Phantom trees: every source's phantoms written in its real on-disk layout.

Each source's writer lives beside its reader (``Source.write_phantoms`` in
``data/sources/<name>.py``), so that the reader is exercised exactly as real data exercises
it and a new source is one file; the writers draw images and write files through
:mod:`medssl.data.synth`, which knows no source. This module asks the sources' registry for
the writers. ``counts`` give the number of *usable* images per class;
corner cases a reader must drop (CBIS-DDSM images whose rows disagree, INbreast BI-RADS 0)
come on top. Every byte follows from the seed (:class:`~medssl.data.synth.stream.Stream`).
Sources are written one after the other: the demo's
~2,000 images take well under a minute, and nobody waits on phantoms often enough for
parallel writers to pay for themselves. A tree that builds trust is written whole with its
marker (:func:`write_phantom_tree`), and reused when it matches (:func:`ensure_phantoms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from medssl.artifacts import atomic_dir, read_json, write_json
from medssl.data.recipe import Scale, demand, load_recipes
from medssl.data.sources import Source, source_class, source_names
from medssl.data.synth.stream import Stream
from medssl.errors import ConfigError


def writes_phantoms(cls: type[Source]) -> bool:
    """Whether a registered source has a phantom writer of its own."""
    return cls.write_phantoms.__func__ is not Source.write_phantoms.__func__


def phantom_writers() -> list[str]:
    """Names of the registered sources that can write phantoms."""
    return [n for n in source_names() if writes_phantoms(source_class(n))]


def source_scale(scale: Scale, name: str) -> float:
    """The size factor of source ``name`` under ``scale``."""
    if isinstance(scale, Mapping):
        return float(scale[source_class(name).modality])
    return float(scale)


def write_source(
    name: str, root: Path, counts: Mapping[str, int], *, seed: int = 0, **opts: Any
) -> Path:
    """Write phantoms of source ``name`` under ``root`` in its real layout.

    counts: class -> number of usable images (only the classes the source publishes);
    ``opts``: the source writer's options (``scale`` and corner-case shares).
    Returns the folder to pass as ``--root NAME=DIR``.
    """
    cls = source_class(name)
    if not writes_phantoms(cls):
        raise ConfigError(
            f"source {name!r} has no phantom writer; sources with one: {', '.join(phantom_writers())}"
        )
    allowed = cls.published_classes
    for c, n in counts.items():
        if c not in allowed:
            raise ConfigError(
                f"phantom counts for {name!r}: unknown class {c!r}; valid: {', '.join(allowed)}"
            )
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(
                f"phantom counts for {name!r}: {c} must be a whole number >= 0, not {n!r}"
            )
    full = {c: int(counts.get(c, 0)) for c in allowed}
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return cls.write_phantoms(root, full, Stream(seed, name), **opts)


def default_counts() -> dict[str, dict[str, int]]:
    """The demo preset's sizes (:func:`medssl.data.recipe.demand` of its recipes)."""
    return demand(load_recipes("demo"))


def write_phantoms(
    out: Path,
    counts: Mapping[str, Mapping[str, int]] | None = None,
    *,
    seed: int = 0,
    scale: Scale = 1.0,
) -> dict[str, Path]:
    """Write the sources named in ``counts`` (default :func:`default_counts`) under
    ``out/<name>/``, one after the other.

    counts: name -> class -> usable images. ``scale`` shrinks ultrasound and mammography
    image sizes, alike or per modality (:data:`Scale`; mini-MIAS stays 1024 x 1024, as
    published). Files are written plainly: write into a fresh folder that only becomes
    trusted whole (:func:`write_phantom_tree` does this).
    Returns {name: folder to pass as ``--root NAME=DIR``}.
    """
    counts = default_counts() if counts is None else counts
    valid = phantom_writers()
    unknown = sorted(set(counts) - set(valid))
    if unknown:
        raise ConfigError(
            f"phantom counts name source(s) {unknown} without a phantom writer; valid: {valid}"
        )
    out = Path(out)
    return {
        name: write_source(
            name, out / name, counts[name], seed=seed, scale=source_scale(scale, name)
        )
        for name in sorted(counts)
    }


def phantom_sources(roots: dict[str, Path]) -> set[str]:
    """Sources whose folder lies in a phantom tree written by :func:`write_phantom_tree`
    (its marker names the folder among its roots)."""
    found = set()
    for name, root in roots.items():
        root = Path(root).resolve()
        for folder in (root, *root.parents):
            marker = folder / PHANTOM_MARKER
            if marker.is_file():
                saved = read_json(marker).get("roots", {})
                if any(Path(v).resolve() == root for v in saved.values()):
                    found.add(name)
                break
    return found


PHANTOM_MARKER = "phantoms.json"


def write_phantom_tree(
    folder: Path,
    counts: dict[str, dict[str, int]],
    *,
    seed: int,
    scale: Scale = 1.0,
    overwrite: bool = False,
) -> dict[str, Path]:
    """``write_phantoms`` into a temporary sibling of ``folder``, moved into place whole with
    its marker (seed, scale, counts, roots, and the tree's file count and bytes), so an
    interrupted write leaves nothing behind.

    The phantom files themselves are written plainly, without an fsync each (thousands of
    journal commits, 15 s of the demo's ~35 s): an interrupted or failed write never
    reaches the move, and after an operating-system crash the marker's inventory no longer
    matches files the disk did not keep, so :func:`ensure_phantoms` writes them again."""
    folder = Path(folder)
    with atomic_dir(folder, overwrite=overwrite) as tmp:
        written = write_phantoms(tmp, counts, seed=seed, scale=scale)
        roots = {k: folder / Path(v).relative_to(tmp) for k, v in written.items()}
        stamp = {"seed": seed, "scale": scale, "counts": counts, "inventory": _inventory(tmp)}
        write_json(tmp / PHANTOM_MARKER, {**stamp, "roots": {k: str(r) for k, r in roots.items()}})
    return roots


def ensure_phantoms(
    folder: Path, counts: dict[str, dict[str, int]], *, seed: int, scale: Scale = 1.0
) -> dict[str, Path]:
    """Write phantoms once; reuse them when ``folder`` already holds the same counts and seed,
    and the files its marker lists (their number and bytes)."""
    stamp = {"seed": seed, "scale": scale, "counts": counts}
    marker = folder / PHANTOM_MARKER
    if marker.is_file():
        saved = read_json(marker)
        if all(saved.get(k) == v for k, v in stamp.items()) and saved.get(
            "inventory"
        ) == _inventory(folder):
            return {k: Path(v) for k, v in saved["roots"].items()}
    return write_phantom_tree(folder, counts, seed=seed, scale=scale, overwrite=True)


def _inventory(folder: Path) -> dict[str, int]:
    """{files, bytes} of a phantom tree, its marker left out."""
    sizes = [
        p.stat().st_size
        for p in Path(folder).rglob("*")
        if p.is_file() and p.name != PHANTOM_MARKER
    ]
    return {"files": len(sizes), "bytes": sum(sizes)}
