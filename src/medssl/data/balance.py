"""Balanced mode: quotas that match the rarest class and modality across databases.

The thesis's databases differ in class balance and size, so a difference between US1, MG2
and USMG3 can come from the data mix rather than the modality. In balanced mode every
database of a preset gets, per role, the same number of images of every class; a mixed
database takes half of each class from each modality. That number is the largest one that
every database can fill from the sources its recipe names (the rarest class and modality
decide). Within a (modality, class) cell the images are drawn from the recipe's sources in
proportion to what each holds (largest remainder). Finetuning is served first, from the
images that may serve it (:func:`medssl.data.recipe.finetune_candidate`: a finetuning normal
never shows a finding), pretraining from all that remain.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from medssl.data.recipe import Recipe, finetune_candidate
from medssl.data.records import CLASSES, Record


def _available(
    recipe: Recipe, records: dict[str, list[Record]], role: str, used: Counter
) -> dict[tuple[str, str], dict[str, int]]:
    """(modality, class) -> {source: images available for role}."""
    cells: dict[tuple[str, str], dict[str, int]] = {}
    for source in recipe.quota(role):
        for r in records[source]:
            if role == "finetune" and not finetune_candidate(r, recipe):
                continue
            cells.setdefault((r.modality, r.label), Counter())[source] += 1
    for (_mod, cls), per in cells.items():
        for source in per:
            per[source] -= used[(source, cls)]
    return cells


def balanced_recipes(
    recipes: list[Recipe], records: dict[str, dict[str, list[Record]]]
) -> list[Recipe]:
    """``records[recipe.name][source]`` are the records the recipe's readers return."""
    quotas: dict[str, dict[str, dict[str, dict[str, int]]]] = {r.name: {} for r in recipes}
    used: dict[str, Counter] = {r.name: Counter() for r in recipes}
    for role in ("finetune", "pretrain"):
        avail = {
            r.name: _available(r, records[r.name], role, used[r.name])
            for r in recipes
            if r.quota(role)
        }
        if not avail:
            continue
        # per database: images per class it can hold = min over classes of (sum over modalities),
        # with a mixed database limited to twice its rarer modality's count.
        per_class = []
        for r in recipes:
            if r.name not in avail:
                continue
            cells = avail[r.name]
            mods = sorted({m for m, _ in cells})
            per_mod = [min(sum(cells.get((m, c), {}).values()) for c in CLASSES) for m in mods]
            per_class.append(len(mods) * min(per_mod))
        n = min(per_class)
        for r in recipes:
            if r.name not in avail:
                continue
            cells = avail[r.name]
            mods = sorted({m for m, _ in cells})
            share = _split_evenly(n, len(mods))
            q = quotas[r.name].setdefault(role, {})
            for m, k in zip(mods, share, strict=True):
                for c in CLASSES:
                    for source, take in _largest_remainder(k, cells.get((m, c), {})).items():
                        if take:
                            q.setdefault(source, {})[c] = take
                            used[r.name][(source, c)] += take
    return [dataclasses.replace(r, quotas=quotas[r.name]) for r in recipes]


def _split_evenly(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def _largest_remainder(k: int, weights: dict[str, int]) -> dict[str, int]:
    total = sum(weights.values())
    if total == 0 or k == 0:
        return dict.fromkeys(weights, 0)
    exact = {s: k * w / total for s, w in weights.items()}
    out = {s: int(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: (-(exact[s] - out[s]), s))[: k - sum(out.values())]:
        out[s] += 1
    return out
