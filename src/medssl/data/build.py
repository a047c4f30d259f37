"""Readers → database: quotas, preprocessing, duplicates, splits, atomic write.

For each recipe the builder opens the sources it names, then fills the finetuning quotas
first and the pretraining quotas from what remains (thesis tables 5.1-5.2). Within a
(source, class) cell the candidates are drawn in a seeded random order; each drawn image is
loaded, checked against every accepted image for duplicates (:mod:`medssl.data.dedupe`) and
preprocessed (:mod:`medssl.data.preprocess`). A patient never spans the two roles, and an
image whose twin is in the other role is refused. Splits are stratified and patient-grouped
(:mod:`medssl.data.splits`). The database folder appears only when complete.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medssl import __version__
from medssl.artifacts import atomic_dir, save_npy, write_csv, write_json
from medssl.config import to_dict
from medssl.data.database import FORMAT_VERSION, MANIFEST_COLUMNS, SPLITS, array_checksum
from medssl.data.dedupe import DuplicateIndex, content_hash, fingerprint
from medssl.data.preprocess import finetune_view, pretrain_view
from medssl.data.recipe import Recipe
from medssl.data.records import Record, Skipped
from medssl.data.sources import Source, open_source
from medssl.data.splits import stratified_group_split
from medssl.errors import DataError

if TYPE_CHECKING:
    from medssl.data.synth.layouts import Scale


@dataclass
class Accepted:
    record: Record
    role: str
    image: np.ndarray  # uint8 (S, S)
    mask: np.ndarray | None  # uint8 {0,1} (S, S) for finetuning images with a mask
    sha1: str
    orig_size: tuple[int, int]
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


def record_key(record: Record) -> str:
    return f"{record.source}:{record.file}"


def patient_group(record: Record) -> str:
    return f"{record.source}:{record.patient}" if record.patient else record_key(record)


def open_sources(recipe: Recipe, roots: dict[str, Path], *, lenient: bool) -> dict[str, Source]:
    missing = [s for s in recipe.source_names() if s not in roots]
    if missing:
        raise DataError(
            f"recipe {recipe.name} needs source folder(s) for {missing}; pass --root NAME=DIR for each"
        )
    return {
        name: open_source(name, roots[name], lenient=lenient, **recipe.sources.get(name, {}))
        for name in recipe.source_names()
    }


def build_database(
    recipe: Recipe,
    roots: dict[str, Path],
    out: str | Path,
    *,
    seed: int = 0,
    lenient: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Build one database folder at ``out`` from source folders ``roots`` (name -> folder)."""
    sources = open_sources(recipe, roots, lenient=lenient)
    records = {name: src.records() for name, src in sources.items()}
    skipped: list[Skipped] = [s for src in sources.values() for s in src.skipped]
    rng = np.random.default_rng([seed, _stable_int(recipe.name)])
    groups = _Groups()
    index = DuplicateIndex()
    accepted: list[Accepted] = []
    taken: set[str] = set()
    patients_in_role: dict[str, set[str]] = defaultdict(set)
    duplicates: list[dict[str, str]] = []
    shortfalls: list[dict[str, Any]] = []
    other = {"finetune": "pretrain", "pretrain": "finetune"}

    for role in ("finetune", "pretrain"):
        for source in sorted(recipe.quota(role)):
            for cls, want in sorted(recipe.quota(role)[source].items()):
                if want == 0:
                    continue
                cands = [
                    r
                    for r in records[source]
                    if r.label == cls
                    and record_key(r) not in taken
                    and patient_group(r) not in patients_in_role[other[role]]
                    and (role == "pretrain" or r.has_mask or not recipe.finetune_requires_mask)
                ]
                if len(cands) < want:
                    msg = (
                        f"recipe {recipe.name}: quota {role}/{source}/{cls} = {want} but the source "
                        f"under {roots[source]} holds only {len(cands)} usable {cls} image(s)"
                        + (
                            " with masks"
                            if role == "finetune" and recipe.finetune_requires_mask
                            else ""
                        )
                        + " not already used; lower the quota or add images"
                    )
                    if not lenient:
                        raise DataError(msg)
                    shortfalls.append(
                        {
                            "role": role,
                            "source": source,
                            "class": cls,
                            "want": want,
                            "available": len(cands),
                        }
                    )
                got = 0
                for i in rng.permutation(len(cands)):
                    if got == want:
                        break
                    rec = cands[int(i)]
                    taken.add(record_key(rec))
                    item = _load(rec, role, recipe, lenient, skipped)
                    if item is None:
                        continue
                    image, mask, orig, sha1, fp = item
                    group = patient_group(rec)
                    twin = index.find(sha1, fp)
                    if twin is not None:
                        entry, kind = twin
                        dup = {
                            "image": record_key(rec),
                            "twin": entry.key,
                            "kind": kind,
                            "role": role,
                            "twin_role": entry.role,
                        }
                        if entry.role != role:
                            dup["action"] = "refused: twin is in the other role"
                            duplicates.append(dup)
                            skipped.append(
                                Skipped(
                                    rec.source,
                                    rec.file,
                                    f"{kind} duplicate of {entry.key} ({entry.role})",
                                )
                            )
                            continue
                        dup["action"] = "kept in the same split as its twin"
                        duplicates.append(dup)
                        groups.union(
                            group,
                            next(a.group for a in accepted if record_key(a.record) == entry.key),
                        )
                    index.add(record_key(rec), role, sha1, fp)
                    patients_in_role[role].add(group)
                    groups.find(group)
                    accepted.append(Accepted(rec, role, image, mask, sha1, orig, group))
                    got += 1
                if got < want and not lenient:
                    raise DataError(
                        f"recipe {recipe.name}: quota {role}/{source}/{cls} = {want} but only {got} image(s) "
                        "were usable after removing duplicates; lower the quota or add images"
                    )
                if got < want and not any(
                    s["source"] == source and s["class"] == cls and s["role"] == role
                    for s in shortfalls
                ):
                    shortfalls.append(
                        {
                            "role": role,
                            "source": source,
                            "class": cls,
                            "want": want,
                            "available": got,
                        }
                    )

    manifest, arrays = _assemble(accepted, recipe, groups, seed)
    meta = {
        "name": recipe.name,
        "format_version": FORMAT_VERSION,
        "medssl_version": __version__,
        "recipe": to_dict(recipe),
        "seed": seed,
        "lenient": lenient,
        "roots": {k: str(v) for k, v in sorted(roots.items()) if k in recipe.source_names()},
        "checksum": array_checksum(arrays, manifest),
        "counts": dict(Counter(f"{r['role']}/{r['split']}/{r['label']}" for r in manifest)),
        "duplicates": duplicates,
        "shortfalls": shortfalls,
        "skipped": len(skipped),
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for key, arr in arrays.items():
            save_npy(tmp / f"{key}.npy", arr)
        write_csv(tmp / "manifest.csv", manifest, MANIFEST_COLUMNS)
        write_csv(tmp / "skipped.csv", [vars(s) for s in skipped], ("source", "file", "reason"))
        write_json(tmp / "database.json", meta)
    return Path(out)


def _load(rec: Record, role: str, recipe: Recipe, lenient: bool, skipped: list[Skipped]):
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
    image = loaded.image
    sha1 = content_hash(image)
    fp = fingerprint(image)
    if role == "finetune":
        mask = loaded.mask if rec.has_mask else None
        if mask is None and rec.has_mask:
            mask = np.zeros(image.shape, dtype=bool)
        img, m = finetune_view(image, mask, recipe.sizes.finetune)
    else:
        img, m = pretrain_view(image, recipe.sizes.pretrain, pad=recipe.pad_pretrain), None
    return img, m, tuple(image.shape), sha1, fp


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
            np.stack([a.image for a in items]) if items else np.zeros((0, size, size), np.uint8)
        )
        if role == "finetune":
            arrays["finetune_masks"] = (
                np.stack(
                    [
                        a.mask if a.mask is not None else np.zeros((size, size), np.uint8)
                        for a in items
                    ]
                )
                if items
                else np.zeros((0, size, size), np.uint8)
            )
        for i, (a, split, g) in enumerate(zip(items, splits, grp, strict=True)):
            r = a.record
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
                    "sha1": a.sha1,
                    "orig_h": a.orig_size[0],
                    "orig_w": a.orig_size[1],
                    "has_mask": int(a.mask is not None),
                    "multi_mask": int(r.multi_mask),
                }
            )
    return manifest, arrays


def _stable_int(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


def build_preset(
    preset: str | Path,
    out: str | Path,
    roots: dict[str, Path] | None = None,
    *,
    seed: int = 0,
    lenient: bool = False,
    overwrite: bool = False,
    balanced: bool = False,
    phantoms: bool | None = None,
) -> list[Path]:
    """Build every database of a preset into ``out/<NAME>``.

    Sources without a ``roots`` entry are generated as synthetic phantoms under
    ``out/phantoms`` when ``phantoms`` is true (default: for the ``demo`` and ``smoke`` presets).
    """
    from medssl.data.recipe import demand, load_preset

    out = Path(out)
    recipes, scale = load_preset(preset)
    roots = {k: Path(v) for k, v in (roots or {}).items()}
    if phantoms is None:
        phantoms = str(preset) in ("demo", "smoke")
    missing = sorted({s for r in recipes for s in r.source_names()} - set(roots))
    if missing and phantoms:
        counts = {s: demand(recipes)[s] for s in missing}
        roots.update(ensure_phantoms(out / "phantoms", counts, seed=seed, scale=scale))
    if balanced:
        from medssl.data.balance import balanced_recipes

        recs = {}
        for r in recipes:
            srcs = open_sources(r, roots, lenient=lenient)
            recs[r.name] = {name: s.records() for name, s in srcs.items()}
        recipes = balanced_recipes(recipes, recs)
    return [
        build_database(r, roots, out / r.name, seed=seed, lenient=lenient, overwrite=overwrite)
        for r in recipes
    ]


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
    its marker (seed, scale, counts, roots), so an interrupted write leaves nothing behind."""
    from medssl.data.synth import write_phantoms

    folder = Path(folder)
    with atomic_dir(folder, overwrite=overwrite) as tmp:
        written = write_phantoms(tmp, counts, seed=seed, scale=scale)
        roots = {k: folder / Path(v).relative_to(tmp) for k, v in written.items()}
        stamp = {"seed": seed, "scale": scale, "counts": counts}
        write_json(tmp / PHANTOM_MARKER, {**stamp, "roots": {k: str(r) for k, r in roots.items()}})
    return roots


def ensure_phantoms(
    folder: Path, counts: dict[str, dict[str, int]], *, seed: int, scale: Scale = 1.0
) -> dict[str, Path]:
    """Write phantoms once; reuse them when ``folder`` already holds the same counts and seed."""
    from medssl.artifacts import read_json

    stamp = {"seed": seed, "scale": scale, "counts": counts}
    marker = folder / PHANTOM_MARKER
    if marker.is_file():
        saved = read_json(marker)
        if all(saved.get(k) == v for k, v in stamp.items()):
            return {k: Path(v) for k, v in saved["roots"].items()}
    return write_phantom_tree(folder, counts, seed=seed, scale=scale, overwrite=True)
