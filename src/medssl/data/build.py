# Over 400 lines: quota filling, twin refusal and label-conflict redraws share one pass's state.
"""Readers → database: quotas, preprocessing, duplicates, splits, atomic write.

For each recipe the builder opens the sources it names, then fills the finetuning quotas
first and the pretraining quotas from what remains (thesis tables 5.1-5.2). Within a
(source, class) cell the candidates are drawn in a seeded random order; each drawn image is
loaded, checked against every accepted image for duplicates (:mod:`medssl.data.dedupe`) and
preprocessed (:mod:`medssl.data.preprocess`). A patient never spans the two roles, and an
image whose twin is in the other role is refused; twins whose labels differ (label
conflicts) are left out, the whole duplicate group, and their quotas draw again (recipe
``label_conflicts``). Every quota is checked against its candidates before loading
(:mod:`medssl.data.quotas`). Splits are stratified and patient-grouped
(:mod:`medssl.data.splits`). The database folder appears only when complete.

Label policies (``docs/datasets.md``, "What serves which task"):
- a finetuning normal is an image without a finding: records that are ``normal_with_finding``
  (CBIS-DDSM's BENIGN_WITHOUT_CALLBACK read as normal) are never finetuning candidates;
- a finetuning image labelled benign/malignant whose mask is empty after loading (INbreast
  calcification-only findings) is stored with ``has_mask = 0``: classification uses it,
  segmentation leaves it out. Counted per source in ``database.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medssl import __version__
from medssl.artifacts import atomic_dir, save_npy, write_csv, write_json
from medssl.config import to_dict
from medssl.data.database import (
    FORMAT_VERSION,
    MANIFEST_COLUMNS,
    MANIFEST_FILE,
    META_FILE,
    ROLES,
    SKIPPED_FILE,
    SPLITS,
    array_checksum,
)
from medssl.data.dedupe import DuplicateIndex, content_hash, fingerprint
from medssl.data.preprocess import Box, MaskResize, breast_box, finetune_view, pretrain_view
from medssl.data.quotas import (
    Key,
    Shortfall,
    finetune_pool,
    first_draws,
    patient_group,
    pretrain_pool,
    record_key,
    shortfall_message,
    shortfalls,
)
from medssl.data.quotas import fit_quotas as fit
from medssl.data.recipe import Recipe
from medssl.data.records import Record, Skipped
from medssl.data.sources import Source, open_source
from medssl.data.splits import stratified_group_split
from medssl.data.synth.phantoms import ensure_phantoms, phantom_sources
from medssl.errors import ConfigError, DataError


@dataclass
class Prepared:
    """A drawn record, loaded and preprocessed for its role."""

    image: np.ndarray  # uint8 (S, S)
    mask: MaskResize | None  # finetuning images whose record has a mask
    orig_size: tuple[int, int]  # size of the region padded and resized (the image or its crop)
    spacing: tuple[float, float] | None  # (row, column) mm per original pixel
    empty_lesion: bool  # labelled benign/malignant, but the loaded mask is empty
    sha1: str
    fingerprint: np.ndarray
    crop: Box | None = None  # the breast crop of a mammogram (recipe crop: breast)
    crop_widened: bool = False  # the lesion mask reached outside the breast and widened it


@dataclass
class Accepted:
    record: Record
    role: str
    item: Prepared
    group: str  # patient group used for splitting


class _Groups:
    """Union-find over patient groups, so duplicates in one role share a split."""

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


def open_sources(recipe: Recipe, roots: dict[str, Path], *, lenient: bool) -> dict[str, Source]:
    missing = [s for s in recipe.source_names() if s not in roots]
    if missing:
        raise DataError(
            f"recipe {recipe.name} needs the source folder(s) of {', '.join(missing)}: pass "
            "--root NAME=DIR for each, --available-sources to build from the given sources "
            "only, or --phantoms for synthetic stand-ins"
        )
    return {
        name: open_source(name, roots[name], lenient=lenient, **recipe.sources.get(name, {}))
        for name in recipe.source_names()
    }


@dataclass
class _Cell:
    """One quota being filled: candidates in their seeded draw order."""

    role: str
    key: Key
    quota: int
    pool: list[Record]
    order: np.ndarray
    pos: int = 0
    got: int = 0


class _Filler:
    """Draws, loads and accepts images cell by cell (module docstring): duplicates, label
    conflicts and the patient rule are applied as each image arrives."""

    def __init__(self, recipe: Recipe, lenient: bool, skipped: list[Skipped]) -> None:
        self.recipe, self.lenient, self.skipped = recipe, lenient, skipped
        self.groups = _Groups()
        self.index = DuplicateIndex()
        self.accepted: dict[str, Accepted] = {}
        self.cell_of: dict[str, _Cell] = {}
        self.label_of: dict[str, str] = {}  # every image in the index -> its label
        self.twins: dict[str, set[str]] = {}  # duplicate group of each accepted image
        self.conflicted: set[str] = set()  # images left out for a label conflict
        self.taken: set[str] = set()
        self.patients: dict[str, set[str]] = {"finetune": set(), "pretrain": set()}
        self.duplicates: list[dict[str, str]] = []
        self.conflicts: list[dict[str, Any]] = []

    def fill(self, cell: _Cell) -> None:
        role = cell.role
        other = "pretrain" if role == "finetune" else "finetune"
        while cell.got < cell.quota and cell.pos < len(cell.order):
            rec = cell.pool[int(cell.order[cell.pos])]
            cell.pos += 1
            key, group = record_key(rec), patient_group(rec)
            if key in self.taken or group in self.patients[other]:
                continue
            self.taken.add(key)
            item = _load(rec, role, self.recipe, self.lenient, self.skipped)
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

    def _admit(self, rec: Record, role: str, item: Prepared, twin) -> bool:
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


def build_database(
    recipe: Recipe,
    roots: dict[str, Path],
    out: str | Path,
    *,
    seed: int = 0,
    lenient: bool = False,
    fit_quotas: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    phantoms: Collection[str] = (),
    left_out_sources: dict[str, dict[str, dict[str, int]]] | None = None,
    origin: str = "",
) -> Path:
    """Build one database folder at ``out`` from source folders ``roots`` (name -> folder).

    Every quota is checked against the candidates before any image is loaded; all that
    cannot be filled are reported in one :class:`~medssl.errors.DataError`, each with the
    largest quota that fits. ``fit_quotas`` takes what is available instead, keeping the
    recipe's class ratios (:func:`medssl.data.quotas.fit_quotas`; the quotas used are
    recorded in ``database.json``); ``lenient`` takes what each quota can get and skips
    unreadable images (both recorded as shortfalls). ``phantoms``: sources whose folders hold
    synthetic phantoms; a folder written by :func:`write_phantom_tree` (``medssl data
    synth``) is recognised by its marker as well. ``left_out_sources``: quotas of sources a
    preset names but the user does not have (``--available-sources``), recorded.
    ``origin``: the preset or recipe file, named in errors.
    """
    sources = open_sources(recipe, roots, lenient=lenient)
    records = {name: src.records() for name, src in sources.items()}
    skipped: list[Skipped] = [s for src in sources.values() for s in src.skipped]
    rng = np.random.default_rng([seed, _stable_int(recipe.name)])
    where = ", ".join(
        ([f"--preset {origin}"] if origin else [])
        + [f"--root {s}={roots[s]}" for s in recipe.source_names()]
    )

    def cells(role: str) -> dict[Key, int]:
        return {
            (s, c): n
            for s in sorted(recipe.quota(role))
            for c, n in sorted(recipe.quota(role)[s].items())
            if n > 0
        }

    want = {role: cells(role) for role in ROLES}
    ft_pools = {k: finetune_pool(recipe, records, k) for k in want["finetune"]}
    ft_orders = {k: rng.permutation(len(pool)) for k, pool in ft_pools.items()}
    ft_avail = {k: len(p) for k, p in ft_pools.items()}
    quota = {"finetune": dict(want["finetune"])}
    if fit_quotas:
        quota["finetune"] = fit(want["finetune"], ft_avail)
    taken, ft_patients = first_draws(ft_pools, ft_orders, quota["finetune"])
    pt_avail = {k: len(pretrain_pool(records, k, taken, ft_patients)) for k in want["pretrain"]}
    quota["pretrain"] = fit(want["pretrain"], pt_avail) if fit_quotas else dict(want["pretrain"])
    short = shortfalls("finetune", want["finetune"], ft_avail, "before loading")
    short += shortfalls("pretrain", want["pretrain"], pt_avail, "before loading")
    short = [_with_note(s, recipe, records) for s in short]
    if short and not (lenient or fit_quotas):
        raise DataError(shortfall_message(recipe, where, short))

    filler = _Filler(recipe, lenient, skipped)
    filled: list[_Cell] = []
    for k, n in quota["finetune"].items():
        filled.append(_Cell("finetune", k, n, ft_pools[k], ft_orders[k]))
        filler.fill(filled[-1])
    for k, n in quota["pretrain"].items():
        pool = pretrain_pool(records, k, filler.taken, filler.patients["finetune"])
        filled.append(_Cell("pretrain", k, n, pool, rng.permutation(len(pool))))
        filler.fill(filled[-1])
    while True:  # cells that lost images to a label conflict draw again, until none can
        drawn = sum(c.pos for c in filled)
        for cell in filled:
            filler.fill(cell)
        if sum(c.pos for c in filled) == drawn:
            break
    after = [
        Shortfall(c.role, *c.key, want[c.role][c.key], c.got, "after loading")
        for c in filled
        if c.got < c.quota
    ]
    if after and not (lenient or fit_quotas):
        raise DataError(shortfall_message(recipe, where, after))
    seen = {(s.role, s.source, s.label) for s in short}
    short += [s for s in after if (s.role, s.source, s.label) not in seen]

    accepted = list(filler.accepted.values())
    _check_classes(recipe, accepted, origin)
    manifest, arrays = _assemble(accepted, recipe, filler.groups, seed)
    used: dict[str, dict[str, dict[str, int]]] = {}
    for c in filled:
        used.setdefault(c.role, {}).setdefault(c.key[0], {})[c.key[1]] = c.got
    meta = {
        "name": recipe.name,
        "format_version": FORMAT_VERSION,
        "medssl_version": __version__,
        "recipe": to_dict(recipe),
        "tasks": list(recipe.tasks),
        "seed": seed,
        "lenient": lenient,
        "fit_quotas": fit_quotas,
        "quotas_used": used,
        "roots": {k: str(v) for k, v in sorted(roots.items()) if k in recipe.source_names()},
        "checksum": array_checksum(arrays, manifest),
        "counts": dict(Counter(f"{r['role']}/{r['split']}/{r['label']}" for r in manifest)),
        "duplicates": filler.duplicates,
        "label_conflicts": {"policy": recipe.label_conflicts, "found": filler.conflicts},
        "shortfalls": [s.record() for s in short],
        "left_out_sources": left_out_sources or {},
        "skipped": len(skipped),
        **label_policy_counts(accepted, recipe),
        "phantoms": sorted((set(phantoms) | phantom_sources(roots)) & set(recipe.source_names())),
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for key, arr in arrays.items():
            save_npy(tmp / f"{key}.npy", arr)
        write_csv(tmp / MANIFEST_FILE, manifest, MANIFEST_COLUMNS)
        write_csv(tmp / SKIPPED_FILE, [vars(s) for s in skipped], ("source", "file", "reason"))
        write_json(tmp / META_FILE, meta)
    return Path(out)


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
    from medssl.data.splits import folds_for

    k = sum(folds_for(recipe.split_finetune))
    counts = Counter(a.record.label for a in accepted if a.role == "finetune")
    thin = {c: n for c, n in sorted(counts.items()) if n < k}
    if thin:
        text = ", ".join(f"{c} has {n}" for c, n in thin.items())
        raise DataError(
            f"recipe {recipe.name}{' of ' + origin if origin else ''}: finetuning class(es) too "
            "small for the "
            f"{'/'.join(f'{x:g}' for x in recipe.split_finetune)} split (split_finetune), whose "
            f"{k} stratified folds need at least {k} images of each class: {text}; raise those "
            "classes' finetuning quotas, or set them to 0 to leave the class out"
        )


def _load(
    rec: Record, role: str, recipe: Recipe, lenient: bool, skipped: list[Skipped]
) -> Prepared | None:
    try:
        loaded = rec.load()
        if loaded.image.ndim != 2:
            raise DataError(
                f"expected a 2-D grey image, got shape {loaded.image.shape}", file=rec.file
            )
        if loaded.mask is not None and loaded.mask.shape != loaded.image.shape:
            raise DataError(
                f"mask size {loaded.mask.shape} differs from image size {loaded.image.shape}",
                file=rec.file,
            )
    except DataError as e:
        if not lenient:
            raise DataError(f"{rec.source}: {e}") from None
        skipped.append(Skipped(rec.source, rec.file, e.reason))
        return None
    full = loaded.image
    raw = None
    if role == "finetune" and rec.has_mask:
        raw = loaded.mask if loaded.mask is not None else np.zeros(full.shape, dtype=bool)
    box, widened = None, False
    image = full
    if recipe.crop == "breast" and rec.modality == "mg":
        box, widened = breast_box(full, raw)
        image, raw = box.crop(full), None if raw is None else box.crop(raw)
    mask, empty_lesion = None, False
    if role == "finetune":
        empty_lesion = raw is not None and rec.label != "normal" and not raw.any()
        img, mask = finetune_view(image, raw, recipe.sizes.finetune)
    else:
        img = pretrain_view(image, recipe.sizes.pretrain, pad=recipe.pad_pretrain)
    return Prepared(
        image=img,
        mask=mask,
        orig_size=tuple(image.shape),
        spacing=loaded.spacing,
        empty_lesion=empty_lesion,
        sha1=content_hash(full),
        fingerprint=fingerprint(full),
        crop=box,
        crop_widened=widened,
    )


def label_policy_counts(accepted: list[Accepted], recipe: Recipe) -> dict[str, Any]:
    """The ``database.json`` counts of the label and mask policies (see the module docstring).

    - ``empty_lesion_masks``: {source: finetuning images labelled benign/malignant whose mask
      is empty, stored with has_mask = 0}, every finetuning source listed;
    - ``normals_with_finding``: {source: pretraining normals that show a finding}, every
      pretraining source listed (finetuning holds none);
    - ``crop``: the crop rule (:func:`medssl.data.preprocess.breast_box`) and how many images
      were cropped and widened to hold their lesion mask, in total and ``by_source``;
    - ``coarse_masks``: {source: finetuning masks that are approximate regions};
    - ``mask_resize``: the mask downsampling rule (:func:`medssl.data.preprocess.downsample_mask`)
      and, over the finetuning masks, ``components`` (connected lesion components) and
      ``rescued`` (those the coverage rule alone would have erased, kept as one pixel),
      in total and ``by_source``.
    """
    ft = [a for a in accepted if a.role == "finetune"]
    empty = {s: 0 for s in sorted(recipe.quota("finetune"))}
    with_finding = {s: 0 for s in sorted(recipe.quota("pretrain"))}
    by_source: dict[str, dict[str, int]] = {}
    for a in ft:
        empty[a.record.source] += int(a.item.empty_lesion)
        if a.item.mask is not None:
            cell = by_source.setdefault(a.record.source, {"components": 0, "rescued": 0})
            cell["components"] += a.item.mask.components
            cell["rescued"] += a.item.mask.rescued
    for a in accepted:
        if a.role == "pretrain":
            with_finding[a.record.source] += int(a.record.normal_with_finding)
    crop: dict[str, Any] = {"rule": CROP_RULES[recipe.crop], "cropped": 0, "widened_for_mask": 0}
    per: dict[str, dict[str, int]] = {}
    for a in accepted:
        if a.item.crop is not None:
            cell = per.setdefault(a.record.source, {"cropped": 0, "widened_for_mask": 0})
            cell["cropped"] += 1
            cell["widened_for_mask"] += int(a.item.crop_widened)
    crop["cropped"] = sum(c["cropped"] for c in per.values())
    crop["widened_for_mask"] = sum(c["widened_for_mask"] for c in per.values())
    crop["by_source"] = dict(sorted(per.items()))
    coarse = Counter(
        a.record.source for a in ft if a.record.coarse_mask and a.item.mask is not None
    )
    return {
        "crop": crop,
        "coarse_masks": dict(sorted(coarse.items())),
        "empty_lesion_masks": empty,
        "normals_with_finding": with_finding,
        "mask_resize": {
            "rule": MASK_RULE,
            "components": sum(c["components"] for c in by_source.values()),
            "rescued": sum(c["rescued"] for c in by_source.values()),
            "by_source": dict(sorted(by_source.items())),
        },
    }


MASK_RULE = "area coverage >= 0.5; every 8-connected lesion keeps its best-covered pixel"
CROP_RULES = {
    "none": "none: whole images",
    "breast": "mammograms: grey > 0.05, largest 8-connected component, bounding box + 2% "
    "margin, widened to hold the lesion mask",
}


def _assemble(accepted: list[Accepted], recipe: Recipe, groups: _Groups, seed: int):
    manifest: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    fractions = {"pretrain": recipe.split_pretrain, "finetune": recipe.split_finetune}
    for role in ("pretrain", "finetune"):
        items = sorted((a for a in accepted if a.role == role), key=lambda a: record_key(a.record))
        size = recipe.sizes.pretrain if role == "pretrain" else recipe.sizes.finetune
        labels = [a.record.label for a in items]
        grp = [groups.find(a.group) for a in items]
        splits = (
            stratified_group_split(labels, grp, fractions[role], SPLITS[role], seed)
            if items
            else []
        )
        arrays[role] = (
            np.stack([a.item.image for a in items])
            if items
            else np.zeros((0, size, size), np.uint8)
        )
        if role == "finetune":
            arrays["finetune_masks"] = (
                np.stack(
                    [
                        a.item.mask.mask
                        if a.item.mask is not None
                        else np.zeros((size, size), np.uint8)
                        for a in items
                    ]
                )
                if items
                else np.zeros((0, size, size), np.uint8)
            )
        for i, (a, split, g) in enumerate(zip(items, splits, grp, strict=True)):
            r, item = a.record, a.item
            spacing = item.spacing or ("", "")
            manifest.append(
                {
                    "role": role,
                    "index": i,
                    "split": split,
                    "source": r.source,
                    "file": r.file,
                    "label": r.label,
                    "modality": r.modality,
                    "patient": g,
                    "patient_known": int(r.patient is not None),
                    "sha1": item.sha1,
                    "orig_h": item.orig_size[0],
                    "orig_w": item.orig_size[1],
                    "spacing_row_mm": _mm(spacing[0]),
                    "spacing_col_mm": _mm(spacing[1]),
                    "has_mask": int(item.mask is not None and not item.empty_lesion),
                    "multi_mask": int(r.multi_mask),
                    "normal_with_finding": int(r.normal_with_finding),
                    "coarse_mask": int(r.coarse_mask and item.mask is not None),
                    "crop_box": item.crop.text() if item.crop is not None else "",
                }
            )
    return manifest, arrays


def _mm(value: float | str) -> str:
    """A spacing for the manifest: ``repr`` of the float (round-trips exactly), "" when unknown."""
    return "" if value == "" else repr(float(value))


def _stable_int(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def build_preset(
    preset: str | Path,
    out: str | Path,
    roots: dict[str, Path] | None = None,
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
    ``out/phantoms`` when ``phantoms`` is true (default: for the ``demo`` and ``smoke``
    presets), with a warning through ``warn`` (default: standard error); each database lists
    its phantom sources in ``database.json`` (``phantoms``). With ``available_sources`` the
    sources without a ``roots`` entry are left out instead: their quotas are dropped, and
    recorded in ``database.json`` (``left_out_sources``); a database left without a
    finetuning source is an error.
    """
    from medssl.data.recipe import demand, load_preset

    warn = warn or _stderr
    out = Path(out)
    recipes, scale = load_preset(preset)
    roots = {k: Path(v) for k, v in (roots or {}).items()}
    if phantoms and available_sources:
        raise ConfigError(
            "--phantoms and --available-sources exclude each other: the first makes phantoms "
            "for the sources without --root, the second leaves those sources out"
        )
    if phantoms is None:
        phantoms = str(preset) in ("demo", "smoke") and not available_sources
    missing = sorted({s for r in recipes for s in r.source_names()} - set(roots))
    generated: list[str] = []
    left_out: dict[str, dict] = {r.name: {} for r in recipes}
    if missing and available_sources:
        recipes, left_out = _available_only(recipes, set(missing), preset)
        warn(
            f"warning: --available-sources: left out {', '.join(missing)} (no --root); their "
            "quotas are dropped (database.json: left_out_sources)"
        )
    elif missing and phantoms:
        counts = {s: demand(recipes)[s] for s in missing}
        roots.update(ensure_phantoms(out / "phantoms", counts, seed=seed, scale=scale))
        generated = missing
        warn(
            f"warning: synthetic phantoms stand in for {', '.join(missing)} (no --root given): "
            f"the databases of preset {preset} are not patient data"
        )
    if balanced:
        from medssl.data.balance import balanced_recipes

        recs = {}
        for r in recipes:
            srcs = open_sources(r, roots, lenient=lenient)
            recs[r.name] = {name: s.records() for name, s in srcs.items()}
        recipes = balanced_recipes(recipes, recs)
    return [
        build_database(
            r,
            roots,
            out / r.name,
            seed=seed,
            lenient=lenient,
            fit_quotas=fit_quotas,
            overwrite=overwrite,
            phantoms=generated,
            left_out_sources=left_out[r.name],
            origin=str(preset),
        )
        for r in recipes
    ]


def _stderr(message: str) -> None:
    print(f"medssl: {message}", file=sys.stderr)


def _available_only(
    recipes: list[Recipe], missing: set[str], preset: str | Path
) -> tuple[list[Recipe], dict[str, dict]]:
    """The recipes without the ``missing`` sources, and each recipe's dropped quotas."""
    kept, dropped = [], {}
    for r in recipes:
        smaller, gone = r.without_sources(missing)
        if not smaller.quota("finetune"):
            raise DataError(
                f"--available-sources: recipe {r.name} of preset {preset} has no finetuning "
                f"source left (it needs {', '.join(sorted(r.quota('finetune')))}); pass "
                "--root for one of them"
            )
        kept.append(smaller)
        dropped[r.name] = gone
    return kept, dropped
