"""BrEaST-Lesions_USG (Pawłowska et al., Scientific Data 2024): 256 breast ultrasound images.

Layout: ``caseNNN.png`` images with ``caseNNN_tumor.png`` masks (some cases also have
``caseNNN_other*.png`` masks of other findings: not lesions of interest, ignored), and the
clinical sheet ``BrEaST-Lesions-USG-clinical-data-*.xlsx`` (or a CSV export of it) beside
them. Labels and mask names come from the sheet's columns ``Image_filename``,
``Mask_tumor_filename`` and ``Classification`` (benign / malignant / normal); ``CaseID`` is
the patient id (one patient per image; the image name when the column is absent).
A normal image with no tumour mask gets an all-zero mask.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import numpy as np

from medssl.data.imaging import load_image_and_masks
from medssl.data.records import CLASSES, Record
from medssl.data.sources import Source, register_source
from medssl.data.synth.files import save_image, save_mask, write_xlsx
from medssl.data.synth.stream import labels_in_order
from medssl.data.synth.ultrasound import phantom_size, render_ultrasound
from medssl.errors import DataError

REQUIRED = ("Image_filename", "Mask_tumor_filename", "Classification")
_EMPTY = ("", "na", "n/a", "nan", "none", "-")


def _sheets(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and "clinical" in p.name.lower()
        and p.suffix.lower() in (".xlsx", ".csv")
        and not p.name.startswith((".", "~$"))
    )


@register_source("breast_lesions_usg")
class BreastLesionsUSG(Source):
    modality = "us"

    def records(self) -> list[Record]:
        top = self.locate(
            lambda p: bool(_sheets(p)),
            "a BrEaST-Lesions_USG folder with BrEaST-Lesions-USG-clinical-data-*.xlsx (or .csv)",
        )
        sheet = self._pick_sheet(_sheets(top))
        rows = read_sheet(sheet)
        pngs = {
            p.name.lower(): p
            for p in sorted(top.rglob("*"))
            if p.is_file() and p.suffix.lower() == ".png"
        }
        out: list[Record] = []
        for row_no, row in rows:
            try:
                record = self._record(row, row_no, sheet, pngs)
            except DataError as err:
                self.problem(err)
                continue
            if record is not None:
                out.append(record)
        return sorted(out, key=lambda r: r.file)

    def _pick_sheet(self, sheets: list[Path]) -> Path:
        xlsx = [p for p in sheets if p.suffix.lower() == ".xlsx"]
        pool = xlsx or sheets
        if len(pool) > 1:
            names = ", ".join(p.name for p in pool)
            raise DataError(
                f"several clinical sheets ({names}); keep exactly one", file=str(pool[0].parent)
            )
        return pool[0]

    def _record(
        self, row: dict[str, str], row_no: int, sheet: Path, pngs: dict[str, Path]
    ) -> Record | None:
        image_name = row["Image_filename"].strip()
        if not image_name:
            return None  # blank line at the end of a sheet
        label = row["Classification"].strip().lower()
        if label not in CLASSES:
            raise DataError(
                f"Classification {row['Classification']!r} maps to no class; expected one of {', '.join(CLASSES)}",
                file=str(sheet),
                row=row_no,
            )
        image = pngs.get(image_name.lower())
        if image is None:
            raise DataError(
                f"image {image_name!r} listed in the sheet is missing", file=str(sheet), row=row_no
            )
        mask_name = row["Mask_tumor_filename"].strip()
        masks: tuple[Path, ...] = ()
        if mask_name.lower() not in _EMPTY:
            mask = pngs.get(mask_name.lower())
            if mask is None:
                raise DataError(
                    f"image without its required mask: {mask_name!r} (Mask_tumor_filename) is missing",
                    file=str(image),
                )
            masks = (mask,)
        elif label != "normal":
            raise DataError(
                f"{label} image without its required mask (Mask_tumor_filename is empty)",
                file=str(sheet),
                row=row_no,
            )
        case = (row.get("CaseID") or "").strip() or Path(image_name).stem
        return Record(
            source=self.name,
            file=image.relative_to(self.root).as_posix(),
            label=label,
            modality=self.modality,
            patient=case,
            mask_files=tuple(m.relative_to(self.root).as_posix() for m in masks),
            loader=functools.partial(load_image_and_masks, image, masks),
            has_mask=True,
        )

    @classmethod
    def write_phantoms(
        cls, root: Path, counts: dict[str, int], stream, *, scale: float = 1.0
    ) -> Path:
        """``BrEaST-Lesions_USG-images_and_masks/caseNNN.png`` + ``caseNNN_tumor.png``
        (+ ``caseNNN_other1.png``) and the clinical sheet as xlsx."""
        folder = root / "BrEaST-Lesions_USG-images_and_masks"
        folder.mkdir(parents=True, exist_ok=True)
        labels = labels_in_order(counts)
        rows = []
        for case, j in enumerate(stream(0).permutation(len(labels)), start=1):
            label = labels[j]
            rng = stream(1, case)
            rgb, masks = render_ultrasound(rng, label, size=phantom_size(rng, scale))
            name = f"case{case:03d}"
            grey = rgb.mean(axis=2).astype(np.uint8) if rng.random() < 0.5 else rgb
            save_image(folder / f"{name}.png", grey)
            tumor = ""
            if masks:
                tumor = f"{name}_tumor.png"
                save_mask(folder / tumor, masks[0])
            elif rng.random() < 0.5:  # some normal cases ship an empty tumour mask
                tumor = f"{name}_tumor.png"
                save_mask(folder / tumor, np.zeros(rgb.shape[:2], dtype=bool))
            other = ""
            if rng.random() < 0.1:  # a mask of another finding, not a lesion of interest
                other = f"{name}_other1.png"
                o = np.zeros(rgb.shape[:2], dtype=bool)
                h, w = o.shape
                o[h // 10 : h // 6, w // 10 : w // 5] = True
                save_mask(folder / other, o)
            rows.append(_phantom_row(rng, case, name, label, tumor, other))
        sheet = folder / "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx"
        write_xlsx(sheet, PHANTOM_COLUMNS, rows, title="BrEaST-Lesions-USG")
        return folder


PHANTOM_COLUMNS = (
    "CaseID", "Image_filename", "Mask_tumor_filename", "Mask_other_filename", "Pixel_size", "Age",
    "Tissue_composition", "Shape", "Margin", "Echogenicity", "Posterior_features", "BIRADS",
    "Verification", "Classification",
)  # fmt: skip
"""The published clinical sheet's columns, as the phantom sheet carries them."""


def _phantom_row(rng, case: int, name: str, label: str, tumor: str, other: str) -> dict:
    lesion = label != "normal"
    return {
        "CaseID": case,
        "Image_filename": f"{name}.png",
        "Mask_tumor_filename": tumor,
        "Mask_other_filename": other,
        "Pixel_size": round(float(rng.uniform(0.005, 0.012)), 4),
        "Age": int(rng.integers(18, 85)),
        "Tissue_composition": str(
            rng.choice(["homogeneous: fat", "homogeneous: fibroglandular", "heterogeneous"])
        ),
        "Shape": ("oval" if label == "benign" else "irregular") if lesion else "not applicable",
        "Margin": ("circumscribed" if label == "benign" else "not circumscribed")
        if lesion
        else "not applicable",
        "Echogenicity": "hypoechoic" if lesion else "not applicable",
        "Posterior_features": "no" if lesion else "not applicable",
        "BIRADS": {"normal": "1", "benign": "3", "malignant": "4c"}[label],
        "Verification": "confirmed by biopsy" if lesion else "confirmed by follow-up care",
        "Classification": label,
    }


def read_sheet(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Rows of the clinical sheet as (row number as the user sees it, {column: text}).

    The header is the first row holding ``Image_filename`` (within the first 20 rows);
    raises DataError naming the file and the missing columns otherwise.
    """
    if path.suffix.lower() == ".xlsx":
        table = _xlsx_rows(path)
    else:
        table = _csv_rows(path)
    at = next((i for i, row in enumerate(table[:20]) if "Image_filename" in map(_text, row)), None)
    if at is None:
        raise DataError(
            f"missing column(s) {', '.join(REQUIRED)}; expected a header row naming them",
            file=str(path),
        )
    names = [_text(v) for v in table[at]]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(n for n in names if n)}",
            file=str(path),
        )
    rows = []
    for j, values in enumerate(table[at + 1 :], start=at + 2):
        cells = [_text(v) for v in values] + [""] * (len(names) - len(values))
        rows.append((j, {n: c for n, c in zip(names, cells, strict=False) if n}))
    return rows


def _xlsx_rows(path: Path) -> list[list[object]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:
        raise DataError(
            f"cannot read the spreadsheet ({type(err).__name__}: {err})", file=str(path)
        ) from None
    try:
        ws = next((w for w in wb.worksheets if _has_header(w)), wb.worksheets[0])
        return [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _has_header(ws) -> bool:
    return any(
        "Image_filename" in [_text(v) for v in row]
        for row in ws.iter_rows(max_row=20, values_only=True)
    )


def _csv_rows(path: Path) -> list[list[object]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return [row for row in csv.reader(text.splitlines(), dialect) if any(c.strip() for c in row)]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()
