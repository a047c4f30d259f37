"""``database.json``: what a database is and how it was built, as one typed record.

The fields of :class:`DatabaseMeta` are the file's keys, in their order. ``layout_version``
says which layout of the database folder (``manifest.csv`` columns, ``database.json`` keys,
arrays) wrote it: :func:`read_meta` refuses another version with an error that says to
rebuild, and a later release that changes the layout raises :data:`LAYOUT_VERSION` and
migrates or refuses the older one. Folders written before the version field carry
``format_version`` instead and are of older layouts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl.artifacts import read_json
from medssl.config import from_dict, to_dict
from medssl.data.manifest import REBUILD
from medssl.data.recipe import TASKS, Recipe
from medssl.errors import ConfigError, DataError

LAYOUT_VERSION = 2
"""The database folder's layout; 1 was every folder written with ``format_version: 1``."""


@dataclass(frozen=True, kw_only=True)
class DatabaseMeta:
    """The contents of ``database.json``. An in-memory database (``Database.from_arrays``)
    keeps the defaults beside its name, checksum and counts."""

    name: str
    layout_version: int = LAYOUT_VERSION
    medssl_version: str = ""  # the medssl that built it
    recipe: Recipe | None = None  # the resolved recipe (None in memory)
    tasks: tuple[str, ...] = TASKS  # what the finetuning images serve (the recipe's tasks)
    seed: int = 0  # seed of sampling and splits
    lenient: bool = False  # --lenient: bad items skipped, shortfalls taken
    fit_quotas: bool = False  # --fit-quotas: quotas fitted to what the sources hold
    # {role: {source: {class: images drawn}}}
    quotas_used: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)  # {source: folder read}
    checksum: str  # medssl.data.database.array_checksum: the data's identity in every run
    counts: dict[str, int] = field(default_factory=dict)  # {"role/split/label": images}
    # [{image, twin, kind, role, twin_role, action}] duplicates found while drawing
    duplicates: list[dict[str, str]] = field(default_factory=list)
    # {policy: exclude | keep, found: [{image, twin, kind, role, twin_role, labels: {image,
    # twin}, action, left_out}]}: duplicates whose labels differ
    label_conflicts: dict[str, Any] = field(
        default_factory=lambda: {"policy": "exclude", "found": []}
    )
    # [{role, source, class, want, available, when}] quotas not filled (--lenient / --fit-quotas)
    shortfalls: list[dict[str, Any]] = field(default_factory=list)
    # {source: {role: {class: quota}}} of a preset's sources not available (--available-sources)
    left_out_sources: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    skipped: int = 0  # rows of skipped.csv
    # {rule, cropped, widened_for_mask, by_source: {source: {cropped, widened_for_mask}}}:
    # the breast crop of mammograms (medssl.data.policies)
    crop: dict[str, Any] = field(default_factory=dict)
    coarse_masks: dict[str, int] = field(default_factory=dict)  # {source: approximate masks}
    # {source: finetuning images labelled benign/malignant with an empty mask, has_mask 0}
    empty_lesion_masks: dict[str, int] = field(default_factory=dict)
    # {source: pretraining normals that show a finding}
    normals_with_finding: dict[str, int] = field(default_factory=dict)
    # {rule, components, rescued, by_source: {source: {components, rescued}}}
    mask_resize: dict[str, Any] = field(default_factory=dict)
    phantoms: tuple[str, ...] = ()  # sources generated as synthetic phantoms; () for real data

    def json(self) -> dict[str, Any]:
        """The object ``database.json`` holds."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["recipe"] = None if self.recipe is None else to_dict(self.recipe)
        out["tasks"], out["phantoms"] = list(self.tasks), list(self.phantoms)
        return out

    @property
    def sizes(self) -> dict[str, int]:
        """{role: image side} of the recipe ({} in memory)."""
        if self.recipe is None:
            return {}
        return {"pretrain": self.recipe.sizes.pretrain, "finetune": self.recipe.sizes.finetune}


def read_meta(file: Path) -> DatabaseMeta:
    """``database.json`` of the current layout, typed; a DataError that says to rebuild for a
    file that is not JSON, of another layout version, or with missing or unknown keys."""
    try:
        data = read_json(file)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"not valid JSON ({e}); {REBUILD}", file=str(file)) from None
    if not isinstance(data, dict):
        raise DataError(
            f"expected a JSON object, got {type(data).__name__}; {REBUILD}", file=str(file)
        )
    version = data.get("layout_version", f"none (format_version {data.get('format_version')})")
    if version != LAYOUT_VERSION:
        raise DataError(
            f"layout_version {version}: this medssl reads database layout {LAYOUT_VERSION} "
            f"only, so the folder was built by another medssl; {REBUILD}",
            file=str(file),
        )
    keys = [f.name for f in dataclasses.fields(DatabaseMeta)]
    missing = [k for k in keys if k not in data]
    unknown = sorted(set(data) - set(keys))
    if missing or unknown:
        raise DataError(
            f"missing key(s) {missing or 'none'}, unknown key(s) {unknown or 'none'} for "
            f"layout {LAYOUT_VERSION}; {REBUILD}",
            file=str(file),
        )
    try:
        recipe = data["recipe"]
        data = {**data, "recipe": None}
        meta = from_dict(DatabaseMeta, data, where=file.name)
        if recipe is not None:
            meta = dataclasses.replace(
                meta, recipe=from_dict(Recipe, recipe, where=f"{file.name}: recipe")
            )
    except ConfigError as e:
        raise DataError(f"{e}; {REBUILD}", file=str(file)) from None
    return meta
