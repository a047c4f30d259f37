"""The CBIS-DDSM reader: the case-description CSVs and the TCIA tree they point into.

Rules: the package docstring (:mod:`medssl.data.sources.cbis_ddsm`).
"""

from __future__ import annotations

import csv
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl.data.imaging import (
    check_same_size,
    image_shape,
    is_dicom,
    load_image_and_spacing,
    load_mask,
)
from medssl.data.records import Loaded, Record, Skipped
from medssl.data.sources import Source, register_source
from medssl.data.sources.cbis_ddsm.phantoms import write_cbis_ddsm
from medssl.data.synth.stream import Stream
from medssl.errors import ConfigError, DataError

CSV_NAMES = (
    "mass_case_description_train_set.csv",
    "mass_case_description_test_set.csv",
    "calc_case_description_train_set.csv",
    "calc_case_description_test_set.csv",
)
PATIENT, SIDE, VIEW, PATHOLOGY = "patient_id", "left or right breast", "image view", "pathology"
IMAGE, CROP, ROI = "image file path", "cropped image file path", "ROI mask file path"
REQUIRED = (PATIENT, SIDE, VIEW, PATHOLOGY, IMAGE, ROI)


def _csvs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower() in CSV_NAMES)


@dataclass(frozen=True)
class CBISDDSMOptions:
    bwc_as: str = "benign"  # BENIGN_WITHOUT_CALLBACK read as benign, or as normal


@register_source("cbis_ddsm")
class CBISDDSM(Source):
    modality = "mg"
    Options = CBISDDSMOptions
    published_classes = ("benign", "malignant")

    def records(self) -> list[Record]:
        bwc = self.opts.bwc_as
        if bwc not in ("benign", "normal"):
            raise ConfigError(f"cbis_ddsm: option bwc_as={bwc!r}; valid: 'benign', 'normal'")
        pathology = {"MALIGNANT": "malignant", "BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": bwc}
        top = self.locate(
            lambda p: bool(_csvs(p)), "a CBIS-DDSM folder with *_case_description_*_set.csv"
        )
        order = {name: i for i, name in enumerate(CSV_NAMES)}
        groups: dict[tuple[str, str, str], list[tuple[Path, int, dict[str, str]]]] = defaultdict(
            list
        )
        for sheet in sorted(_csvs(top), key=lambda p: order[p.name.lower()]):
            for row_no, row in self._rows(sheet):
                key = (row[PATIENT].strip(), row[SIDE].strip().upper(), row[VIEW].strip().upper())
                groups[key].append((sheet, row_no, row))
        index = _DicomIndex(top)
        out: list[Record] = []
        for key in sorted(groups):
            try:
                record = self._record(key, groups[key], pathology, index)
            except DataError as err:
                self.problem(err)
                continue
            if record is not None:
                out.append(record)
        return sorted(out, key=lambda r: r.file)

    def _rows(self, sheet: Path) -> list[tuple[int, dict[str, str]]]:
        with open(sheet, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [(h or "").strip() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED if c not in fields]
            if missing:
                self.problem(
                    DataError(
                        f"missing column(s) {', '.join(repr(c) for c in missing)}; expected {', '.join(REQUIRED)}",
                        file=str(sheet),
                    )
                )
                return []
            rows = []
            for row_no, raw in enumerate(reader, start=2):
                # row numbers count records as a spreadsheet shows them (paths may hold newlines)
                row = {k.strip(): (v or "") for k, v in raw.items() if k is not None}
                if not any(v.strip() for v in row.values()):
                    continue
                rows.append((row_no, row))
        return rows

    def _record(self, key, rows, pathology: dict[str, str], index: _DicomIndex) -> Record | None:
        labels = set()
        for sheet, row_no, row in rows:
            value = row[PATHOLOGY].strip().upper()
            if not value:
                continue
            if value not in pathology:
                raise DataError(
                    f"pathology {row[PATHOLOGY]!r} maps to no class; expected one of {', '.join(pathology)}",
                    file=str(sheet),
                    row=row_no,
                )
            labels.add(pathology[value])
        sheet, row_no, first = rows[0]
        image = index.resolve(first[IMAGE], sheet, row_no)
        rel = image.relative_to(self.root).as_posix()
        if len(labels) != 1:
            why = (
                "has no pathology" if not labels else f"rows disagree ({', '.join(sorted(labels))})"
            )
            self.skipped.append(
                Skipped(self.name, rel, f"{'/'.join(key)} {why}; dropped (thesis §5.1)")
            )
            return None
        label = labels.pop()
        # the thesis mapping makes some lesion images "normal": they show a finding all the same
        with_finding = label == "normal" and any(
            row[PATHOLOGY].strip().upper() == "BENIGN_WITHOUT_CALLBACK" for _, _, row in rows
        )
        rois: list[tuple[Path, ...]] = []
        if label != "normal":
            for sheet, row_no, row in rows:
                candidates = index.candidates(row[ROI], row.get(CROP, ""))
                if not candidates:
                    raise DataError(
                        f"image without its required mask: no DICOM found for ROI mask file path {row[ROI].strip()!r}",
                        file=str(sheet),
                        row=row_no,
                    )
                rois.append(tuple(candidates))
        return Record(
            source=self.name,
            file=rel,
            label=label,
            modality=self.modality,
            patient=key[0],
            mask_files=tuple(
                sorted({c.relative_to(self.root).as_posix() for group in rois for c in group})
            ),
            loader=functools.partial(load_with_rois, image, tuple(rois)),
            has_mask=True,
            extra=(("side", key[1]), ("view", key[2]), ("abnormalities", str(len(rows)))),
            normal_with_finding=with_finding,
        )

    @classmethod
    def write_phantoms(
        cls,
        root: Path,
        counts: dict[str, int],
        stream: Stream,
        *,
        scale: float = 1.0,
        disagree: int = 2,
        without_callback: float = 0.3,
        cropped: float = 0.5,
    ) -> Path:
        """The case-description CSVs and TCIA tree of :func:`~.phantoms.write_cbis_ddsm`."""
        return write_cbis_ddsm(
            root, counts, stream, scale=scale, disagree=disagree,
            without_callback=without_callback, cropped=cropped,
        )  # fmt: skip


def load_with_rois(image_file: Path, rois: tuple[tuple[Path, ...], ...]) -> Loaded:
    """Full mammogram + union of its ROI masks; each ROI is the candidate DICOM of the image's size.

    image: (H, W) float32 [0, 1]; mask: (H, W) bool (all zero when ``rois`` is empty);
    spacing from the full mammogram's header.
    """
    image, spacing = load_image_and_spacing(image_file)
    mask = np.zeros(image.shape, dtype=bool)
    for candidates in rois:
        same = [c for c in candidates if image_shape(c) == image.shape]
        if not same:
            sizes = ", ".join(f"{c.name}: {image_shape(c)}" for c in candidates)
            raise DataError(
                f"no ROI mask DICOM of the image's size {image.shape} among {sizes}",
                file=str(image_file),
            )
        m = load_mask(same[0])
        check_same_size(image, m, image_file, same[0])
        mask |= m
    return Loaded(image, mask, spacing)


class _DicomIndex:
    """Every DICOM under the root, found by the TCIA folder names on its path (built once)."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self._by_folder: dict[str, list[Path]] | None = None

    @property
    def by_folder(self) -> dict[str, list[Path]]:
        if self._by_folder is None:
            index: dict[str, list[Path]] = defaultdict(list)
            for p in sorted(self.top.rglob("*")):
                if (
                    p.is_file()
                    and not p.name.startswith(".")
                    and (p.suffix.lower() == ".dcm" or (not p.suffix and is_dicom(p)))
                ):
                    for part in p.relative_to(self.top).parts[:-1]:
                        index[part].append(p)
            self._by_folder = dict(index)
        return self._by_folder

    def _direct(self, csv_path: str) -> Path | None:
        rel = csv_path.strip().replace("\\", "/").strip("/")
        for base in (self.top, self.top / "CBIS-DDSM"):
            if rel and (base / rel).is_file():
                return base / rel
        return None

    def _folder(self, csv_path: str) -> list[Path]:
        rel = csv_path.strip().replace("\\", "/").strip("/")
        return self.by_folder.get(rel.split("/")[0], []) if rel else []

    def resolve(self, csv_path: str, sheet: Path, row_no: int) -> Path:
        """The one full-mammogram DICOM of an ``image file path``."""
        direct = self._direct(csv_path)
        if direct is not None:
            return direct
        found = self._folder(csv_path)
        if len(found) > 1:
            name = csv_path.strip().replace("\\", "/").split("/")[-1]
            found = [p for p in found if p.name == name] or found
        if len(found) != 1:
            what = "no DICOM" if not found else f"{len(found)} DICOMs"
            raise DataError(
                f"image file path {csv_path.strip()!r}: {what} under folder "
                f"{csv_path.strip().split('/')[0]!r}; expected exactly one full mammogram",
                file=str(sheet),
                row=row_no,
            )
        return found[0]

    def candidates(self, roi_path: str, crop_path: str) -> list[Path]:
        """DICOMs that may be this row's ROI mask (the mask and the crop share TCIA folders)."""
        found = [p for p in (self._direct(roi_path), self._direct(crop_path)) if p is not None]
        found += self._folder(roi_path) + self._folder(crop_path)
        return list(dict.fromkeys(found))  # unique, the CSV's own ROI path first
