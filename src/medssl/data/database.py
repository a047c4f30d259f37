# Over 400 lines: the artifact's format, loader and checks are one contract (load verifies).
"""The database artifact: the plain, documented meeting point of the data layer and training.

A database folder holds::

    database.json        name, recipe, seed, image sizes, checksum, counts, duplicates found,
                         label/mask policy counts and phantom sources (DATABASE_KEYS)
    manifest.csv         one row per stored image (columns: MANIFEST_COLUMNS)
    pretrain.npy         uint8 (N_pretrain, P, P)  pretraining images, P = 110 by default
    finetune.npy         uint8 (N_finetune, F, F)  finetuning images, F = 64 by default
    finetune_masks.npy   uint8 (N_finetune, F, F)  binary lesion masks (all 0 when none/normal)
    skipped.csv          items left out in lenient mode: source, file, reason

``manifest.csv`` row ``i`` of role ``r`` describes array row ``index`` of ``<r>.npy``.
Labels follow :data:`medssl.data.records.CLASSES` (0 normal, 1 benign, 2 malignant).
Manifests written before a column existed load with that column ``None`` (unknown) where
:data:`OPTIONAL_COLUMNS` says so.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl.artifacts import read_csv, read_json
from medssl.data.records import CLASSES
from medssl.errors import DataError

FORMAT_VERSION = 1
META_FILE = "database.json"
MANIFEST_FILE = "manifest.csv"
SKIPPED_FILE = "skipped.csv"  # the builder's record of every image it left out, and why
ROLES = ("pretrain", "finetune")
SPLITS = {"pretrain": ("train", "val"), "finetune": ("train", "val", "test")}
MANIFEST_COLUMNS = (
    "role",  # pretrain | finetune
    "index",  # row in <role>.npy
    "split",  # train | val (| test for finetune)
    "source",  # reader name, e.g. busi
    "file",  # image path relative to the source root
    "label",  # normal | benign | malignant
    "modality",  # us | mg
    "patient",  # patient group id used for splitting (published id, else the image, merged
    # with its near-duplicates)
    "patient_known",  # 1: the source published this image's patient id; 0: the group is the
    # image itself (or its duplicate group): resampling groups resamples images
    "sha1",  # content hash of the decoded grey image
    "orig_h",
    "orig_w",  # size in pixels of what was padded to square and resized: the original image,
    # or its breast crop (crop_box)
    "spacing_row_mm",  # mm between original pixel rows (DICOM PixelSpacing[0], else
    # ImagerPixelSpacing[0]); "" when unknown
    "spacing_col_mm",  # mm between original pixel columns ([1]); "" when unknown
    "has_mask",  # 1 when a lesion mask is stored that segmentation may use: an empty one
    # for a normal, a non-empty one otherwise (0 for a lesion image whose mask is empty)
    "multi_mask",  # 1 when the source shipped several lesion masks
    "normal_with_finding",  # 1: labelled normal by a source option although the image shows a
    # finding (CBIS-DDSM BENIGN_WITHOUT_CALLBACK as normal); pretraining rows only
    "coarse_mask",  # 1: the stored mask is an approximate region (mini-MIAS circles), not an
    # outline of the lesion
    "crop_box",  # "top,left,height,width" of the breast crop in the original image (recipe
    # crop: breast, mammograms); "" when the whole image was used
)
OPTIONAL_COLUMNS = (
    "patient_known",
    "spacing_row_mm",
    "spacing_col_mm",
    "normal_with_finding",
    "coarse_mask",
    "crop_box",
)
"""Columns older manifests lack: loaded as ``None`` there (unknown)."""
DATABASE_KEYS = {
    "empty_lesion_masks": "{source: finetuning images labelled benign/malignant with an empty "
    "mask, stored has_mask 0}",
    "normals_with_finding": "{source: pretraining normals that show a finding}",
    "mask_resize": "{rule, components, rescued, by_source: {source: {components, rescued}}}",
    "phantoms": "[sources generated as synthetic phantoms]; [] for real data",
    "tasks": "[what the finetuning images serve: classification, segmentation]",
    "quotas_used": "{role: {source: {class: images drawn}}}",
    "fit_quotas": "true when the quotas were fitted to what the sources hold (--fit-quotas)",
    "shortfalls": "[{role, source, class, want, available, when}] quotas not filled "
    "(--lenient / --fit-quotas)",
    "label_conflicts": "{policy: exclude | keep, found: [{image, twin, kind, role, twin_role, "
    "labels: {image, twin}, action, left_out}]}",
    "left_out_sources": "{source: {role: {class: quota}}} of a preset's sources not available "
    "(--available-sources)",
    "crop": "{rule, cropped, widened_for_mask, by_source}: the breast crop of mammograms",
    "coarse_masks": "{source: finetuning masks that are approximate regions}",
}
"""``database.json`` keys of the label, mask and phantom policies (absent in older files)."""


@dataclass
class Database:
    """A loaded database. Arrays are memory-mapped read-only; nothing is copied until asked."""

    path: Path | None
    meta: dict[str, Any]
    manifest: list[dict[str, Any]]
    arrays: dict[str, np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        # Every lookup (images, labels, patients, ... of a role and split) reads rows in array
        # order: grouped once here, by (role, split) and by (role, None), not scanned per call.
        # The groups hold the manifest's own row dicts.
        self._rows: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        for r in sorted(self.manifest, key=lambda r: r["index"]):
            self._rows.setdefault((r["role"], None), []).append(r)
            self._rows.setdefault((r["role"], r["split"]), []).append(r)

    @property
    def name(self) -> str:
        return self.meta.get("name", "database")

    @property
    def checksum(self) -> str:
        return self.meta["checksum"]

    @classmethod
    def load(cls, path: str | Path, *, verify_checksum: bool = True) -> Database:
        """The database folder ``path``, checked (:func:`verify_database`) before it is returned.

        Arrays are memory-mapped read-only. Every check that fails is a DataError naming the
        file and saying to rebuild. ``verify_checksum=False`` skips only the content checksum
        (the one check that reads every byte: about 10 ms for a demo database, 60 ms for a
        thesis-sized one on a 2-core CPU).
        """
        path = check_database_folder(path)
        meta_file = path / META_FILE
        try:
            meta = read_json(meta_file)
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"not valid JSON ({e}); {REBUILD}", file=str(meta_file)) from None
        if not isinstance(meta, dict):
            raise DataError(
                f"expected a JSON object, got {type(meta).__name__}; {REBUILD}", file=str(meta_file)
            )
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"database format {meta.get('format_version')} is not {FORMAT_VERSION}",
                file=str(meta_file),
            )
        manifest = _read_manifest(path / MANIFEST_FILE)
        arrays = {key: _load_array(path, key, manifest, meta) for key in ARRAY_FILES}
        db = cls(path, meta, manifest, arrays)
        verify_database(db, checksum=verify_checksum)
        return db

    @classmethod
    def from_arrays(
        cls,
        *,
        pretrain: np.ndarray,
        pretrain_split: Sequence[str],
        finetune: np.ndarray,
        finetune_masks: np.ndarray,
        finetune_labels: Sequence[int],
        finetune_split: Sequence[str],
        name: str = "memory",
        modality: str = "us",
    ) -> Database:
        """An in-memory database (for tests and notebooks), same API as a loaded one."""
        manifest: list[dict[str, Any]] = []
        for i, s in enumerate(pretrain_split):
            manifest.append(
                _row("pretrain", i, s, "memory", f"p{i}", "benign", modality, f"p{i}", True)
            )
        for i, (s, y) in enumerate(zip(finetune_split, finetune_labels, strict=True)):
            manifest.append(
                _row("finetune", i, s, "memory", f"f{i}", CLASSES[int(y)], modality, f"f{i}", True)
            )
        arrays = {
            "pretrain": np.asarray(pretrain, dtype=np.uint8),
            "finetune": np.asarray(finetune, dtype=np.uint8),
            "finetune_masks": np.asarray(finetune_masks, dtype=np.uint8),
        }
        meta = {
            "name": name,
            "format_version": FORMAT_VERSION,
            "checksum": array_checksum(arrays, manifest),
        }
        return cls(None, meta, manifest, arrays)

    def rows(self, role: str, split: str | None = None) -> list[dict[str, Any]]:
        """Manifest rows of ``role`` (and ``split``), ordered by array index."""
        if role not in ROLES:
            raise DataError(f"unknown role {role!r}; valid: {ROLES}")
        if split is not None and split not in SPLITS[role]:
            raise DataError(f"unknown {role} split {split!r}; valid: {SPLITS[role]}")
        return list(self._rows.get((role, split), ()))

    def indices(self, role: str, split: str | None = None) -> np.ndarray:
        return np.array([r["index"] for r in self.rows(role, split)], dtype=np.int64)

    def images(self, role: str, split: str | None = None) -> np.ndarray:
        """uint8 (N, S, S) images of ``role``/``split`` (a copy)."""
        return np.asarray(self.arrays[role][self.indices(role, split)])

    def masks(self, split: str | None = None) -> np.ndarray:
        """uint8 (N, F, F) binary finetuning masks of ``split``."""
        return np.asarray(self.arrays["finetune_masks"][self.indices("finetune", split)])

    def labels(self, role: str = "finetune", split: str | None = None) -> np.ndarray:
        """int64 (N,) class indices (CLASSES order)."""
        return np.array([CLASSES.index(r["label"]) for r in self.rows(role, split)], dtype=np.int64)

    def has_masks(self, split: str | None = None) -> np.ndarray:
        return np.array([bool(r["has_mask"]) for r in self.rows("finetune", split)], dtype=bool)

    def patients(self, role: str = "finetune", split: str | None = None) -> list[str]:
        return [r["patient"] for r in self.rows(role, split)]

    def patients_known(self, role: str = "finetune", split: str | None = None) -> list[bool | None]:
        """Per row: True when the source published the patient id, False when the patient
        group is the image (or its duplicate group), None when the manifest does not say."""
        return [
            None if r["patient_known"] is None else bool(r["patient_known"])
            for r in self.rows(role, split)
        ]

    def spacing_mm(self, role: str = "finetune", split: str | None = None) -> np.ndarray:
        """float64 (N, 2): (row, column) mm per original pixel; NaN where unknown.

        The stored images are the original padded to a square S = max(orig_h, orig_w) and
        resized to F, so one stored pixel spans ``spacing * S / F`` mm on each axis.
        """
        return np.array(
            [
                [np.nan if r[k] is None else r[k] for k in ("spacing_row_mm", "spacing_col_mm")]
                for r in self.rows(role, split)
            ],
            dtype=np.float64,
        ).reshape(-1, 2)

    @property
    def phantoms(self) -> list[str]:
        """Sources of this database generated as synthetic phantoms ([] for real data and for
        databases built before this was recorded)."""
        return list(self.meta.get("phantoms", []))

    def __repr__(self) -> str:
        """One line: name, images per role and split, image sides, checksum prefix, folder."""
        parts = []
        for role in ROLES:
            shape = self.arrays[role].shape
            side = f"{shape[1]}x{shape[2]} px" if len(shape) == 3 else f"shape {shape}"
            per = ", ".join(f"{s} {len(self._rows.get((role, s), ()))}" for s in SPLITS[role])
            parts.append(f"{role} {len(self._rows.get((role, None), ()))} ({per}) {side}")
        phantoms = ", phantoms" if self.phantoms else ""
        where = str(self.path) if self.path is not None else "in memory"
        checksum = str(self.meta.get("checksum", "none"))[:8]
        return f"<Database {self.name}: {'; '.join(parts)}; checksum {checksum}{phantoms}; {where}>"


def array_checksum(arrays: dict[str, np.ndarray], manifest: list[dict[str, Any]]) -> str:
    """sha1 over the arrays' bytes and the manifest's role/index/split/label columns."""
    h = hashlib.sha1()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    for r in sorted(manifest, key=lambda r: (r["role"], r["index"])):
        h.update(f"{r['role']}|{r['index']}|{r['split']}|{r['label']}|{r['patient']}\n".encode())
    return h.hexdigest()


def _row(
    role, index, split, source, file, label, modality, patient, has_mask, **kw
) -> dict[str, Any]:
    row = dict.fromkeys(MANIFEST_COLUMNS, "")
    row.update(
        role=role,
        index=index,
        split=split,
        source=source,
        file=file,
        label=label,
        modality=modality,
        patient=patient,
        patient_known=0,
        spacing_row_mm=None,
        spacing_col_mm=None,
        has_mask=int(bool(has_mask)),
        multi_mask=0,
        normal_with_finding=0,
        coarse_mask=0,
        crop_box="",
    )
    row.update(kw)
    return row


ARRAY_FILES = ("pretrain", "finetune", "finetune_masks")
"""The arrays of a database folder, ``<key>.npy`` each."""
REBUILD = (
    "rebuild the database with `medssl data build` (same preset, roots and --seed, --overwrite; "
    "in a benchmark's databases/ folder: delete it and rerun `medssl benchmark`)"
)
"""What every DataError about a damaged or edited database folder tells the user to do."""


def _parse_row(
    raw: dict[str, str], *, file: str | None = None, row_no: int | None = None
) -> dict[str, Any]:
    """Typed manifest row: ints for counts and flags, floats for spacings, ``None`` for an
    unknown value (an empty cell, or an :data:`OPTIONAL_COLUMNS` column an older file lacks).
    A role, split or label outside the documented values, or a number that does not parse, is
    a DataError naming ``file`` and ``row_no`` (its line in the file; the header is row 1)."""
    row: dict[str, Any] = dict(raw)

    def bad(message: str) -> DataError:
        return DataError(f"{message}; {REBUILD}", file=file, row=row_no)

    try:
        for key in ("index", "orig_h", "orig_w", "has_mask", "multi_mask"):
            row[key] = int(raw[key]) if raw.get(key, "") != "" else 0
        for key in ("patient_known", "normal_with_finding", "coarse_mask"):
            row[key] = int(raw[key]) if raw.get(key, "") != "" else None
        for key in ("spacing_row_mm", "spacing_col_mm"):
            row[key] = float(raw[key]) if raw.get(key, "") != "" else None
        row["crop_box"] = raw.get("crop_box")  # "" when uncropped, None when not recorded
    except ValueError as e:
        raise bad(f"{e}: expected a number") from None
    role, split, label = raw.get("role"), raw.get("split"), raw.get("label")
    if role not in ROLES:
        raise bad(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if split not in SPLITS[role]:
        raise bad(f"{role} split {split!r}: expected one of {', '.join(SPLITS[role])}")
    if label not in CLASSES:
        raise bad(f"label {label!r}: expected one of {', '.join(CLASSES)}")
    if row["index"] < 0:
        raise bad(f"index {row['index']}: expected >= 0")
    return row


def _read_manifest(file: Path) -> list[dict[str, Any]]:
    """``manifest.csv`` as typed rows; every column of MANIFEST_COLUMNS but the
    :data:`OPTIONAL_COLUMNS` must be there."""
    if not file.is_file():
        raise DataError(
            "missing (a database folder holds database.json, manifest.csv, pretrain.npy, "
            f"finetune.npy and finetune_masks.npy); {REBUILD}",
            file=str(file),
        )
    try:
        raw = read_csv(file)
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"cannot be read as CSV ({e}); {REBUILD}", file=str(file)) from None
    header = list(raw[0]) if raw else _header(file)
    missing = [c for c in MANIFEST_COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; expected {', '.join(MANIFEST_COLUMNS)}; "
            f"{REBUILD}",
            file=str(file),
        )
    return [_parse_row(r, file=str(file), row_no=i) for i, r in enumerate(raw, start=2)]


def _header(file: Path) -> list[str]:
    with open(file, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def _load_array(path: Path, key: str, manifest: list[dict[str, Any]], meta: dict) -> np.ndarray:
    """``<key>.npy`` memory-mapped read-only; a missing, foreign or truncated file is a
    DataError that says which shape was expected."""
    file = path / f"{key}.npy"
    role = "finetune" if key == "finetune_masks" else key
    n = sum(r["role"] == role for r in manifest)
    side = _sizes(meta).get(role, "S")
    expected = f"expected uint8 ({n}, {side}, {side}) as `medssl data build` writes it"
    if not file.is_file():
        raise DataError(f"missing; {expected}; {REBUILD}", file=str(file))
    with open(file, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise DataError(f"not a .npy file (no numpy header); {expected}; {REBUILD}", file=str(file))
    try:
        return np.load(file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(
            f"truncated or damaged ({e}); {expected}; {REBUILD}", file=str(file)
        ) from None


def _sizes(meta: dict[str, Any]) -> dict[str, int]:
    """{role: image side} recorded in database.json ({} when it does not say)."""
    recipe = meta.get("recipe")
    sizes = recipe.get("sizes") if isinstance(recipe, dict) else None
    return {k: v for k, v in sizes.items() if isinstance(v, int)} if isinstance(sizes, dict) else {}


def verify_database(db: Database, *, checksum: bool = True) -> None:
    """Check that ``db``'s arrays, manifest and database.json agree; a DataError otherwise.

    Each array is uint8 (N, S, S); the masks have the finetuning images' shape; the manifest
    describes every array row of its role exactly once (indices 0..N-1); S is the side in
    database.json's ``recipe.sizes`` and the per role/split/label counts are its ``counts``
    (where it records them); with ``checksum``, :func:`array_checksum` equals its ``checksum``.
    An edited array or manifest.csv fails the checksum: the database must be rebuilt, since a
    run's config records the checksum as the identity of its data.
    """
    where = str(db.path) if db.path is not None else db.name
    sizes = _sizes(db.meta)
    for key, a in db.arrays.items():
        role = "finetune" if key == "finetune_masks" else key
        file = str(db.path / f"{key}.npy") if db.path is not None else key
        n = sum(r["role"] == role for r in db.manifest)
        side = sizes.get(role)
        expected = f"uint8 ({n}, {side or 'S'}, {side or 'S'})"
        if (
            a.dtype != np.uint8
            or a.ndim != 3
            or a.shape[0] != n
            or a.shape[1] != a.shape[2]
            or (side is not None and a.shape[1] != side)
        ):
            raise DataError(
                f"holds {a.dtype} {tuple(a.shape)}, expected {expected}: {n} images of role "
                f"{role} in manifest.csv{f', side {side} in database.json' if side else ''}; "
                f"{REBUILD}",
                file=file,
            )
    if db.arrays["finetune_masks"].shape != db.arrays["finetune"].shape:
        raise DataError(
            f"finetune_masks {db.arrays['finetune_masks'].shape} and finetune "
            f"{db.arrays['finetune'].shape} differ: expected one mask per finetuning image; {REBUILD}",
            file=where,
        )
    for role in ROLES:
        idx = sorted(r["index"] for r in db.manifest if r["role"] == role)
        if idx != list(range(len(idx))):
            bad = next(i for i, j in enumerate(idx) if i != j)
            raise DataError(
                f"the {role} rows' index column is not 0..{len(idx) - 1} (each array row once): "
                f"index {idx[bad]} where {bad} was expected; {REBUILD}",
                file=f"{where}/manifest.csv",
            )
    counts = db.meta.get("counts")
    if isinstance(counts, dict):
        found = Counter(f"{r['role']}/{r['split']}/{r['label']}" for r in db.manifest)
        diff = sorted(k for k in set(counts) | set(found) if counts.get(k, 0) != found.get(k, 0))
        if diff:
            shown = ", ".join(f"{k} {counts.get(k, 0)} vs {found.get(k, 0)}" for k in diff[:4])
            raise DataError(
                f"manifest.csv does not match database.json's counts (recorded vs found: {shown}); "
                f"{REBUILD}",
                file=where,
            )
    if checksum:
        recorded = db.meta.get("checksum")
        actual = array_checksum(db.arrays, db.manifest)
        if recorded != actual:
            raise DataError(
                f"contents differ from the checksum in database.json (recorded "
                f"{str(recorded)[:12]}, computed {actual[:12]}): an array or manifest.csv changed "
                f"after it was built, and runs record that checksum as the data's identity; {REBUILD}",
                file=where,
            )


def check_database_folder(path: str | Path, *, flag: str = "database") -> Path:
    """``path`` if it is a database folder, else a DataError that says what it is instead: a
    missing folder, a folder that holds databases (``data build --out`` writes one per
    recipe), or a folder without ``database.json``.

    :meth:`Database.load` runs it, so every verb that opens a database says the same; a CLI
    verb also runs it with its ``flag`` before importing torch, so the message names the flag
    and appears at once.
    """
    path = Path(path)

    def databases_in(folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / META_FILE).is_file())

    if not path.exists():
        beside = databases_in(path.parent)  # a misspelt name: say what is there
        hint = f"; the databases in {path.parent}: {', '.join(beside)}" if beside else ""
        raise DataError(f"{flag}: no such folder{hint}", file=str(path))
    if (path / META_FILE).is_file():
        return path
    inside = databases_in(path)
    if inside:
        raise DataError(
            f"{flag}: this folder holds the databases {', '.join(inside)}; pass one of them "
            f"(e.g. {path / inside[0]})",
            file=str(path),
        )
    raise DataError(
        f"{flag}: not a medssl database (no database.json); build one with `medssl data build`",
        file=str(path),
    )


def database_tasks(db: Database) -> tuple[str, ...]:
    """What the database's finetuning images serve (``database.json`` ``tasks``): databases
    built before the key existed serve classification and segmentation."""
    return tuple(db.meta.get("tasks", ("classification", "segmentation")))
