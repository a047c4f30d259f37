"""INbreast (Moreira et al., Academic Radiology 19(2), 2012): 410 full-field mammograms.

Layout::

    INbreast Release 1.0/
      INbreast.csv    semicolon-separated: Patient ID;Patient age;Laterality;View;
                      Acquisition date;File Name;ACR;Bi-Rads
      AllDICOMs/      <File Name>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm
      AllXML/         <File Name>.xml  (Apple plist: Images -> ROIs -> Name, Point_px)

The sheet is read from ``INbreast.csv`` when present, else from the published
``INbreast.xls`` (first worksheet, same columns; read with ``xlrd``).

Rules (thesis §5.1): BI-RADS 0 is dropped (listed in ``self.skipped``); 1 normal; 2 and 3
benign; 4, 4a, 4b, 4c, 5, 6 malignant; any other value is an error naming the CSV row.
The mask fills the polygons of the ROIs named in option ``roi_names`` (default ``Mass``);
a normal image has an all-zero mask. A benign/malignant image with no such ROI (INbreast
outlines calcification-only findings as points, and ships no XML for some images) gets an
all-zero mask by default, which keeps the thesis's INbreast counts (the builder stores
such a finetuning image with ``has_mask = 0``: classification uses it, segmentation leaves
it out); option ``without_roi: no_mask`` instead marks it ``has_mask=False`` (pretraining
only, when the recipe's finetuning requires masks).
Patient id: ``Patient ID``; where the public sheet says ``removed`` (or is empty), the
patient hash in the DICOM file name, which the images of one patient share. Pixel spacing:
the DICOM header's (the INbreast paper gives 70 µm pixels).
"""

from __future__ import annotations

import csv
import functools
import plistlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from medssl.data.imaging import load_image_and_spacing
from medssl.data.records import Loaded, Record, Skipped
from medssl.data.sources import Source, register_source
from medssl.data.synth.files import Pixels, uid, write_dicom, write_text
from medssl.data.synth.mammography import Mammogram, render_mammogram
from medssl.data.synth.stream import labels_in_order
from medssl.errors import ConfigError, DataError

BIRADS: dict[str, str | None] = {
    "0": None,
    "1": "normal",
    "2": "benign",
    "3": "benign",
    **{v: "malignant" for v in ("4", "4a", "4b", "4c", "5", "6")},
}
_FILE, _BIRADS, _PATIENT = "filename", "birads", "patientid"  # normalised column names
_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)")

Polygon = tuple[tuple[float, float], ...]


def _child(folder: Path, name: str) -> Path | None:
    return next((p for p in sorted(folder.iterdir()) if p.name.lower() == name.lower()), None)


def _is_top(folder: Path) -> bool:
    return _child(folder, "AllDICOMs") is not None and (
        _child(folder, "INbreast.csv") is not None or _child(folder, "INbreast.xls") is not None
    )


@dataclass(frozen=True)
class INbreastOptions:
    roi_names: tuple[str, ...] = ("Mass",)  # the XML ROI names that are lesion masks
    without_roi: str = "empty"  # a lesion image without such ROI: an empty mask, or no mask


@register_source("inbreast")
class INbreast(Source):
    modality = "mg"
    Options = INbreastOptions

    def records(self) -> list[Record]:
        if self.opts.without_roi not in ("empty", "no_mask"):
            raise ConfigError(
                f"inbreast: option without_roi={self.opts.without_roi!r}; valid: 'empty', 'no_mask'"
            )
        top = self.locate(
            _is_top, "an 'INbreast Release 1.0' folder with INbreast.csv and AllDICOMs/"
        )
        sheet = _child(top, "INbreast.csv") or _child(top, "INbreast.xls")
        dicoms: dict[str, list[Path]] = {}
        for p in sorted(_child(top, "AllDICOMs").iterdir()):
            if p.is_file() and p.suffix.lower() == ".dcm":
                dicoms.setdefault(p.name.split("_")[0], []).append(p)
        xml_dir = _child(top, "AllXML")
        out: list[Record] = []
        for row_no, row in self._rows(sheet):
            try:
                record = self._record(row, row_no, sheet, dicoms, xml_dir)
            except DataError as err:
                self.problem(err)
                continue
            if record is not None:
                out.append(record)
        return sorted(out, key=lambda r: r.file)

    def _rows(self, sheet: Path) -> list[tuple[int, dict[str, str]]]:
        lines = _xls_lines(sheet) if sheet.suffix.lower() == ".xls" else _csv_lines(sheet)
        if not lines:
            raise DataError("empty sheet; expected a header row", file=str(sheet))
        header = [_norm(h) for h in lines[0]]
        missing = [
            name for name, key in (("File Name", _FILE), ("Bi-Rads", _BIRADS)) if key not in header
        ]
        if missing:
            raise DataError(
                f"missing column(s) {', '.join(missing)}; expected the semicolon-separated header "
                "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads",
                file=str(sheet),
            )
        rows = []
        for row_no, values in enumerate(lines[1:], start=2):
            if not any(v.strip() for v in values):
                continue
            rows.append((row_no, {h: _cell(v) for h, v in zip(header, values, strict=False)}))
        return rows

    def _record(self, row, row_no: int, sheet: Path, dicoms, xml_dir: Path | None) -> Record | None:
        name = row.get(_FILE, "")
        birads = row.get(_BIRADS, "").lower().replace(" ", "")
        if birads not in BIRADS:
            raise DataError(
                f"Bi-Rads value {row.get(_BIRADS, '')!r} maps to no class; expected one of {', '.join(BIRADS)}",
                file=str(sheet),
                row=row_no,
            )
        found = dicoms.get(name, [])
        if len(found) != 1:
            what = "no DICOM" if not found else f"{len(found)} DICOMs"
            raise DataError(
                f"File Name {name!r}: {what} named {name}_*.dcm in AllDICOMs; expected exactly one",
                file=str(sheet),
                row=row_no,
            )
        dicom = found[0]
        rel = dicom.relative_to(self.root).as_posix()
        label = BIRADS[birads]
        if label is None:
            self.skipped.append(
                Skipped(self.name, rel, "BI-RADS 0 (incomplete assessment): dropped (thesis §5.1)")
            )
            return None
        xml = xml_dir / f"{name}.xml" if xml_dir is not None else None
        polygons: tuple[Polygon, ...] = ()
        if label != "normal" and xml is not None and xml.is_file():
            polygons = read_rois(xml, tuple(self.opts.roi_names))
        has_mask = label == "normal" or bool(polygons) or self.opts.without_roi == "empty"
        patient = row.get(_PATIENT, "")
        if patient.lower() in ("", "removed"):
            parts = dicom.name.split("_")
            patient = parts[1] if len(parts) > 2 else None
        return Record(
            source=self.name,
            file=rel,
            label=label,
            modality=self.modality,
            patient=patient,
            mask_files=(xml.relative_to(self.root).as_posix(),) if polygons else (),
            loader=functools.partial(load_with_polygons, dicom, polygons, with_mask=has_mask),
            has_mask=has_mask,
            extra=(("birads", birads), ("rois", str(len(polygons)))),
        )

    @classmethod
    def write_phantoms(
        cls, root: Path, counts: dict[str, int], stream, *, scale: float = 1.0, birads0: int = 2
    ) -> Path:
        """``INbreast Release 1.0/`` with ``INbreast.csv`` (``;``), ``AllDICOMs/`` (14-bit),
        ``AllXML/`` plists.

        ``birads0`` extra images have BI-RADS 0 (readers drop them). ``Patient ID`` holds the
        patient's hash, the same as in the DICOM file names (the real sheet says "removed").
        The DICOMs carry ``PixelSpacing`` :data:`PHANTOM_SPACING_MM` / ``scale``. Patients
        have 1-4 images.
        """
        spacing = PHANTOM_SPACING_MM / scale
        base = root / "INbreast Release 1.0"
        (base / "AllDICOMs").mkdir(parents=True, exist_ok=True)
        (base / "AllXML").mkdir(parents=True, exist_ok=True)
        items = labels_in_order(counts) + ["zero"] * birads0
        order = [int(j) for j in stream(0).permutation(len(items))]
        rng0 = stream(1)
        names = 20_000_000 + rng0.choice(34_000_000, size=len(items), replace=False)
        rows = []
        k = 0
        while k < len(order):
            members = order[k : k + int(rng0.integers(1, 5))]
            k += len(members)
            hash_ = f"{int(rng0.integers(0, 2**63)):016x}"
            age = str(int(rng0.integers(35, 85)))
            for v, j in enumerate(members):
                label = items[j]
                rng = stream(2, j)
                laterality, view = ("L", "R")[v // 2 % 2], ("CC", "MLO")[v % 2]
                drawn = "benign" if label == "zero" else label
                m = render_mammogram(
                    rng, drawn, scale=scale, bits=14, laterality=laterality, view=view
                )
                birads = (
                    "0"
                    if label == "zero"
                    else str(rng.choice(PHANTOM_BIRADS[label], p=PHANTOM_WEIGHTS[label]))
                )
                file_name = str(names[j])
                ml = "CC" if view == "CC" else "ML"
                dcm = base / "AllDICOMs" / f"{file_name}_{hash_}_MG_{laterality}_{ml}_ANON.dcm"
                pixels = Pixels.draw(rng, m.image, 14, mono1=0.2, rescale=0.3, window=0.4)
                write_dicom(
                    dcm, m.image, pixels, patient_id=hash_, study_uid=uid(*stream.key, hash_),
                    series_uid=uid(*stream.key, file_name, "s"),
                    instance_uid=uid(*stream.key, file_name), laterality=laterality, view=view,
                    spacing=(spacing, spacing),
                )  # fmt: skip
                if m.lesions:
                    xml = _phantom_xml(m, spacing)
                    (base / "AllXML" / f"{file_name}.xml").write_bytes(xml)
                date = f"{2008 + int(rng.integers(0, 3))}{int(rng.integers(1, 13)):02d}"
                rows.append(
                    f"{hash_};{age};{laterality};{view};{date};{file_name};{m.density};{birads}"
                )
        header = "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"
        write_text(base / "INbreast.csv", "\n".join([header, *rows]) + "\n")
        return base


def read_rois(xml: Path, names: tuple[str, ...]) -> tuple[Polygon, ...]:
    """Polygons (x, y in pixels) of the ROIs whose ``Name`` is in ``names`` (any case)."""
    try:
        with open(xml, "rb") as f:
            plist = plistlib.load(f)
    except Exception as err:
        raise DataError(
            f"cannot read the ROI plist ({type(err).__name__}: {err})", file=str(xml)
        ) from None
    wanted = {n.lower() for n in names}
    out: list[Polygon] = []
    images = plist.get("Images", []) if isinstance(plist, dict) else []
    for image in images:
        for roi in image.get("ROIs", []):
            if str(roi.get("Name", "")).strip().lower() not in wanted:
                continue
            points = []
            for text in roi.get("Point_px", []):
                m = _POINT.search(str(text))
                if m is None:
                    raise DataError(f"Point_px entry {text!r} is not '(x, y)'", file=str(xml))
                points.append((float(m.group(1)), float(m.group(2))))
            if points:
                out.append(tuple(points))
    return tuple(out)


def fill_polygons(shape: tuple[int, int], polygons: tuple[Polygon, ...]) -> np.ndarray:
    """(H, W) bool mask with the polygons filled (outline included); 1-2 point ROIs drawn as such."""
    canvas = Image.new("L", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        if len(poly) >= 3:
            draw.polygon(list(poly), fill=255, outline=255)
        elif len(poly) == 2:
            draw.line(list(poly), fill=255)
        else:
            draw.point(list(poly), fill=255)
    return np.asarray(canvas) > 0


def load_with_polygons(
    dicom: Path, polygons: tuple[Polygon, ...], *, with_mask: bool = True
) -> Loaded:
    """image: (H, W) float32 [0, 1]; mask: (H, W) bool from the polygons, or None; spacing
    from the DICOM header."""
    image, spacing = load_image_and_spacing(dicom)
    return Loaded(image, fill_polygons(image.shape, polygons) if with_mask else None, spacing)


def _csv_lines(sheet: Path) -> list[list[str]]:
    try:
        text = sheet.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = sheet.read_text(encoding="latin-1")
    return list(csv.reader(text.splitlines(), delimiter=";"))


def _xls_lines(sheet: Path) -> list[list[str]]:
    """The first worksheet of an Excel 97 workbook as rows of strings (numbers as ``12.0``)."""
    import xlrd

    try:
        book = xlrd.open_workbook(str(sheet), on_demand=True)
        ws = book.sheet_by_index(0)
        return [[str(v) for v in ws.row_values(i)] for i in range(ws.nrows)]
    except (xlrd.XLRDError, OSError, ValueError, AssertionError) as e:
        raise DataError(f"cannot read the Excel sheet ({e})", file=str(sheet)) from e


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _cell(value: str) -> str:
    value = value.strip()
    return value[:-2] if re.fullmatch(r"\d+\.0", value) else value


PHANTOM_SPACING_MM = 0.07
"""INbreast's pixel spacing, 70 µm (Moreira et al. 2012); a phantom at scale s has s times
fewer pixels per side, so its pixels span 0.07 / s mm."""

PHANTOM_BIRADS = {
    "normal": ("1",),
    "benign": ("2", "3"),
    "malignant": ("4a", "4b", "4c", "5", "6"),
}
PHANTOM_WEIGHTS = {
    "normal": (1.0,),
    "benign": (0.9, 0.1),
    "malignant": (0.15, 0.1, 0.2, 0.45, 0.1),
}
"""How often each BI-RADS value of a class appears among the phantoms."""


def _phantom_xml(m: Mammogram, spacing: float) -> bytes:
    """The lesions as an INbreast XML plist: masses as ``Mass`` polygons, calcifications as
    one-point ``Calcification`` ROIs plus a ``Cluster`` polygon (``Point_mm`` at ``spacing``
    mm per pixel)."""

    def pt(x: float, y: float) -> str:
        return f"({x:.4f}, {y:.4f})"

    rois = []

    def roi(name: str, points: np.ndarray) -> None:
        rois.append(
            {
                "Area": float(len(points)),
                "Center": pt(*points.mean(axis=0)),
                "Dev": 0.0,
                "IndexInImage": len(rois),
                "Max": 0.0,
                "Mean": 0.0,
                "Min": 0.0,
                "Name": name,
                "NumberOfPoints": len(points),
                "Point_mm": [pt(x * spacing, y * spacing) for x, y in points],
                "Point_px": [pt(x, y) for x, y in points],
                "Total": 0.0,
                "Type": 19 if len(points) > 1 else 0,
            }
        )

    for lesion in m.lesions:
        if lesion.kind == "mass":
            roi("Mass", lesion.outline.polygon(48))
        else:
            for p in lesion.points:
                roi("Calcification", p[None, :])
            roi("Cluster", lesion.outline.polygon(24))
    doc = {"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": rois}]}
    return plistlib.dumps(doc, fmt=plistlib.FMT_XML)
