# Over 400 lines: one source, one file: CSVs + TCIA tree reader and its phantom writer.
"""CBIS-DDSM — Curated Breast Imaging Subset of DDSM (Lee et al., Sci Data 4:170177, 2017).

Layout: the four case-description CSVs (``mass_case_description_{train,test}_set.csv``,
``calc_case_description_{train,test}_set.csv``) beside the TCIA download tree
``CBIS-DDSM/<Mass-Training_P_00001_LEFT_CC>/<study uid>/<series uid>/<n>.dcm``.

Rules (``docs/datasets.md``, thesis §5.1):
- One record per full mammogram (patient, side, view), gathering its rows from all CSVs.
  Its label is the common class of its rows' ``pathology``; an image whose rows disagree
  (or have none) is dropped and listed in ``self.skipped`` with the reason — a rule, not an
  error, so also in strict mode. A pathology value outside the three known ones is an error.
- ``BENIGN_WITHOUT_CALLBACK`` is benign by default; option ``bwc_as: normal`` gives the
  thesis mapping (it counts 358 "normal" CBIS-DDSM images). Such a "normal" image still
  shows its finding, so its record says ``normal_with_finding`` and the builder never makes
  it a finetuning normal (pretraining may use it). A normal image has an all-zero mask.
- Mask: the union of the image's ROI masks. Cropped images are not used.
- DICOM paths: the CSV path is used when it exists; otherwise the file is found by the
  path's first component (the TCIA folder name), since the uids and file names inside vary
  between downloads. The tree is indexed once. An ROI folder usually holds two DICOMs (the
  ROI mask and the cropped lesion, not reliably told apart by name or CSV column): the
  loader picks the one whose size equals the full image.
- Patient id: ``patient_id`` (e.g. ``P_00001``).
- Pixel spacing: whatever the full mammogram's DICOM header carries (``Loaded.spacing``).
"""

from __future__ import annotations

import csv
import functools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medssl.artifacts import csv_text
from medssl.data.imaging import (
    check_same_size,
    image_shape,
    is_dicom,
    load_image_and_spacing,
    load_mask,
)
from medssl.data.records import Loaded, Record, Skipped
from medssl.data.sources import Source, register_source
from medssl.data.synth.files import SECONDARY_CAPTURE, Pixels, uid, write_dicom, write_text
from medssl.data.synth.mammography import Mammogram, render_mammogram
from medssl.data.synth.stream import labels_in_order
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
        stream,
        *,
        scale: float = 1.0,
        disagree: int = 2,
        without_callback: float = 0.3,
        cropped: float = 0.5,
    ) -> Path:
        """The four case-description CSVs in ``root`` and the TCIA tree ``root/CBIS-DDSM/``.

        ``disagree`` extra images carry rows that disagree in pathology (readers drop them);
        ``without_callback`` of benign images are ``BENIGN_WITHOUT_CALLBACK``; ``cropped``:
        share of ROIs shipped with a cropped-image DICOM. Disk paths differ from the CSV after
        the first component (``1-1.dcm`` for ``000000.dcm``; dated study/series folder names
        on some); where a ROI's mask and cropped image share a folder their order is random
        (the mask is full size). Patients have one or two images (CC and MLO of one side) of
        one class.
        """
        tree = root / "CBIS-DDSM"
        items = [(c, False) for c in labels_in_order(counts)] + [("malignant", True)] * disagree
        order = stream(0).permutation(len(items))
        patients: list[list[int]] = []
        rng0 = stream(1)
        by_class: dict[str, list[int]] = {}
        for j in order:
            by_class.setdefault(f"{items[j][0]}{items[j][1]}", []).append(int(j))
        for group in by_class.values():
            k = 0
            while k < len(group):
                size = 2 if rng0.random() < 0.6 else 1
                patients.append(group[k : k + size])
                k += size
        patients = [patients[i] for i in rng0.permutation(len(patients))]
        rows: dict[str, list[dict[str, Any]]] = {}
        pid = 0
        for p, members in enumerate(patients):
            pid += 1 + int(rng0.integers(0, 3))  # real ids have gaps
            patient = f"P_{pid:05d}"
            side = "LEFT" if rng0.random() < 0.5 else "RIGHT"
            test = rng0.random() < 0.2
            for v, j in enumerate(members):
                label, disagreeing = items[j]
                rng = stream(2, p, v)
                two = ("CC", "MLO")
                view = two[v] if len(members) == 2 else two[int(rng.integers(2))]
                kind = "mass" if rng.random() < 0.55 else "calcification"
                n = 2 if disagreeing else 1 + int(rng.random() < 0.25) + int(rng.random() < 0.05)
                bits = int(rng.choice([8, 12, 16], p=[0.15, 0.35, 0.5]))
                m = render_mammogram(
                    rng, label, scale=scale, bits=bits, laterality=side[0], view=view,
                    n_lesions=n, kinds=(kind,) * n,
                )  # fmt: skip
                abbrev = "Mass" if kind == "mass" else "Calc"
                split = "Test" if test else "Training"
                prefix = f"{abbrev}-{split}_{patient}_{side}_{view}"
                paths = _phantom_tcia(tree, prefix, m, rng, stream.key, cropped)
                if label == "malignant":
                    pathology = ["MALIGNANT"] * n
                else:
                    bwc = rng.random() < without_callback
                    pathology = ["BENIGN_WITHOUT_CALLBACK" if bwc else "BENIGN"] * n
                if disagreeing:
                    pathology = ["BENIGN", "MALIGNANT"]
                sheet = f"{abbrev.lower()}_case_description_{'test' if test else 'train'}_set.csv"
                for a in range(n):
                    row = _phantom_row(rng, a, patient, side, view, kind, pathology[a], paths, m)
                    rows.setdefault(sheet, []).append(row)
        for kind, columns in (("mass", PHANTOM_MASS_COLUMNS), ("calc", PHANTOM_CALC_COLUMNS)):
            for split in ("train", "test"):
                name = f"{kind}_case_description_{split}_set.csv"
                write_text(root / name, csv_text(rows.get(name, []), columns))
        return root


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


PHANTOM_MASS_COLUMNS = (
    "patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
    "abnormality type", "mass shape", "mass margins", "assessment", "pathology", "subtlety",
    "image file path", "cropped image file path", "ROI mask file path",
)  # fmt: skip
PHANTOM_CALC_COLUMNS = (
    "patient_id", "breast density", "left or right breast", "image view", "abnormality id",
    "abnormality type", "calc type", "calc distribution", "assessment", "pathology", "subtlety",
    "image file path", "cropped image file path", "ROI mask file path",
)  # fmt: skip
"""The published mass and calcification CSVs' columns (the density column is spelt two ways)."""


def _phantom_row(rng, a: int, patient, side, view, kind, pathology: str, paths, m) -> dict:
    """Row of abnormality ``a`` of one phantom mammogram, as the case-description CSVs hold it."""
    roi_path = paths["roi"][a]
    if rng.random() < 0.3:  # the real CSVs carry a stray newline at the end of some paths
        roi_path += "\n"
    benign = pathology != "MALIGNANT"
    row = {
        "patient_id": patient,
        "left or right breast": side,
        "image view": view,
        "abnormality id": a + 1,
        "abnormality type": kind,
        "assessment": int(rng.integers(2, 4) if benign else rng.integers(4, 6)),
        "pathology": pathology,
        "subtlety": int(rng.integers(1, 6)),
        "image file path": paths["image"],
        "cropped image file path": paths["cropped"][a],
        "ROI mask file path": roi_path,
    }
    if kind == "mass":
        row["breast_density"] = m.density
        row["mass shape"] = "OVAL" if benign else "IRREGULAR"
        row["mass margins"] = "CIRCUMSCRIBED" if benign else "SPICULATED"
    else:
        row["breast density"] = m.density
        row["calc type"] = "PUNCTATE" if benign else "PLEOMORPHIC"
        row["calc distribution"] = "CLUSTERED"
    return row


def _phantom_tcia(
    tree: Path,
    prefix: str,
    m: Mammogram,
    rng: np.random.Generator,
    key: tuple[int, int],
    cropped: float,
) -> dict[str, Any]:
    """Write one full mammogram, its ROI masks (and cropped images) as TCIA folders.

    Returns the CSV paths: {"image": str, "roi": [str per lesion], "cropped": [str per lesion]}.
    """
    dated = rng.random() < 0.5  # newer TCIA downloads name folders by date and series description
    number = int(rng.integers(10000, 99999))

    def folders(name: str, series: str) -> tuple[str, str, Path, str]:
        """(study uid, series uid, folder on disk, folder as the CSV names it)."""
        study, ser = uid(*key, name, "study"), uid(*key, name, series)
        csv_dir = f"{name}/{study}/{ser}"
        if dated:
            disk = (
                tree / name / f"07-20-2016-DDSM-{number % 100000:05d}"
                / f"1.000000-{series}-{number % 97:05d}"
            )  # fmt: skip
        else:
            disk = tree / name / study / ser
        return study, ser, disk, csv_dir

    study, ser, disk, csv_dir = folders(prefix, "full mammogram images")
    pixels = Pixels.draw(rng, m.image, m.bits, mono1=0.15, rescale=0.4, window=0.3)
    write_dicom(
        disk / "1-1.dcm", m.image, pixels, patient_id=prefix, study_uid=study, series_uid=ser,
        instance_uid=uid(*key, prefix, "image"), series_description="full mammogram images",
        laterality=m.laterality, view=m.view,
    )  # fmt: skip
    out: dict[str, Any] = {"image": f"{csv_dir}/000000.dcm", "roi": [], "cropped": []}
    for a, lesion in enumerate(m.lesions, start=1):
        name = f"{prefix}_{a}"
        mask = lesion.mask(m.image.shape)
        study, ser, disk, csv_dir = folders(name, "ROI mask images")
        with_crop = rng.random() < cropped
        together = with_crop and rng.random() < 0.5
        mask_file, crop_file = (
            ("1-1.dcm", "1-2.dcm") if rng.random() < 0.5 else ("1-2.dcm", "1-1.dcm")
        )
        if not together:
            mask_file = "1-1.dcm"
        write_dicom(
            disk / mask_file, mask.astype(np.uint8) * 255, Pixels(8), patient_id=name,
            study_uid=study, series_uid=ser, instance_uid=uid(*key, name, "roi"),
            series_description="ROI mask images", sop_class=SECONDARY_CAPTURE, modality="OT",
        )  # fmt: skip
        out["roi"].append(f"{csv_dir}/000001.dcm" if with_crop else f"{csv_dir}/000000.dcm")
        if with_crop:
            rows, cols = np.nonzero(mask)
            crop = m.image[
                max(0, rows.min() - 8) : rows.max() + 9, max(0, cols.min() - 8) : cols.max() + 9
            ]
            _, c_ser, c_disk, c_csv = folders(name, "cropped images")
            target = disk / crop_file if together else c_disk / "1-1.dcm"
            write_dicom(
                target, crop, Pixels(m.bits), patient_id=name, study_uid=study,
                series_uid=ser if together else c_ser, instance_uid=uid(*key, name, "crop"),
                series_description="cropped images", sop_class=SECONDARY_CAPTURE, modality="OT",
            )  # fmt: skip
            out["cropped"].append(f"{csv_dir}/000000.dcm" if together else f"{c_csv}/000000.dcm")
        else:
            out["cropped"].append(f"{csv_dir}/000001.dcm")
    return out
