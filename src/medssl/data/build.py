"""Readers → database: quotas, draws, splits, atomic write.

For each recipe the builder opens the sources it names once (:func:`open_sources`), then
fills the finetuning quotas first and the pretraining quotas from what remains (thesis
tables 5.1-5.2). Every quota is checked against its candidates before loading
(:mod:`medssl.data.quotas`); the cells are filled in a seeded draw order, duplicates, label
conflicts and the patient rule applied as each image arrives (:mod:`medssl.data.fill`); the
accepted images become arrays and manifest rows, split stratified and patient-grouped
(:mod:`medssl.data.assemble`), with the label and mask policies' counts
(:mod:`medssl.data.policies`) in ``database.json``. The database folder appears only when
complete. :mod:`medssl.data.build_preset` builds every database of a preset with it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medssl import __version__
from medssl.artifacts import atomic_dir
from medssl.data.assemble import assemble
from medssl.data.database import Database, write_database
from medssl.data.fill import Accepted, Cell, Filler
from medssl.data.manifest import ROLES, counts
from medssl.data.meta import DatabaseMeta
from medssl.data.phantoms import phantom_sources
from medssl.data.policies import label_policy_counts
from medssl.data.quotas import (
    Key,
    Shortfall,
    draw_rng,
    finetune_pool,
    first_draws,
    fit_quotas,
    pretrain_pool,
    shortfall_message,
    shortfalls,
)
from medssl.data.recipe import Recipe
from medssl.data.records import Record, Skipped
from medssl.data.sources import open_source
from medssl.data.splits import folds_for
from medssl.data.verify import array_checksum
from medssl.errors import DataError

LeftOut = dict[str, dict[str, dict[str, int]]]
"""{source: {role: {class: quota}}}: the quotas of sources a preset names but the user lacks."""


@dataclass(frozen=True)
class BuildOptions:
    """How one database is built, beside its recipe and sources.

    ``fit_quotas`` takes what is available instead of failing on a shortfall, keeping the
    recipe's class ratios (:func:`medssl.data.quotas.fit_quotas`; the quotas used are
    recorded in ``database.json``); ``lenient`` takes what each quota can get and skips
    unreadable images (both recorded as shortfalls).
    """

    seed: int = 0  # seed of the draws and splits
    lenient: bool = False
    fit_quotas: bool = False
    overwrite: bool = False  # replace an existing database folder
    # sources whose folders hold synthetic phantoms; a folder written by
    # medssl.data.phantoms.write_phantom_tree (`medssl data synth`) is recognised by its marker
    phantoms: tuple[str, ...] = ()
    left_out_sources: LeftOut = field(default_factory=dict)  # recorded (--available-sources)
    origin: str = ""  # the preset or recipe file, named in errors


@dataclass(frozen=True)
class Sources:
    """A recipe's sources, opened and read once: every record and what each reader skipped."""

    roots: dict[str, Path]  # name -> folder
    records: dict[str, list[Record]]
    skipped: dict[str, tuple[Skipped, ...]]

    def only(self, names: list[str]) -> Sources:
        """These sources less those a recipe no longer names (balanced quotas may drop one)."""
        keep = [n for n in self.roots if n in names]
        return Sources(
            {n: self.roots[n] for n in keep},
            {n: self.records[n] for n in keep},
            {n: self.skipped[n] for n in keep},
        )


def open_sources(recipe: Recipe, roots: Mapping[str, Path], *, lenient: bool) -> Sources:
    """Open and read the sources ``recipe`` names, with its reader options; ``lenient``
    readers skip bad items (counted) instead of raising."""
    missing = [s for s in recipe.source_names() if s not in roots]
    if missing:
        raise DataError(
            f"recipe {recipe.name} needs the source folder(s) of {', '.join(missing)}: pass "
            "--root NAME=DIR for each, --available-sources to build from the given sources "
            "only, or --phantoms for synthetic stand-ins"
        )
    records, skipped = {}, {}
    for name in recipe.source_names():
        src = open_source(name, roots[name], lenient=lenient, **recipe.sources.get(name, {}))
        records[name] = src.records()
        skipped[name] = tuple(src.skipped)
    return Sources({n: Path(roots[n]) for n in recipe.source_names()}, records, skipped)


def build_database(
    recipe: Recipe, sources: Sources, out: str | Path, options: BuildOptions | None = None
) -> Path:
    """Build one database folder at ``out`` from the opened ``sources`` of ``recipe``.

    Every quota is checked against the candidates before any image is loaded; all that
    cannot be filled are reported in one :class:`~medssl.errors.DataError`, each with the
    largest quota that fits, unless ``options`` take what there is (:class:`BuildOptions`;
    None: its defaults).
    """
    options = options or BuildOptions()
    sources = sources.only(recipe.source_names())
    skipped = [s for name in recipe.source_names() for s in sources.skipped[name]]
    where = ", ".join(
        ([f"--preset {options.origin}"] if options.origin else [])
        + [f"--root {s}={sources.roots[s]}" for s in recipe.source_names()]
    )
    rng = draw_rng(recipe, options.seed)
    plan = _plan(recipe, sources.records, rng, options)
    if plan.short and not (options.lenient or options.fit_quotas):
        raise DataError(shortfall_message(recipe, where, plan.short))
    filler, cells = _fill(recipe, sources.records, plan, rng, options, skipped)
    after = [
        Shortfall(c.role, *c.key, plan.want[c.role][c.key], c.got, "after loading")
        for c in cells
        if c.got < c.quota
    ]
    if after and not (options.lenient or options.fit_quotas):
        raise DataError(shortfall_message(recipe, where, after))
    seen = {(s.role, s.source, s.label) for s in plan.short}
    short = plan.short + [s for s in after if (s.role, s.source, s.label) not in seen]
    accepted = list(filler.accepted.values())
    _check_classes(recipe, accepted, options.origin)
    manifest, arrays = assemble(accepted, recipe, filler.groups, options.seed)
    meta = dataclasses.replace(
        _meta(recipe, sources, options, filler, cells, short, len(skipped)),
        checksum=array_checksum(arrays, manifest),
        counts=counts(manifest),
        **label_policy_counts(accepted, recipe),
    )
    with atomic_dir(out, overwrite=options.overwrite) as tmp:
        write_database(tmp, Database(None, meta, manifest, arrays), skipped)
    return Path(out)


@dataclass(frozen=True)
class _Plan:
    """The quotas of a build, checked against the candidates before loading."""

    want: dict[str, dict[Key, int]]  # {role: {(source, class): the recipe's quota}}
    quota: dict[str, dict[Key, int]]  # the quotas to fill (fitted under --fit-quotas)
    ft_pools: dict[Key, list[Record]]  # finetuning candidates of each cell
    ft_orders: dict[Key, np.ndarray]  # their seeded draw order
    short: list[Shortfall]  # quotas the candidates cannot fill


def _plan(
    recipe: Recipe,
    records: dict[str, list[Record]],
    rng: np.random.Generator,
    options: BuildOptions,
) -> _Plan:
    """Finetuning cells and their draw orders first; the pretraining cells' candidates are
    what the finetuning cells' first draws leave (:func:`medssl.data.quotas.first_draws`)."""
    want = {
        role: {
            (s, c): n
            for s in sorted(recipe.quota(role))
            for c, n in sorted(recipe.quota(role)[s].items())
            if n > 0
        }
        for role in ROLES
    }
    ft_pools = {k: finetune_pool(recipe, records, k) for k in want["finetune"]}
    ft_orders = {k: rng.permutation(len(pool)) for k, pool in ft_pools.items()}
    ft_avail = {k: len(p) for k, p in ft_pools.items()}
    ft_quota = fit_quotas(want["finetune"], ft_avail) if options.fit_quotas else want["finetune"]
    taken, ft_patients = first_draws(ft_pools, ft_orders, ft_quota)
    pt_avail = {k: len(pretrain_pool(records, k, taken, ft_patients)) for k in want["pretrain"]}
    pt_quota = fit_quotas(want["pretrain"], pt_avail) if options.fit_quotas else want["pretrain"]
    short = shortfalls("finetune", want["finetune"], ft_avail, "before loading")
    short += shortfalls("pretrain", want["pretrain"], pt_avail, "before loading")
    short = [_with_note(s, recipe, records) for s in short]
    quota = {"finetune": dict(ft_quota), "pretrain": dict(pt_quota)}
    return _Plan(want, quota, ft_pools, ft_orders, short)


def _fill(
    recipe: Recipe,
    records: dict[str, list[Record]],
    plan: _Plan,
    rng: np.random.Generator,
    options: BuildOptions,
    skipped: list[Skipped],
) -> tuple[Filler, list[Cell]]:
    """Fill the finetuning cells, then the pretraining cells from what remains (each drawn
    in an order seeded after the finetuning draws); cells that lost images to a label
    conflict draw again, until none can."""
    filler = Filler(recipe, options.lenient, skipped)
    cells: list[Cell] = []
    for k, n in plan.quota["finetune"].items():
        cells.append(Cell("finetune", k, n, plan.ft_pools[k], plan.ft_orders[k]))
        filler.fill(cells[-1])
    for k, n in plan.quota["pretrain"].items():
        pool = pretrain_pool(records, k, filler.taken, filler.patients["finetune"])
        cells.append(Cell("pretrain", k, n, pool, rng.permutation(len(pool))))
        filler.fill(cells[-1])
    while True:
        drawn = sum(c.pos for c in cells)
        for cell in cells:
            filler.fill(cell)
        if sum(c.pos for c in cells) == drawn:
            return filler, cells


def _meta(
    recipe: Recipe,
    sources: Sources,
    options: BuildOptions,
    filler: Filler,
    cells: list[Cell],
    short: list[Shortfall],
    skipped: int,
) -> DatabaseMeta:
    """``database.json`` but the contents' checksum, counts and policy counts."""
    used: dict[str, dict[str, dict[str, int]]] = {}
    for c in cells:
        used.setdefault(c.role, {}).setdefault(c.key[0], {})[c.key[1]] = c.got
    phantoms = (set(options.phantoms) | phantom_sources(sources.roots)) & set(sources.roots)
    return DatabaseMeta(
        name=recipe.name,
        medssl_version=__version__,
        recipe=recipe,
        tasks=recipe.tasks,
        seed=options.seed,
        lenient=options.lenient,
        fit_quotas=options.fit_quotas,
        quotas_used=used,
        roots={k: str(v) for k, v in sorted(sources.roots.items())},
        checksum="",
        duplicates=filler.duplicates,
        label_conflicts={"policy": recipe.label_conflicts, "found": filler.conflicts},
        shortfalls=[s.record() for s in short],
        left_out_sources=dict(options.left_out_sources),
        skipped=skipped,
        phantoms=tuple(sorted(phantoms)),
    )


def _with_note(s: Shortfall, recipe: Recipe, records: dict[str, list[Record]]) -> Shortfall:
    """The shortfall with why fewer finetuning images qualify (masks, normals with a finding)."""
    if s.role != "finetune":
        return s
    note = " with masks" if recipe.finetune_requires_mask else ""
    finding = sum(r.normal_with_finding for r in records[s.source] if r.label == s.label)
    if finding:
        note += f" ({finding} more are labelled normal but show a finding, which no finetuning normal may)"
    return dataclasses.replace(s, note=note)


def _check_classes(recipe: Recipe, accepted: list[Accepted], origin: str) -> None:
    """Each finetuning class needs an image in every fold of its split (thesis §5.1: 60/20/20
    is 5 stratified folds): fewer is an error that names the class and what to do."""
    k = sum(folds_for(recipe.split_finetune))
    found = Counter(a.record.label for a in accepted if a.role == "finetune")
    thin = {c: n for c, n in sorted(found.items()) if n < k}
    if thin:
        text = ", ".join(f"{c} has {n}" for c, n in thin.items())
        raise DataError(
            f"recipe {recipe.name}{' of ' + origin if origin else ''}: finetuning class(es) too "
            "small for the "
            f"{'/'.join(f'{x:g}' for x in recipe.split_finetune)} split (split_finetune), whose "
            f"{k} stratified folds need at least {k} images of each class: {text}; raise those "
            "classes' finetuning quotas, or set them to 0 to leave the class out"
        )
