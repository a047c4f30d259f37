"""CBIS-DDSM phantoms in the published layout: four case-description CSVs beside the TCIA
tree ``CBIS-DDSM/<Mass-Training_P_00001_LEFT_CC>/<study uid>/<series uid>/<n>.dcm``.

Disk paths differ from the CSV after the first component (``1-1.dcm`` for ``000000.dcm``;
dated study/series folder names on some), as in real downloads; where a ROI's mask and
cropped image share a folder their order is random (the mask is full size). Patients have one
or two images (CC and MLO of one side) of one class. Every draw comes from the source's
:class:`~medssl.data.synth.stream.Stream`: the patients from items 0 and 1, image ``v`` of
patient ``p`` from item ``(2, p, v)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medssl.artifacts import csv_text
from medssl.data.synth.files import SECONDARY_CAPTURE, Pixels, uid, write_dicom, write_text
from medssl.data.synth.mammography import Mammogram, render_mammogram
from medssl.data.synth.stream import Stream, labels_in_order


@dataclass(frozen=True)
class _Patient:
    id: str  # P_00001
    side: str  # LEFT | RIGHT
    test: bool  # in the test sheets
    members: list[int]  # the items (images) of this patient


@dataclass(frozen=True)
class _Shares:
    scale: float  # image-size factor
    without_callback: float  # benign images that are BENIGN_WITHOUT_CALLBACK
    cropped: float  # ROIs shipped with a cropped-image DICOM


def write_cbis_ddsm(
    root: Path,
    counts: dict[str, int],
    stream: Stream,
    *,
    scale: float = 1.0,
    disagree: int = 2,
    without_callback: float = 0.3,
    cropped: float = 0.5,
) -> Path:
    """The four case-description CSVs in ``root`` and the TCIA tree ``root/CBIS-DDSM/``.

    ``disagree`` extra images carry rows that disagree in pathology (readers drop them);
    ``without_callback`` of benign images are ``BENIGN_WITHOUT_CALLBACK``; ``cropped``:
    share of ROIs shipped with a cropped-image DICOM.
    """
    tree = root / "CBIS-DDSM"
    items = [(c, False) for c in labels_in_order(counts)] + [("malignant", True)] * disagree
    shares = _Shares(scale, without_callback, cropped)
    rows: dict[str, list[dict[str, Any]]] = {}
    for p, patient in enumerate(_patients(items, stream)):
        for v, j in enumerate(patient.members):
            sheet, image_rows = _image(tree, stream, patient, p, v, items[j], shares)
            rows.setdefault(sheet, []).extend(image_rows)
    for kind, columns in (("mass", PHANTOM_MASS_COLUMNS), ("calc", PHANTOM_CALC_COLUMNS)):
        for split in ("train", "test"):
            name = f"{kind}_case_description_{split}_set.csv"
            write_text(root / name, csv_text(rows.get(name, []), columns))
    return root


def _patients(items: list[tuple[str, bool]], stream: Stream) -> list[_Patient]:
    """The items shuffled into patients of one or two images of one kind, in random order,
    with ids (real ids have gaps), sides and sheets."""
    order = stream(0).permutation(len(items))
    groups: list[list[int]] = []
    rng0 = stream(1)
    by_class: dict[str, list[int]] = {}
    for j in order:
        by_class.setdefault(f"{items[j][0]}{items[j][1]}", []).append(int(j))
    for group in by_class.values():
        k = 0
        while k < len(group):
            size = 2 if rng0.random() < 0.6 else 1
            groups.append(group[k : k + size])
            k += size
    groups = [groups[i] for i in rng0.permutation(len(groups))]
    out, pid = [], 0
    for members in groups:
        pid += 1 + int(rng0.integers(0, 3))
        side = "LEFT" if rng0.random() < 0.5 else "RIGHT"
        out.append(_Patient(f"P_{pid:05d}", side, rng0.random() < 0.2, members))
    return out


def _image(
    tree: Path,
    stream: Stream,
    patient: _Patient,
    p: int,
    v: int,
    item: tuple[str, bool],
    shares: _Shares,
) -> tuple[str, list[dict[str, Any]]]:
    """Write image ``v`` of patient ``p`` with its ROIs; (its sheet, its CSV rows)."""
    label, disagreeing = item
    rng = stream(2, p, v)
    two = ("CC", "MLO")
    view = two[v] if len(patient.members) == 2 else two[int(rng.integers(2))]
    kind = "mass" if rng.random() < 0.55 else "calcification"
    n = 2 if disagreeing else 1 + int(rng.random() < 0.25) + int(rng.random() < 0.05)
    bits = int(rng.choice([8, 12, 16], p=[0.15, 0.35, 0.5]))
    m = render_mammogram(
        rng, label, scale=shares.scale, bits=bits, laterality=patient.side[0], view=view,
        n_lesions=n, kinds=(kind,) * n,
    )  # fmt: skip
    abbrev = "Mass" if kind == "mass" else "Calc"
    prefix = f"{abbrev}-{'Test' if patient.test else 'Training'}_{patient.id}_{patient.side}_{view}"
    paths = _phantom_tcia(tree, prefix, m, rng, stream.key, shares.cropped)
    if label == "malignant":
        pathology = ["MALIGNANT"] * n
    else:
        bwc = rng.random() < shares.without_callback
        pathology = ["BENIGN_WITHOUT_CALLBACK" if bwc else "BENIGN"] * n
    if disagreeing:
        pathology = ["BENIGN", "MALIGNANT"]
    sheet = f"{abbrev.lower()}_case_description_{'test' if patient.test else 'train'}_set.csv"
    rows = [
        _phantom_row(rng, a, patient.id, patient.side, view, kind, pathology[a], paths, m)
        for a in range(n)
    ]
    return sheet, rows


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


@dataclass(frozen=True)
class _Folders:
    """Where one image's TCIA series go: on disk, and as the CSV names them."""

    tree: Path
    key: tuple[int, int]
    dated: bool  # newer TCIA downloads name folders by date and series description
    number: int

    def __call__(self, name: str, series: str) -> tuple[str, str, Path, str]:
        """(study uid, series uid, folder on disk, folder as the CSV names it)."""
        study, ser = uid(*self.key, name, "study"), uid(*self.key, name, series)
        csv_dir = f"{name}/{study}/{ser}"
        if self.dated:
            disk = (
                self.tree / name / f"07-20-2016-DDSM-{self.number % 100000:05d}"
                / f"1.000000-{series}-{self.number % 97:05d}"
            )  # fmt: skip
        else:
            disk = self.tree / name / study / ser
        return study, ser, disk, csv_dir


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
    dated = rng.random() < 0.5
    folders = _Folders(tree, key, dated, int(rng.integers(10000, 99999)))
    study, ser, disk, csv_dir = folders(prefix, "full mammogram images")
    pixels = Pixels.draw(rng, m.image, m.bits, mono1=0.15, rescale=0.4, window=0.3)
    write_dicom(
        disk / "1-1.dcm", m.image, pixels, patient_id=prefix, study_uid=study, series_uid=ser,
        instance_uid=uid(*key, prefix, "image"), series_description="full mammogram images",
        laterality=m.laterality, view=m.view,
    )  # fmt: skip
    out: dict[str, Any] = {"image": f"{csv_dir}/000000.dcm", "roi": [], "cropped": []}
    for a, lesion in enumerate(m.lesions, start=1):
        roi, crop = _phantom_roi(
            folders, f"{prefix}_{a}", m, lesion.mask(m.image.shape), rng, cropped
        )
        out["roi"].append(roi)
        out["cropped"].append(crop)
    return out


def _phantom_roi(
    folders: _Folders,
    name: str,
    m: Mammogram,
    mask: np.ndarray,
    rng: np.random.Generator,
    cropped: float,
) -> tuple[str, str]:
    """Write one lesion's ROI mask DICOM (and cropped image, ``cropped`` of them, sometimes in
    the mask's folder); the CSV's (ROI mask path, cropped image path)."""
    key = folders.key
    study, ser, disk, csv_dir = folders(name, "ROI mask images")
    with_crop = rng.random() < cropped
    together = with_crop and rng.random() < 0.5
    mask_file, crop_file = ("1-1.dcm", "1-2.dcm") if rng.random() < 0.5 else ("1-2.dcm", "1-1.dcm")
    if not together:
        mask_file = "1-1.dcm"
    write_dicom(
        disk / mask_file, mask.astype(np.uint8) * 255, Pixels(8), patient_id=name,
        study_uid=study, series_uid=ser, instance_uid=uid(*key, name, "roi"),
        series_description="ROI mask images", sop_class=SECONDARY_CAPTURE, modality="OT",
    )  # fmt: skip
    roi = f"{csv_dir}/000001.dcm" if with_crop else f"{csv_dir}/000000.dcm"
    if not with_crop:
        return roi, f"{csv_dir}/000001.dcm"
    rows, cols = np.nonzero(mask)
    crop = m.image[max(0, rows.min() - 8) : rows.max() + 9, max(0, cols.min() - 8) : cols.max() + 9]
    _, c_ser, c_disk, c_csv = folders(name, "cropped images")
    target = disk / crop_file if together else c_disk / "1-1.dcm"
    write_dicom(
        target, crop, Pixels(m.bits), patient_id=name, study_uid=study,
        series_uid=ser if together else c_ser, instance_uid=uid(*key, name, "crop"),
        series_description="cropped images", sop_class=SECONDARY_CAPTURE, modality="OT",
    )  # fmt: skip
    return roi, f"{csv_dir}/000000.dcm" if together else f"{c_csv}/000000.dcm"
