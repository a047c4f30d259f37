"""Readers → database: quotas, preprocessing, duplicates, splits, atomic write.

For each recipe the builder opens the sources it names, then fills the finetuning quotas
first and the pretraining quotas from what remains (thesis tables 5.1-5.2). Within a
(source, class) cell the candidates are drawn in a seeded random order; each drawn image is
loaded, checked against every accepted image for duplicates (:mod:`medssl.data.dedupe`) and
preprocessed (:mod:`medssl.data.preprocess`). A patient never spans the two roles, and an
image whose twin is in the other role is refused. Splits are stratified and patient-grouped
(:mod:`medssl.data.splits`). The database folder appears only when complete.

Label policies (``docs/datasets.md``, "What serves which task"):
- a finetuning normal is an image without a finding: records that are ``normal_with_finding``
  (CBIS-DDSM's BENIGN_WITHOUT_CALLBACK read as normal) are never finetuning candidates;
- a finetuning image labelled benign/malignant whose mask is empty after loading (INbreast
  calcification-only findings) is stored with ``has_mask = 0``: classification uses it,
  segmentation leaves it out. Counted per source in ``database.json``.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medssl import __version__
from medssl.artifacts import atomic_dir, save_npy, write_csv, write_json
from medssl.config import to_dict
from medssl.data.database import FORMAT_VERSION, MANIFEST_COLUMNS, SPLITS, array_checksum
from medssl.data.dedupe import DuplicateIndex, content_hash, fingerprint
from medssl.data.preprocess import MaskResize, finetune_view, pretrain_view
from medssl.data.recipe import Recipe, finetune_candidate
from medssl.data.records import Record, Skipped
from medssl.data.sources import Source, open_source
from medssl.data.splits import stratified_group_split
from medssl.errors import DataError

if TYPE_CHECKING:
    from medssl.data.synth.phantoms import Scale


@dataclass
class Prepared:
    """A drawn record, loaded and preprocessed for its role."""

    image: np.ndarray  # uint8 (S, S)
    mask: MaskResize | None  # finetuning images whose record has a mask
    orig_size: tuple[int, int]
    spacing: tuple[float, float] | None  # (row, column) mm per original pixel
    empty_lesion: bool  # labelled benign/malignant, but the loaded mask is empty
    sha1: str
    fingerprint: np.ndarray


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
    phantoms: Collection[str] = (),
) -> Path:
    """Build one database folder at ``out`` from source folders ``roots`` (name -> folder).

    ``phantoms``: sources whose folders hold synthetic phantoms; a folder written by
    :func:`write_phantom_tree` (``medssl data synth``) is recognised by its marker as well.
    """
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
                    and (role == "pretrain" or finetune_candidate(r, recipe))
                ]
                if len(cands) < want:
                    with_finding = sum(
                        r.normal_with_finding for r in records[source] if r.label == cls
                    )
                    msg = (
                        f"recipe {recipe.name}: quota {role}/{source}/{cls} = {want} but the source "
                        f"under {roots[source]} holds only {len(cands)} usable {cls} image(s)"
                        + (
                            " with masks"
                            if role == "finetune" and recipe.finetune_requires_mask
                            else ""
                        )
                        + " not already used"
                        + (
                            f" ({with_finding} more are labelled normal but show a finding, "
                            "which no finetuning normal may)"
                            if role == "finetune" and with_finding
                            else ""
                        )
                        + "; lower the quota or add images"
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
                    group = patient_group(rec)
                    twin = index.find(item.sha1, item.fingerprint)
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
                    index.add(record_key(rec), role, item.sha1, item.fingerprint)
                    patients_in_role[role].add(group)
                    groups.find(group)
                    accepted.append(Accepted(rec, role, item, group))
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
        **label_policy_counts(accepted, recipe),
        "phantoms": sorted((set(phantoms) | phantom_sources(roots)) & set(recipe.source_names())),
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for key, arr in arrays.items():
            save_npy(tmp / f"{key}.npy", arr)
        write_csv(tmp / "manifest.csv", manifest, MANIFEST_COLUMNS)
        write_csv(tmp / "skipped.csv", [vars(s) for s in skipped], ("source", "file", "reason"))
        write_json(tmp / "database.json", meta)
    return Path(out)


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
    image = loaded.image
    mask, empty_lesion = None, False
    if role == "finetune":
        raw = loaded.mask if rec.has_mask else None
        if raw is None and rec.has_mask:
            raw = np.zeros(image.shape, dtype=bool)
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
        sha1=content_hash(image),
        fingerprint=fingerprint(image),
    )


def label_policy_counts(accepted: list[Accepted], recipe: Recipe) -> dict[str, Any]:
    """The ``database.json`` counts of the label and mask policies (see the module docstring).

    - ``empty_lesion_masks``: {source: finetuning images labelled benign/malignant whose mask
      is empty, stored with has_mask = 0}, every finetuning source listed;
    - ``normals_with_finding``: {source: pretraining normals that show a finding}, every
      pretraining source listed (finetuning holds none);
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
    return {
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
                }
            )
    return manifest, arrays


def _mm(value: float | str) -> str:
    """A spacing for the manifest: ``repr`` of the float (round-trips exactly), "" when unknown."""
    return "" if value == "" else repr(float(value))


def phantom_sources(roots: dict[str, Path]) -> set[str]:
    """Sources whose folder lies in a phantom tree written by :func:`write_phantom_tree`
    (its marker names the folder among its roots)."""
    from medssl.artifacts import read_json

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
    ``out/phantoms`` when ``phantoms`` is true (default: for the ``demo`` and ``smoke`` presets);
    each database lists its phantom sources in ``database.json`` (``phantoms``).
    """
    from medssl.data.recipe import demand, load_preset

    out = Path(out)
    recipes, scale = load_preset(preset)
    roots = {k: Path(v) for k, v in (roots or {}).items()}
    if phantoms is None:
        phantoms = str(preset) in ("demo", "smoke")
    missing = sorted({s for r in recipes for s in r.source_names()} - set(roots))
    generated: list[str] = []
    if missing and phantoms:
        counts = {s: demand(recipes)[s] for s in missing}
        roots.update(ensure_phantoms(out / "phantoms", counts, seed=seed, scale=scale))
        generated = missing
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
            overwrite=overwrite,
            phantoms=generated,
        )
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
    its marker (seed, scale, counts, roots, and the tree's file count and bytes), so an
    interrupted write leaves nothing behind.

    The phantom files themselves are written plainly, without an fsync each (thousands of
    journal commits, 15 s of the demo's ~35 s): an interrupted or failed write never
    reaches the move, and after an operating-system crash the marker's inventory no longer
    matches files the disk did not keep, so :func:`ensure_phantoms` writes them again."""
    from medssl.data.synth import write_phantoms

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
    from medssl.artifacts import read_json

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
