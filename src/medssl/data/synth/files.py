"""Phantom files in the publishers' formats, written by the field's libraries.

Rasters (PNG, JPEG, BMP, PGM) through Pillow, DICOM through pydicom, spreadsheets through
openpyxl. Every writer is deterministic: UIDs come from caller-given keys
(``pydicom.uid.generate_uid(entropy_srcs=...)``), no clock is read, and the xlsx timestamps
are fixed, so the same seed gives the same bytes.

Files are written plainly, without a temporary sibling or fsync of their own: a phantom
tree is built in a fresh folder by :func:`medssl.data.phantoms.write_phantom_tree`,
which moves the folder into place whole with a marker that lists its files' count and bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DIGITAL_MAMMOGRAPHY = "1.2.840.10008.5.1.4.1.1.1.2"
"""SOP class: Digital Mammography X-Ray Image Storage - For Presentation."""
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
"""SOP class: Secondary Capture Image Storage (CBIS-DDSM's ROI masks and cropped images)."""
IMPLEMENTATION_VERSION = "MEDSSL_SYNTH"

PNG_COMPRESS_LEVEL = 1
"""zlib level of phantom PNGs (Pillow's default is 6): phantoms are regenerated, not archived."""


def uid(*keys: object) -> str:
    """A deterministic DICOM UID from ``keys``."""
    return generate_uid(entropy_srcs=[str(k) for k in keys])


IMPLEMENTATION_UID = uid("medssl", "synth")


def _parent(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def save_image(path: Path, array: np.ndarray, fmt: str = "PNG") -> Path:
    """Write ``array`` (H, W) or (H, W, 3) uint8 (bool: 0 / 255 grey) as ``fmt`` (PNG, JPEG,
    BMP, PPM for PGM files) with Pillow."""
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    options: dict[str, Any] = {}
    if fmt == "PNG":
        options["compress_level"] = PNG_COMPRESS_LEVEL
    elif fmt == "JPEG":
        options["quality"] = 92
    Image.fromarray(array).save(_parent(path), format=fmt, **options)
    return Path(path)


def save_mask(path: Path, mask: np.ndarray) -> Path:
    """A mask as the publishers ship it: an 8-bit grey PNG, 0 background / 255 lesion."""
    return save_image(path, np.asarray(mask, dtype=bool))


@dataclass(frozen=True)
class Pixels:
    """How to store an image: ``bits`` stored (8..16); MONOCHROME1 stores ``max - value``;
    ``rescale`` (slope, intercept) stores ``(value - intercept) / slope``; ``window``
    (center, width) is written as a VOI window."""

    bits: int
    monochrome1: bool = False
    rescale: tuple[float, float] | None = None
    window: tuple[float, float] | None = None

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        image: np.ndarray,
        bits: int,
        *,
        mono1: float,
        rescale: float,
        window: float,
    ) -> Pixels:
        """Storage drawn at random, as publishers' DICOMs vary: MONOCHROME1, a rescale and a VOI
        window (around the tissue's 1st-99.5th percentiles) on the given shares of images."""
        top = 2**bits - 1
        resc = None
        if rng.random() < rescale:
            resc = (1.0, 0.0) if rng.random() < 0.5 else (2.0, 0.0)
        win = None
        if rng.random() < window:
            tissue = image[image > 0.05 * top]
            lo, hi = np.percentile(tissue, [1, 99.5]) if tissue.size else (0, top)
            win = ((lo + hi) / 2, max(1.0, hi - lo))
        return cls(bits, monochrome1=rng.random() < mono1, rescale=resc, window=win)

    def stored(self, image: np.ndarray) -> np.ndarray:
        """(H, W) display values (high = bright) -> the stored uint8 / uint16 values."""
        top = 2**self.bits - 1
        values = image.astype(np.float32)
        if self.rescale is not None:
            slope, intercept = self.rescale
            values = (values - np.float32(intercept)) / np.float32(slope)
        stored = np.clip(np.rint(values), 0, top).astype(np.uint8 if self.bits <= 8 else np.uint16)
        return top - stored if self.monochrome1 else stored


def write_dicom(
    path: Path,
    image: np.ndarray,
    pixels: Pixels,
    *,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    instance_uid: str,
    series_description: str = "",
    laterality: str = "",
    view: str = "",
    modality: str = "MG",
    sop_class: str = DIGITAL_MAMMOGRAPHY,
    date: str = "20160720",
    spacing: tuple[float, float] | None = None,
) -> Path:
    """Write ``image`` (H, W) integer values in [0, 2**bits - 1] (high = bright) as a DICOM
    Part 10 file (explicit-VR little endian) with pydicom.

    ``spacing``: (row, column) mm per pixel, written as ``PixelSpacing`` when given.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = instance_uid
    ds.StudyDate = date
    ds.Modality = modality
    ds.SeriesDescription = series_description
    ds.PatientName = ds.PatientID = patient_id
    if view:
        ds.ViewPosition = view
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = ds.InstanceNumber = 1
    if laterality:
        ds.ImageLaterality = laterality
    photometric = "MONOCHROME1" if pixels.monochrome1 else "MONOCHROME2"
    ds.set_pixel_data(pixels.stored(image), photometric, pixels.bits, generate_instance_uid=False)
    if spacing is not None:
        ds.PixelSpacing = [f"{v:.6g}" for v in spacing]
    if pixels.window is not None:
        ds.WindowCenter, ds.WindowWidth = f"{pixels.window[0]:.1f}", f"{pixels.window[1]:.1f}"
    if pixels.rescale is not None:
        ds.RescaleIntercept, ds.RescaleSlope = f"{pixels.rescale[1]:g}", f"{pixels.rescale[0]:g}"
        ds.RescaleType = "US"  # unspecified units
    ds.save_as(_parent(path), enforce_file_format=True)
    return Path(path)


def write_xlsx(
    path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]], *, title: str
) -> Path:
    """One worksheet ``title`` with a header row and ``rows`` (missing cells empty), its
    timestamps fixed so that the same rows give the same bytes."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(list(columns))
    for row in rows:
        ws.append([row.get(c, "") for c in columns])
    buf = io.BytesIO()
    wb.save(buf)
    # openpyxl stamps the current time into docProps/core.xml and the zip entries: fix both
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(_parent(path), "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2023-12-15T00:00:00Z", data)
            stamp = zipfile.ZipInfo(info.filename, date_time=(2023, 12, 15, 0, 0, 0))
            dst.writestr(stamp, data, zipfile.ZIP_DEFLATED)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """A text file (UTF-8, ``\\n`` line ends)."""
    _parent(path).write_text(text, encoding="utf-8", newline="\n")
    return Path(path)
