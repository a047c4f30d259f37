"""Quota filling: draws, loads and accepts images cell by cell.

A cell is one (role, source, class) quota whose candidates are drawn in a seeded random
order (:mod:`medssl.data.quotas`). Each drawn image is prepared (:mod:`medssl.data.prepare`)
and checked against every accepted image for duplicates (:mod:`medssl.data.dedupe`). A
patient never spans the two roles, and an image whose twin is in the other role is refused;
a twin in the same role is kept in its twin's split (their patient groups are merged).
Twins whose labels differ (label conflicts) are left out, the whole duplicate group, under
the recipe's ``label_conflicts: exclude``, and their cells lose them and draw again; under
``keep`` they are kept and reported. These rules share one pass's state, so one class
holds it: :class:`Filler`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medssl.data.dedupe import DuplicateIndex, Entry
from medssl.data.prepare import Prepared, prepare
from medssl.data.quotas import Key, patient_group, record_key
from medssl.data.recipe import Recipe
from medssl.data.records import Record, Skipped


@dataclass
class Accepted:
    """An image the filler kept, for its role."""

    record: Record
    role: str
    item: Prepared
    group: str  # patient group used for splitting


class PatientGroups:
    """Union-find over patient groups, so duplicates in one role share a split.

    A merged group is named by its smallest member: that name is the manifest's ``patient``
    column, hashed into the database checksum, and scipy's ``DisjointSet`` does not promise
    which member represents a set."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, g: str) -> str:
        self.parent.setdefault(g, g)
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class Cell:
    """One quota being filled: candidates in their seeded draw order."""

    role: str
    key: Key
    quota: int
    pool: list[Record]
    order: np.ndarray
    pos: int = 0
    got: int = 0


class Filler:
    """Draws, loads and accepts images cell by cell (module docstring): duplicates, label
    conflicts and the patient rule are applied as each image arrives."""

    def __init__(self, recipe: Recipe, lenient: bool, skipped: list[Skipped]) -> None:
        self.recipe, self.lenient, self.skipped = recipe, lenient, skipped
        self.groups = PatientGroups()
        self.index = DuplicateIndex()
        self.accepted: dict[str, Accepted] = {}
        self.cell_of: dict[str, Cell] = {}
        self.label_of: dict[str, str] = {}  # every image in the index -> its label
        self.twins: dict[str, set[str]] = {}  # duplicate group of each accepted image
        self.conflicted: set[str] = set()  # images left out for a label conflict
        self.taken: set[str] = set()
        self.patients: dict[str, set[str]] = {"finetune": set(), "pretrain": set()}
        self.duplicates: list[dict[str, str]] = []
        self.conflicts: list[dict[str, Any]] = []

    def fill(self, cell: Cell) -> None:
        role = cell.role
        other = "pretrain" if role == "finetune" else "finetune"
        while cell.got < cell.quota and cell.pos < len(cell.order):
            rec = cell.pool[int(cell.order[cell.pos])]
            cell.pos += 1
            key, group = record_key(rec), patient_group(rec)
            if key in self.taken or group in self.patients[other]:
                continue
            self.taken.add(key)
            item = prepare(rec, role, self.recipe, self.lenient, self.skipped)
            if item is None:
                continue
            twin = self.index.find(item.sha1, item.fingerprint)
            if twin is not None and not self._admit(rec, role, item, twin):
                continue
            self.index.add(key, role, item.sha1, item.fingerprint)
            self.label_of[key] = rec.label
            self.twins.setdefault(key, {key})
            self.patients[role].add(group)
            self.groups.find(group)
            self.accepted[key] = Accepted(rec, role, item, group)
            self.cell_of[key] = cell
            cell.got += 1

    def _admit(self, rec: Record, role: str, item: Prepared, twin: tuple[Entry, str]) -> bool:
        """Whether an image with a duplicate among the accepted ones joins them."""
        entry, kind = twin
        key = record_key(rec)
        dup = {"image": key, "twin": entry.key, "kind": kind, "role": role, "twin_role": entry.role}
        conflict = entry.key in self.conflicted or self.label_of[entry.key] != rec.label
        if conflict:
            labels = {"image": rec.label, "twin": self.label_of[entry.key]}
            if self.recipe.label_conflicts == "exclude":
                left_out = self._leave_out(entry.key)
                self.index.add(key, role, item.sha1, item.fingerprint)
                self.label_of[key] = rec.label
                self.conflicted.add(key)
                self.conflicts.append(
                    {**dup, "labels": labels, "action": "left out", "left_out": [key, *left_out]}
                )
                self.skipped.append(
                    Skipped(
                        rec.source,
                        rec.file,
                        f"label conflict: {kind} duplicate of {entry.key} labelled "
                        f"{labels['twin']}, this one {rec.label}",
                    )
                )
                return False
            self.conflicts.append({**dup, "labels": labels, "action": "kept"})
        if entry.role != role:
            dup["action"] = "refused: twin is in the other role"
            self.duplicates.append(dup)
            self.skipped.append(
                Skipped(rec.source, rec.file, f"{kind} duplicate of {entry.key} ({entry.role})")
            )
            return False
        dup["action"] = "kept in the same split as its twin"
        self.duplicates.append(dup)
        self.groups.union(patient_group(rec), self.accepted[entry.key].group)
        members = self.twins[entry.key] | {key}
        for m in members:
            self.twins[m] = members
        return True

    def _leave_out(self, twin: str) -> list[str]:
        """Remove ``twin`` and its accepted duplicates (a label conflict); their cells lose them."""
        if twin in self.conflicted:
            return []
        out = []
        for m in sorted(self.twins.get(twin, {twin})):
            self.conflicted.add(m)
            a = self.accepted.pop(m, None)
            if a is None:
                continue
            self.cell_of.pop(m).got -= 1
            self.skipped.append(
                Skipped(a.record.source, a.record.file, "label conflict: left out with its twin")
            )
            out.append(m)
        return out
