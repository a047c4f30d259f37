"""`medssl data survey`: what the given sources hold for each role, and a starter recipe.

Every record of every source is loaded once, checked for exact and near duplicates across
all of them (:mod:`medssl.data.dedupe`, the builder's rule) and counted per source and class:

- ``images``: the reader's records;
- ``duplicates``: records that repeat an earlier record's image with the same label (the
  first of each group counts as unique);
- ``label conflicts``: records in a duplicate group whose labels differ (all of them: the
  builder leaves such groups out by default);
- ``with mask``: unique records that may serve finetuning for classification and
  segmentation (a mask, non-empty for a lesion);
- ``without mask``: unique records that may serve finetuning for classification only;
- ``pretraining only``: unique normals that show a finding (CBIS-DDSM's
  BENIGN_WITHOUT_CALLBACK read as normal). Every unique record may serve pretraining.

The starter recipe gives finetuning a share of each class's eligible images (with masks
when any source has masks, so that segmentation is planned too; otherwise
``tasks: [classification]``) and pretraining what remains, less every record of a
duplicate or conflict group and the images of patients finetuning may draw (checked with
the builder's own draw for build seeds 0-4): ``medssl data build --preset RECIPE.yaml``
builds it as written.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medssl.artifacts import write_text
from medssl.data.dedupe import DuplicateIndex, content_hash, fingerprint
from medssl.data.quotas import (
    Key,
    draw_rng,
    finetune_pool,
    first_draws,
    pretrain_pool,
    record_key,
)
from medssl.data.recipe import Recipe
from medssl.data.records import CLASSES, Record
from medssl.data.sources import open_source
from medssl.data.splits import folds_for
from medssl.errors import ConfigError, DataError, OutputExistsError

COLUMNS = (
    "images",
    "duplicates",
    "label conflicts",
    "with mask",
    "without mask",
    "pretraining only",
)
SURVEY_SEEDS = range(5)
"""Build seeds the starter recipe's pretraining quotas are checked against."""


@dataclass
class Survey:
    """What the sources hold: counts[(source, class)][column], with the records read."""

    roots: dict[str, Path]
    records: dict[str, list[Record]]
    counts: dict[Key, Counter] = field(default_factory=dict)
    grouped: set[str] = field(default_factory=set)  # records of duplicate or conflict groups
    conflicts: list[list[str]] = field(default_factory=list)  # groups, "source:file (label)"
    skipped: int = 0

    def unique(self, key: Key) -> int:
        c = self.counts.get(key, Counter())
        return c["with mask"] + c["without mask"] + c["pretraining only"]


def survey(roots: dict[str, Path], *, lenient: bool = False) -> Survey:
    """Read and load every record of ``roots`` (name -> folder); see the module docstring."""
    if not roots:
        raise ConfigError("survey: no source given; pass --root NAME=DIR for each source")
    sources = {n: open_source(n, roots[n], lenient=lenient) for n in sorted(roots)}
    records = {n: s.records() for n, s in sources.items()}
    out = Survey(dict(roots), records, skipped=sum(len(s.skipped) for s in sources.values()))
    index = DuplicateIndex()
    members: dict[str, list[tuple[Record, bool]]] = {}  # first key -> [(record, usable mask)]
    for name in sorted(records):
        for rec in records[name]:
            try:
                loaded = rec.load()
            except DataError as e:
                if not lenient:
                    raise DataError(f"{name}: {e}") from None
                out.skipped += 1
                continue
            usable = rec.has_mask and (
                rec.label == "normal" or (loaded.mask is not None and bool(loaded.mask.any()))
            )
            sha, fp = content_hash(loaded.image), fingerprint(loaded.image)
            twin = index.find(sha, fp)
            if twin is None:
                index.add(record_key(rec), "any", sha, fp)
                members[record_key(rec)] = [(rec, usable)]
            else:
                members[twin[0].key].append((rec, usable))
    for group in members.values():
        labels = {r.label for r, _ in group}
        if len(labels) > 1:
            out.conflicts.append([f"{record_key(r)} ({r.label})" for r, _ in group])
        for i, (rec, usable) in enumerate(group):
            cell = out.counts.setdefault((rec.source, rec.label), Counter())
            cell["images"] += 1
            if len(labels) > 1:
                cell["label conflicts"] += 1
            elif i > 0:
                cell["duplicates"] += 1
            elif rec.normal_with_finding:
                cell["pretraining only"] += 1
            else:
                cell["with mask" if usable else "without mask"] += 1
            if len(group) > 1:
                out.grouped.add(record_key(rec))
    return out


def starter_recipe(s: Survey, name: str, *, finetune_share: float = 0.5) -> Recipe:
    """A recipe that builds as written from the surveyed sources (module docstring)."""
    if not 0 < finetune_share < 1:
        raise ConfigError(f"--finetune-share {finetune_share}: expected a share in (0, 1)")
    keys = sorted(s.counts)
    segmentation = any(s.counts[k]["with mask"] for k in keys)
    eligible = {
        k: s.counts[k]["with mask"] + (0 if segmentation else s.counts[k]["without mask"])
        for k in keys
    }
    ft = {k: int(np.floor(finetune_share * eligible[k])) for k in keys}
    tasks = ("classification", "segmentation") if segmentation else ("classification",)
    recipe = Recipe(name=name, tasks=tasks)
    need = sum(folds_for(recipe.split_finetune))
    for c in CLASSES:  # a class too small for the split's folds is left out of finetuning
        if sum(n for (_, cls), n in ft.items() if cls == c) < need:
            ft.update({k: 0 for k in keys if k[1] == c})
    pt = {k: _pretrain_fit(s, recipe, k, ft) for k in keys}
    quotas = {
        "finetune": _nested({k: n for k, n in ft.items() if n}),
        "pretrain": _nested({k: n for k, n in pt.items() if n}),
    }
    return Recipe(name=name, tasks=tasks, quotas=quotas)


def _pretrain_fit(s: Survey, recipe: Recipe, key: Key, ft: dict[Key, int]) -> int:
    """Pretraining images of ``key`` a build can draw for certain: the fewest left after the
    finetuning draw of build seeds :data:`SURVEY_SEEDS`, none of a duplicate or conflict
    group (its twin may be in finetuning, which refuses it)."""
    ft_keys = {k: n for k, n in ft.items() if n}
    pools = {k: finetune_pool(recipe, s.records, k) for k in ft_keys}
    least = None
    for seed in SURVEY_SEEDS:
        rng = draw_rng(recipe, seed)
        orders = {k: rng.permutation(len(pools[k])) for k in ft_keys}
        taken, patients = first_draws(pools, orders, ft_keys)
        pool = pretrain_pool(s.records, key, taken, patients)
        n = sum(record_key(r) not in s.grouped for r in pool)
        least = n if least is None else min(least, n)
    return max(0, least or 0)


def _nested(flat: dict[Key, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (source, label), n in sorted(flat.items()):
        out.setdefault(source, {})[label] = n
    return out


def recipe_yaml(s: Survey, recipe: Recipe, share: float) -> str:
    """The starter recipe as a commented YAML file."""
    roots = " ".join(f"--root {n}={p}" for n, p in sorted(s.roots.items()))
    lines = [
        f"# Starter recipe written by `medssl data survey {roots}`.",
        "# Unique images per source and class (after duplicates and label conflicts):",
    ]
    for source, label in sorted(s.counts):
        c = s.counts[(source, label)]
        lines.append(
            f"#   {source}/{label}: {s.unique((source, label))} unique ({c['with mask']} with mask, "
            f"{c['without mask']} without, {c['pretraining only']} pretraining only)"
        )
    what = "with masks" if "segmentation" in recipe.tasks else "all"
    lines += [
        f"# Finetuning takes {share:g} of each class's eligible images ({what}), pretraining",
        "# what remains; edit the quotas freely, `medssl data build` reports every quota that",
        "# does not fit. Format: docs/datasets.md, 'Recipes'.",
        f"name: {recipe.name}",
        f"tasks: [{', '.join(recipe.tasks)}]",
        "quotas:",
    ]
    for role in ("finetune", "pretrain"):
        lines.append(f"  {role}:")
        per_source = recipe.quota(role)
        if not per_source:
            lines[-1] += " {}"
        for source, per_class in sorted(per_source.items()):
            cells = ", ".join(f"{c}: {n}" for c, n in sorted(per_class.items()))
            lines.append(f"    {source}: {{{cells}}}")
    return "\n".join(lines) + "\n"


def survey_text(s: Survey) -> str:
    """Per source, a table of the counts (module docstring)."""
    out = ["# Survey", ""]
    for source in sorted(s.records):
        out += [f"## {source} ({s.roots[source]})", ""]
        out.append("| class | " + " | ".join(COLUMNS) + " |")
        out.append("|---|" + "---|" * len(COLUMNS))
        for label in CLASSES:
            c = s.counts.get((source, label))
            if c:
                out.append(f"| {label} | " + " | ".join(str(c[k]) for k in COLUMNS) + " |")
        out.append("")
    out.append(f"Label conflicts (duplicates whose labels differ): {len(s.conflicts)} group(s)")
    out += [f"- {' ~ '.join(g)}" for g in s.conflicts]
    if s.skipped:
        out.append(f"Left out (unreadable, label rules): {s.skipped} item(s)")
    return "\n".join(out) + "\n"


def run_survey(
    roots: dict[str, Path],
    out: str | Path,
    *,
    name: str | None = None,
    finetune_share: float = 0.5,
    lenient: bool = False,
    overwrite: bool = False,
) -> str:
    """Survey ``roots``, write the starter recipe to ``out``; returns the text to print."""
    out = Path(out)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(f"--out {out}: the starter recipe is a .yaml file")
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists; choose another --out or pass --overwrite")
    s = survey(roots, lenient=lenient)
    recipe = starter_recipe(s, name or out.stem.upper(), finetune_share=finetune_share)
    write_text(out, recipe_yaml(s, recipe, finetune_share))
    rootargs = " ".join(f"--root {n}={p}" for n, p in sorted(roots.items()))
    return (
        survey_text(s)
        + f"\nstarter recipe written: {out} (database {recipe.name}, tasks: "
        + f"{', '.join(recipe.tasks)})\n"
        + f"build it with: medssl data build --preset {out} --out DIR {rootargs}\n"
    )
