"""Quotas against what the sources hold: the candidates of each cell, every shortfall at once,
and quotas fitted to what is there.

A cell is one (role, source, class) quota. Finetuning is drawn first, each cell in a seeded
random order of its candidates; pretraining takes the records that remain, never a patient
already in finetuning (a patient never spans two roles). So before anything is loaded, the
builder knows what each finetuning cell can hold, and, from the first images each
finetuning cell will draw, what each pretraining cell can hold. Images that fail to load,
duplicates and label conflicts found while loading can lower that further; they are
reported after loading (:mod:`medssl.data.build`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from medssl.data.recipe import Recipe, finetune_candidate
from medssl.data.records import Record

Key = tuple[str, str]
"""(source, class) of a cell within one role."""


def draw_rng(recipe: Recipe, seed: int) -> np.random.Generator:
    """The generator of a build's draw orders: seeded by the build seed and the recipe's name,
    so that the databases of one preset draw independently."""
    name = int(hashlib.sha1(recipe.name.encode()).hexdigest()[:8], 16)
    return np.random.default_rng([seed, name])


def record_key(record: Record) -> str:
    return f"{record.source}:{record.file}"


def patient_group(record: Record) -> str:
    return f"{record.source}:{record.patient}" if record.patient else record_key(record)


@dataclass(frozen=True)
class Shortfall:
    """A quota its sources cannot fill: ``available`` is the largest quota that fits."""

    role: str
    source: str
    label: str
    want: int
    available: int
    when: str  # "before loading" | "after loading" (duplicates, conflicts, unreadable images)
    note: str = ""  # why fewer images qualify (masks required, normals with a finding)

    def line(self) -> str:
        after = (
            " after removing duplicates, label conflicts and unreadable images"
            if self.when == "after loading"
            else ""
        )
        return (
            f"{self.role}/{self.source}/{self.label}: quota {self.want}, {self.available} usable"
            f"{self.note}{after}; largest quota that fits: {self.available}"
        )

    def record(self) -> dict[str, object]:
        """The ``database.json`` entry."""
        return {
            "role": self.role,
            "source": self.source,
            "class": self.label,
            "want": self.want,
            "available": self.available,
            "when": self.when,
        }


def finetune_pool(recipe: Recipe, records: Mapping[str, list[Record]], key: Key) -> list[Record]:
    """Records of ``key`` that may serve finetuning (:func:`finetune_candidate`)."""
    source, label = key
    return [r for r in records[source] if r.label == label and finetune_candidate(r, recipe)]


def pretrain_pool(
    records: Mapping[str, list[Record]], key: Key, taken: set[str], ft_patients: set[str]
) -> list[Record]:
    """Records of ``key`` not taken, whose patient is not in finetuning."""
    source, label = key
    return [
        r
        for r in records[source]
        if r.label == label and record_key(r) not in taken and patient_group(r) not in ft_patients
    ]


def first_draws(
    pools: Mapping[Key, list[Record]], orders: Mapping[Key, np.ndarray], quotas: Mapping[Key, int]
) -> tuple[set[str], set[str]]:
    """(record keys, patient groups) of the images the finetuning cells will draw first:
    the first ``quota`` of each cell's order (exact when every drawn image loads and none is
    a duplicate)."""
    keys: set[str] = set()
    patients: set[str] = set()
    for key, pool in pools.items():
        for i in orders[key][: quotas.get(key, 0)]:
            keys.add(record_key(pool[int(i)]))
            patients.add(patient_group(pool[int(i)]))
    return keys, patients


def shortfalls(
    role: str, want: Mapping[Key, int], available: Mapping[Key, int], when: str
) -> list[Shortfall]:
    return [
        Shortfall(role, s, c, n, available.get((s, c), 0), when)
        for (s, c), n in sorted(want.items())
        if available.get((s, c), 0) < n
    ]


def fit_quotas(want: Mapping[Key, int], available: Mapping[Key, int]) -> dict[Key, int]:
    """The largest quotas, cell by cell no larger than ``want`` and ``available``, that keep
    the recipe's class ratios within the role.

    Rule: each class c can fill at most A_c = sum over its cells of min(want, available)
    of the W_c it wants; every class is scaled by the same factor f = min over classes of
    A_c / W_c, so class c gets floor(f W_c) images, dealt to its sources in proportion to
    their wants (largest remainder), each capped at what it holds. A class that no source
    holds (A_c = 0) cannot keep its ratio: it gets 0 and the others are not scaled for it.
    """
    by_class: dict[str, list[Key]] = {}
    for key, n in want.items():
        if n > 0:
            by_class.setdefault(key[1], []).append(key)
    cap = {k: min(want[k], available.get(k, 0)) for k in want}
    totals = {c: (sum(want[k] for k in ks), sum(cap[k] for k in ks)) for c, ks in by_class.items()}
    scales = [a / w for w, a in totals.values() if a > 0]
    f = min(scales, default=0.0)
    out = {k: 0 for k in want}
    for c, keys in by_class.items():
        w, a = totals[c]
        if a == 0:
            continue
        target = min(a, int(np.floor(f * w + 1e-9)))
        out.update(_deal(target, {k: want[k] for k in keys}, cap))
    return out


def _deal(total: int, weights: Mapping[Key, int], cap: Mapping[Key, int]) -> dict[Key, int]:
    """``total`` dealt over the keys in proportion to ``weights`` (largest remainder), none
    above its ``cap``; what a capped key cannot take goes to the others, in the same way."""
    out = {k: 0 for k in weights}
    left, open_keys = total, [k for k in weights if cap[k] > 0]
    while left > 0 and open_keys:
        weight = sum(weights[k] for k in open_keys)
        exact = {k: left * weights[k] / weight for k in open_keys}
        share = {k: int(exact[k]) for k in open_keys}
        for k in sorted(open_keys, key=lambda k: (-(exact[k] - share[k]), k))[
            : left - sum(share.values())
        ]:
            share[k] += 1
        for k in open_keys:
            take = min(share[k], cap[k] - out[k])
            out[k] += take
            left -= take
        open_keys = [k for k in open_keys if out[k] < cap[k]]
    return out


def shortfall_message(recipe: Recipe, where: str, items: Iterable[Shortfall]) -> str:
    """One error for every shortfall of a recipe, each with the largest quota that fits."""
    items = list(items)
    lines = "\n".join(f"  - {s.line()}" for s in items)
    return (
        f"recipe {recipe.name} ({where}): {len(items)} quota(s) cannot be filled:\n{lines}\n"
        "lower those quotas in the recipe, add images, or pass --fit-quotas (takes what is "
        "available, keeping the recipe's class ratios) or --lenient (takes what each quota "
        "can get)"
    )
