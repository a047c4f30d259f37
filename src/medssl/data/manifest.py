"""``manifest.csv``: one typed row per stored image of a database, and its CSV form.

Row ``i`` of role ``r`` describes array row ``index`` of ``<r>.npy``; the columns are the
fields of :class:`ManifestRow`, in their order. Flags are written ``0``/``1``, an unknown
number (a spacing, the original size of an in-memory image) as an empty cell. Reading checks
every cell: a row outside the documented values is a :class:`~medssl.errors.DataError`
naming the file and row, that says to rebuild (:data:`REBUILD`).
"""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from medssl.artifacts import read_csv, write_csv
from medssl.data.records import CLASSES, MODALITIES
from medssl.errors import DataError

ROLES = ("pretrain", "finetune")
SPLITS = {"pretrain": ("train", "val"), "finetune": ("train", "val", "test")}
REBUILD = (
    "rebuild the database with `medssl data build` (same preset, roots and --seed, --overwrite; "
    "in a benchmark's databases/ folder: delete it and rerun `medssl benchmark`)"
)
"""What every DataError about a damaged, edited or foreign database folder tells the user."""


@dataclass(frozen=True)
class ManifestRow:
    """One stored image: where it came from, its label and patient, and what was stored."""

    role: str  # pretrain | finetune
    index: int  # row in <role>.npy
    split: str  # train | val (| test for finetune)
    source: str  # reader name, e.g. busi
    file: str  # image path relative to the source root
    label: str  # normal | benign | malignant
    modality: str  # us | mg
    # patient group id used for splitting (published id, else the image, merged with its
    # near-duplicates)
    patient: str
    # the source published this image's patient id; else the group is the image itself (or
    # its duplicate group): resampling groups resamples images
    patient_known: bool = False
    sha1: str = ""  # content hash of the decoded grey image ("" in memory)
    # size in pixels of what was padded to square and resized: the original image, or its
    # breast crop (crop_box); None for an in-memory database, whose images are not resized
    orig_h: int | None = None
    orig_w: int | None = None
    # mm between original pixel rows (DICOM PixelSpacing[0], else ImagerPixelSpacing[0]) and
    # columns ([1]); None when unknown
    spacing_row_mm: float | None = None
    spacing_col_mm: float | None = None
    # a lesion mask is stored that segmentation may use: an empty one for a normal, a
    # non-empty one otherwise (False for a lesion image whose mask is empty)
    has_mask: bool = False
    multi_mask: bool = False  # the source shipped several lesion masks
    # labelled normal by a source option although the image shows a finding (CBIS-DDSM
    # BENIGN_WITHOUT_CALLBACK as normal); pretraining rows only
    normal_with_finding: bool = False
    # the stored mask is an approximate region (mini-MIAS circles), not an outline
    coarse_mask: bool = False
    # "top,left,height,width" of the breast crop in the original image (recipe crop: breast,
    # mammograms); "" when the whole image was used
    crop_box: str = ""

    def csv(self) -> dict[str, str | int]:
        """The row as ``manifest.csv`` holds it (flags 0/1, unknown numbers "")."""
        out: dict[str, str | int] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool):
                value = int(value)
            out[f.name] = (
                "" if value is None else repr(value) if isinstance(value, float) else value
            )
        return out

    @property
    def counts_key(self) -> str:
        """``role/split/label``: the key of ``database.json``'s ``counts``."""
        return f"{self.role}/{self.split}/{self.label}"


MANIFEST_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(ManifestRow))
_INTS = ("index", "orig_h", "orig_w")
_FLOATS = ("spacing_row_mm", "spacing_col_mm")
_FLAGS = ("patient_known", "has_mask", "multi_mask", "normal_with_finding", "coarse_mask")
_OPTIONAL = ("orig_h", "orig_w", *_FLOATS)  # an empty cell is None


def counts(rows: Iterable[ManifestRow]) -> dict[str, int]:
    """Images per ``role/split/label`` (:attr:`ManifestRow.counts_key`)."""
    return dict(Counter(r.counts_key for r in rows))


def parse_row(raw: Mapping[str, str], *, file: str, row_no: int) -> ManifestRow:
    """The typed row of one CSV record; a DataError naming ``file`` and ``row_no`` (its line in
    the file; the header is row 1) for a value outside the documented ones."""

    def bad(message: str) -> DataError:
        return DataError(f"{message}; {REBUILD}", file=file, row=row_no)

    if None in raw or None in raw.values():  # csv.DictReader's marks of a short or long row
        raise bad(f"expected {len(MANIFEST_COLUMNS)} cells, as many as the header's columns")
    values: dict[str, object] = dict(raw)
    try:
        for key in _INTS:
            values[key] = None if key in _OPTIONAL and raw[key] == "" else int(raw[key])
        for key in _FLOATS:
            values[key] = None if raw[key] == "" else float(raw[key])
    except ValueError as e:
        raise bad(f"{e}: expected a number") from None
    for key in _FLAGS:
        if raw[key] not in ("0", "1"):
            raise bad(f"{key} {raw[key]!r}: expected 0 or 1")
        values[key] = raw[key] == "1"
    role, split, label, modality = raw["role"], raw["split"], raw["label"], raw["modality"]
    if role not in ROLES:
        raise bad(f"role {role!r}: expected one of {', '.join(ROLES)}")
    if split not in SPLITS[role]:
        raise bad(f"{role} split {split!r}: expected one of {', '.join(SPLITS[role])}")
    if label not in CLASSES:
        raise bad(f"label {label!r}: expected one of {', '.join(CLASSES)}")
    if modality not in MODALITIES:
        raise bad(f"modality {modality!r}: expected one of {', '.join(MODALITIES)}")
    if values["index"] < 0:  # type: ignore[operator]
        raise bad(f"index {values['index']}: expected >= 0")
    return ManifestRow(**values)  # type: ignore[arg-type]


def read_manifest(file: Path) -> list[ManifestRow]:
    """``manifest.csv`` as typed rows; its header must be :data:`MANIFEST_COLUMNS`."""
    if not file.is_file():
        raise DataError(
            "missing (a database folder holds database.json, manifest.csv, pretrain.npy, "
            f"finetune.npy and finetune_masks.npy); {REBUILD}",
            file=str(file),
        )
    try:
        raw = read_csv(file)
        with open(file, newline="", encoding="utf-8") as f:
            header = next(csv.reader(f), [])
    except (ValueError, UnicodeDecodeError) as e:
        raise DataError(f"cannot be read as CSV ({e}); {REBUILD}", file=str(file)) from None
    if tuple(header) != MANIFEST_COLUMNS:
        missing = [c for c in MANIFEST_COLUMNS if c not in header]
        unknown = [c for c in header if c not in MANIFEST_COLUMNS]
        found = f"missing {', '.join(missing) or 'none'}, unknown {', '.join(unknown) or 'none'}"
        raise DataError(
            f"columns {', '.join(header)} ({found}); expected {', '.join(MANIFEST_COLUMNS)}; "
            f"{REBUILD}",
            file=str(file),
        )
    return [parse_row(r, file=str(file), row_no=i) for i, r in enumerate(raw, start=2)]


def write_manifest(file: Path, rows: Iterable[ManifestRow]) -> Path:
    return write_csv(file, [r.csv() for r in rows], MANIFEST_COLUMNS)
