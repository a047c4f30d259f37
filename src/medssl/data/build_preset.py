"""Every database of a preset: phantoms or left-out sources for the missing folders, balance.

:func:`build_preset` builds every recipe of a preset with :func:`medssl.data.build.build_database`:
with phantoms for the sources without a folder where the preset declares ``phantoms: true``
(or ``--phantoms`` asks), without those sources under ``--available-sources``, and with
balanced quotas under ``--balanced`` (:mod:`medssl.data.balance`), each recipe's sources
opened once for both the balance and the build.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from medssl.data.balance import balanced_recipes
from medssl.data.build import BuildOptions, LeftOut, build_database, open_sources
from medssl.data.phantoms import ensure_phantoms
from medssl.data.recipe import Preset, Recipe, demand, load_preset
from medssl.errors import ConfigError, DataError


def build_preset(
    preset: str | Path,
    out: str | Path,
    roots: Mapping[str, Path] | None = None,
    *,
    seed: int = 0,
    lenient: bool = False,
    fit_quotas: bool = False,
    overwrite: bool = False,
    balanced: bool = False,
    phantoms: bool | None = None,
    available_sources: bool = False,
    warn: Callable[[str], None] | None = None,
) -> list[Path]:
    """Build every database of a preset into ``out/<NAME>``.

    Sources without a ``roots`` entry are generated as synthetic phantoms under
    ``out/phantoms`` when ``phantoms`` is true (default: when the preset declares
    ``phantoms: true``), with a warning through ``warn`` (default: standard error); each
    database lists its phantom sources in ``database.json`` (``phantoms``). With
    ``available_sources`` the sources without a ``roots`` entry are left out instead: their
    quotas are dropped, and recorded in ``database.json`` (``left_out_sources``); a database
    left without a finetuning source is an error.
    """
    warn = warn or _stderr
    out = Path(out)
    loaded = load_preset(preset)
    roots = {k: Path(v) for k, v in (roots or {}).items()}
    if phantoms and available_sources:
        raise ConfigError(
            "--phantoms and --available-sources exclude each other: the first makes phantoms "
            "for the sources without --root, the second leaves those sources out"
        )
    if phantoms is None:
        phantoms = loaded.phantoms and not available_sources
    recipes = list(loaded.recipes)
    missing = sorted({s for r in recipes for s in r.source_names()} - set(roots))
    generated: tuple[str, ...] = ()
    left_out: dict[str, LeftOut] = {r.name: {} for r in recipes}
    if missing and available_sources:
        recipes, left_out = _available_only(recipes, missing, preset, warn)
    elif missing and phantoms:
        roots.update(_stand_ins(loaded, missing, out / "phantoms", seed, warn, preset))
        generated = tuple(missing)
    opened = {r.name: open_sources(r, roots, lenient=lenient) for r in recipes}
    if balanced:
        recipes = balanced_recipes(recipes, {n: s.records for n, s in opened.items()})
    options = BuildOptions(
        seed=seed, lenient=lenient, fit_quotas=fit_quotas, overwrite=overwrite,
        phantoms=generated, origin=str(preset),
    )  # fmt: skip
    return [
        build_database(
            r,
            opened[r.name],
            out / r.name,
            dataclasses.replace(options, left_out_sources=left_out[r.name]),
        )
        for r in recipes
    ]


def _stderr(message: str) -> None:
    print(f"medssl: {message}", file=sys.stderr)


def _stand_ins(
    loaded: Preset,
    missing: list[str],
    folder: Path,
    seed: int,
    warn: Callable[[str], None],
    preset: str | Path,
) -> dict[str, Path]:
    """{source: phantom folder} of the ``missing`` sources, written once under ``folder``
    (:func:`medssl.data.phantoms.ensure_phantoms`) at the preset's scale, with a warning."""
    need = demand(list(loaded.recipes))
    written = ensure_phantoms(
        folder, {s: need[s] for s in missing}, seed=seed, scale=loaded.phantom_scale
    )
    warn(
        f"warning: synthetic phantoms stand in for {', '.join(missing)} (no --root given): "
        f"the databases of preset {preset} are not patient data"
    )
    return written


def _available_only(
    recipes: list[Recipe], missing: list[str], preset: str | Path, warn: Callable[[str], None]
) -> tuple[list[Recipe], dict[str, LeftOut]]:
    """The recipes without the ``missing`` sources, and each recipe's dropped quotas, with a
    warning."""
    kept, dropped = [], {}
    for r in recipes:
        smaller, gone = r.without_sources(set(missing))
        if not smaller.quota("finetune"):
            raise DataError(
                f"--available-sources: recipe {r.name} of preset {preset} has no finetuning "
                f"source left (it needs {', '.join(sorted(r.quota('finetune')))}); pass "
                "--root for one of them"
            )
        kept.append(smaller)
        dropped[r.name] = gone
    warn(
        f"warning: --available-sources: left out {', '.join(missing)} (no --root); their "
        "quotas are dropped (database.json: left_out_sources)"
    )
    return kept, dropped
