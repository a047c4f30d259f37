"""Writing phantom mammograms as valid DICOM files (pydicom), byte-identical for a given input.

UIDs are derived from caller-given keys (``pydicom.uid.generate_uid(entropy_srcs=...)``), and
no clock is read, so the same seed gives the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medssl.artifacts import write_staged

DIGITAL_MAMMOGRAPHY = (
    "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage - For Presentation
)
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def uid(*keys: object) -> str:
    """A deterministic DICOM UID from ``keys``."""
    return generate_uid(entropy_srcs=[str(k) for k in keys])


@dataclass(frozen=True)
class Pixels:
    """How to store an image: ``bits`` stored (8..16); MONOCHROME1 stores ``max - value``;
    ``rescale`` (slope, intercept) stores ``(value - intercept) / slope``; ``window``
    (center, width) is written as a VOI window."""

    bits: int
    monochrome1: bool = False
    rescale: tuple[float, float] | None = None
    window: tuple[float, float] | None = None


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
) -> Path:
    """Write ``image`` (H, W) integer values in [0, 2**bits - 1] (high = bright) to ``path`` (written plainly, as every phantom file: see :func:`~medssl.data.synth.write_phantoms`)."""
    top = 2**pixels.bits - 1
    dtype = np.uint8 if pixels.bits <= 8 else np.uint16
    if pixels.rescale is not None:
        slope, intercept = pixels.rescale
        values = np.rint((image.astype(np.float32) - np.float32(intercept)) / np.float32(slope))
    elif np.issubdtype(image.dtype, np.integer):
        values = image  # integers in range need no rounding: skip the float round trip
    else:
        values = np.rint(image)
    stored = np.clip(values, 0, top).astype(dtype)
    if pixels.monochrome1:
        stored = top - stored
    stored = np.ascontiguousarray(stored)

    # every value below is known valid (the readers' tests read them back); pydicom's
    # per-value checks would cost a third of a small file's write
    with config.disable_value_validation():
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = instance_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = uid("medssl", "synth")
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = sop_class
        ds.SOPInstanceUID = instance_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.Modality = modality
        ds.PatientID = patient_id
        ds.PatientName = patient_id
        ds.StudyDate = date
        ds.SeriesDescription = series_description
        ds.SeriesNumber = 1
        ds.InstanceNumber = 1
        if laterality:
            ds.ImageLaterality = laterality
        if view:
            ds.ViewPosition = view
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME1" if pixels.monochrome1 else "MONOCHROME2"
        ds.Rows, ds.Columns = stored.shape
        ds.BitsAllocated = 8 if dtype is np.uint8 else 16
        ds.BitsStored = pixels.bits
        ds.HighBit = pixels.bits - 1
        ds.PixelRepresentation = 0
        if pixels.rescale is not None:
            ds.RescaleSlope = f"{pixels.rescale[0]:g}"
            ds.RescaleIntercept = f"{pixels.rescale[1]:g}"
            ds.RescaleType = "US"
        if pixels.window is not None:
            ds.WindowCenter = f"{pixels.window[0]:.1f}"
            ds.WindowWidth = f"{pixels.window[1]:.1f}"
        ds.PixelData = stored.tobytes()
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
    return write_staged(path, buf.getvalue())
