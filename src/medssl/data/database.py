"""The database artifact: the plain, documented meeting point of the data layer and training.

A database folder holds::

    database.json        name, layout version, recipe, seed, checksum, counts, duplicates
                         found, label/mask policy counts, phantom sources (medssl.data.meta)
    manifest.csv         one row per stored image (medssl.data.manifest.ManifestRow)
    pretrain.npy         uint8 (N_pretrain, P, P)  pretraining images, P = 110 by default
    finetune.npy         uint8 (N_finetune, F, F)  finetuning images, F = 64 by default
    finetune_masks.npy   uint8 (N_finetune, F, F)  binary lesion masks (all 0 when none/normal)
    skipped.csv          items left out in lenient mode: source, file, reason

``manifest.csv`` row ``i`` of role ``r`` describes array row ``index`` of ``<r>.npy``.
Labels follow :data:`medssl.data.records.CLASSES` (0 normal, 1 benign, 2 malignant).
:meth:`Database.load` reads the folder and checks it (:mod:`medssl.data.verify`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medssl.artifacts import save_npy, write_csv, write_json
from medssl.data.manifest import (
    REBUILD,
    ROLES,
    SPLITS,
    ManifestRow,
    counts,
    read_manifest,
    write_manifest,
)
from medssl.data.meta import DatabaseMeta, read_meta
from medssl.data.records import CLASSES, Skipped
from medssl.data.verify import array_checksum, array_role, verify_contents
from medssl.errors import DataError

META_FILE = "database.json"
MANIFEST_FILE = "manifest.csv"
SKIPPED_FILE = "skipped.csv"  # the builder's record of every image it left out, and why
ARRAY_FILES = ("pretrain", "finetune", "finetune_masks")
"""The arrays of a database folder, ``<key>.npy`` each."""
SKIPPED_COLUMNS = tuple(f.name for f in dataclasses.fields(Skipped))


@dataclass
class Database:
    """A loaded database. Arrays are memory-mapped read-only; nothing is copied until asked."""

    path: Path | None
    meta: DatabaseMeta
    manifest: list[ManifestRow]
    arrays: dict[str, np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        # Every lookup (images, labels, patients, ... of a role and split) reads rows in array
        # order: grouped once here, by (role, split) and by (role, None), not scanned per call.
        self._rows: dict[tuple[str, str | None], list[ManifestRow]] = {}
        for r in sorted(self.manifest, key=lambda r: r.index):
            self._rows.setdefault((r.role, None), []).append(r)
            self._rows.setdefault((r.role, r.split), []).append(r)

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def checksum(self) -> str:
        return self.meta.checksum

    @property
    def tasks(self) -> tuple[str, ...]:
        """What the finetuning images serve (the recipe's ``tasks``)."""
        return self.meta.tasks

    @property
    def phantoms(self) -> list[str]:
        """Sources of this database generated as synthetic phantoms ([] for real data)."""
        return list(self.meta.phantoms)

    @classmethod
    def load(cls, path: str | Path, *, verify_checksum: bool = True) -> Database:
        """The database folder ``path``, checked (:mod:`medssl.data.verify`) before it is
        returned.

        Arrays are memory-mapped read-only. Every check that fails is a DataError naming the
        file and saying to rebuild. ``verify_checksum=False`` skips only the content checksum
        (the one check that reads every byte: about 10 ms for a demo database, 60 ms for a
        thesis-sized one on a 2-core CPU).
        """
        path = check_database_folder(path)
        meta = read_meta(path / META_FILE)
        manifest = read_manifest(path / MANIFEST_FILE)
        arrays = {key: _load_array(path, key, manifest, meta) for key in ARRAY_FILES}
        verify_contents(arrays, manifest, meta, path, checksum=verify_checksum)
        return cls(path, meta, manifest, arrays)

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
        """An in-memory database (for tests and notebooks), same API as a loaded one: every
        image its own patient, every finetuning image with a mask, pretraining labelled benign."""
        manifest = [
            ManifestRow("pretrain", i, s, "memory", f"p{i}", "benign", modality, f"p{i}")
            for i, s in enumerate(pretrain_split)
        ]
        manifest += [
            ManifestRow(
                "finetune",
                i,
                s,
                "memory",
                f"f{i}",
                CLASSES[int(y)],
                modality,
                f"f{i}",
                has_mask=True,
            )  # fmt: skip
            for i, (s, y) in enumerate(zip(finetune_split, finetune_labels, strict=True))
        ]
        arrays = {
            "pretrain": np.asarray(pretrain, dtype=np.uint8),
            "finetune": np.asarray(finetune, dtype=np.uint8),
            "finetune_masks": np.asarray(finetune_masks, dtype=np.uint8),
        }
        meta = DatabaseMeta(
            name=name, checksum=array_checksum(arrays, manifest), counts=counts(manifest)
        )
        return cls(None, meta, manifest, arrays)

    def rows(self, role: str, split: str | None = None) -> list[ManifestRow]:
        """Manifest rows of ``role`` (and ``split``), ordered by array index."""
        if role not in ROLES:
            raise DataError(f"unknown role {role!r}; valid: {ROLES}")
        if split is not None and split not in SPLITS[role]:
            raise DataError(f"unknown {role} split {split!r}; valid: {SPLITS[role]}")
        return list(self._rows.get((role, split), ()))

    def indices(self, role: str, split: str | None = None) -> np.ndarray:
        return np.array([r.index for r in self.rows(role, split)], dtype=np.int64)

    def images(self, role: str, split: str | None = None) -> np.ndarray:
        """uint8 (N, S, S) images of ``role``/``split`` (a copy)."""
        return np.asarray(self.arrays[role][self.indices(role, split)])

    def masks(self, split: str | None = None) -> np.ndarray:
        """uint8 (N, F, F) binary finetuning masks of ``split``."""
        return np.asarray(self.arrays["finetune_masks"][self.indices("finetune", split)])

    def labels(self, role: str = "finetune", split: str | None = None) -> np.ndarray:
        """int64 (N,) class indices (CLASSES order)."""
        return np.array([CLASSES.index(r.label) for r in self.rows(role, split)], dtype=np.int64)

    def has_masks(self, split: str | None = None) -> np.ndarray:
        return np.array([r.has_mask for r in self.rows("finetune", split)], dtype=bool)

    def patients(self, role: str = "finetune", split: str | None = None) -> list[str]:
        return [r.patient for r in self.rows(role, split)]

    def patients_known(self, role: str = "finetune", split: str | None = None) -> list[bool]:
        """Per row: True when the source published the patient id, False when the patient
        group is the image (or its duplicate group)."""
        return [r.patient_known for r in self.rows(role, split)]

    def spacing_mm(self, role: str = "finetune", split: str | None = None) -> np.ndarray:
        """float64 (N, 2): (row, column) mm per original pixel; NaN where unknown.

        The stored images are the original padded to a square S = max(orig_h, orig_w) and
        resized to F, so one stored pixel spans ``spacing * S / F`` mm on each axis.
        """
        return np.array(
            [
                [np.nan if v is None else v for v in (r.spacing_row_mm, r.spacing_col_mm)]
                for r in self.rows(role, split)
            ],
            dtype=np.float64,
        ).reshape(-1, 2)

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
        checksum = self.checksum[:8]
        return f"<Database {self.name}: {'; '.join(parts)}; checksum {checksum}{phantoms}; {where}>"


def write_database(folder: Path, db: Database, skipped: Sequence[Skipped] = ()) -> Path:
    """Write ``db``'s files into ``folder`` (which exists: the builder's temporary folder, moved
    into place whole by :func:`medssl.artifacts.atomic_dir`)."""
    for key in ARRAY_FILES:
        save_npy(folder / f"{key}.npy", db.arrays[key])
    write_manifest(folder / MANIFEST_FILE, db.manifest)
    write_csv(folder / SKIPPED_FILE, [vars(s) for s in skipped], SKIPPED_COLUMNS)
    write_json(folder / META_FILE, db.meta.json())
    return folder


def _load_array(
    path: Path, key: str, manifest: Sequence[ManifestRow], meta: DatabaseMeta
) -> np.ndarray:
    """``<key>.npy`` memory-mapped read-only; a missing, foreign or truncated file is a
    DataError that says which shape was expected."""
    file = path / f"{key}.npy"
    role = array_role(key)
    n = sum(r.role == role for r in manifest)
    side = meta.sizes.get(role, "S")
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


def check_database_folder(path: str | Path, *, flag: str = "database") -> Path:
    """``path`` if it is a database folder (its folder if ``path`` is the database's own
    ``database.json``), else a DataError that says what it is instead: a
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
    if path.name == META_FILE and path.is_file():  # the database's own database.json
        return path.parent
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
