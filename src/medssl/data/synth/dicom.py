"""Writing phantom mammograms as valid DICOM files, byte-identical for a given input.

UIDs are derived from caller-given keys (``pydicom.uid.generate_uid(entropy_srcs=...)``), and
no clock is read, so the same seed gives the same bytes.

The files are encoded here rather than through ``pydicom.Dataset.save_as``: a phantom DICOM
is a fixed list of about 25 elements in explicit-VR little endian (DICOM PS3.5 §7.1.2, PS3.10
§7.1), and pydicom spends ~0.1 ms of Python per element writing them, ~3 ms a file, which
was a quarter of all phantom writing (CBIS-DDSM writes three DICOMs an image). pydicom stays
the reader, and the tests check every file against the same dataset built and written by
pydicom (``tests/test_synth.py``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medssl.artifacts import write_staged

DIGITAL_MAMMOGRAPHY = (
    "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage - For Presentation
)
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
IMPLEMENTATION_VERSION = "MEDSSL_SYNTH"


def uid(*keys: object) -> str:
    """A deterministic DICOM UID from ``keys``."""
    return generate_uid(entropy_srcs=[str(k) for k in keys])


IMPLEMENTATION_UID = uid("medssl", "synth")


@dataclass(frozen=True)
class Pixels:
    """How to store an image: ``bits`` stored (8..16); MONOCHROME1 stores ``max - value``;
    ``rescale`` (slope, intercept) stores ``(value - intercept) / slope``; ``window``
    (center, width) is written as a VOI window."""

    bits: int
    monochrome1: bool = False
    rescale: tuple[float, float] | None = None
    window: tuple[float, float] | None = None


def write_dicom(path: Path, image: np.ndarray, pixels: Pixels, **header: Any) -> Path:
    """Write ``image`` (H, W) integer values in [0, 2**bits - 1] (high = bright) to ``path``,
    with the ``header`` keywords of :func:`dicom_elements` (written plainly, as every phantom
    file: see :func:`~medssl.data.synth.write_phantoms`)."""
    return write_staged(path, dicom_bytes(image, pixels, **header))


def dicom_elements(
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
) -> tuple[list[tuple[int, str, object]], list[tuple[int, str, object]]]:
    """(file meta, dataset): ``(tag, VR, value)`` triples in tag order, as :func:`write_dicom` stores them.

    ``spacing``: (row, column) mm per pixel, written as ``PixelSpacing`` when given.
    Values are ``str``, ``int`` (VR US, IS) or ``bytes`` (OB, OW).
    """
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
    stored = np.ascontiguousarray(stored, dtype=np.dtype(dtype).newbyteorder("<"))
    rows, cols = stored.shape
    meta = [
        (0x00020001, "OB", b"\x00\x01"),
        (0x00020002, "UI", sop_class),
        (0x00020003, "UI", instance_uid),
        (0x00020010, "UI", ExplicitVRLittleEndian),
        (0x00020012, "UI", IMPLEMENTATION_UID),
        (0x00020013, "SH", IMPLEMENTATION_VERSION),
    ]
    ds: list[tuple[int, str, object]] = [
        (0x00080016, "UI", sop_class),
        (0x00080018, "UI", instance_uid),
        (0x00080020, "DA", date),
        (0x00080060, "CS", modality),
        (0x0008103E, "LO", series_description),
        (0x00100010, "PN", patient_id),
        (0x00100020, "LO", patient_id),
    ]
    if view:
        ds.append((0x00185101, "CS", view))  # ViewPosition
    ds += [
        (0x0020000D, "UI", study_uid),
        (0x0020000E, "UI", series_uid),
        (0x00200011, "IS", 1),  # SeriesNumber
        (0x00200013, "IS", 1),  # InstanceNumber
    ]
    if laterality:
        ds.append((0x00200062, "CS", laterality))  # ImageLaterality
    ds += [
        (0x00280002, "US", 1),  # SamplesPerPixel
        (0x00280004, "CS", "MONOCHROME1" if pixels.monochrome1 else "MONOCHROME2"),
        (0x00280010, "US", rows),
        (0x00280011, "US", cols),
    ]
    if spacing is not None:
        ds.append((0x00280030, "DS", "\\".join(f"{v:.6g}" for v in spacing)))  # PixelSpacing
    ds += [
        (0x00280100, "US", 8 * stored.itemsize),  # BitsAllocated
        (0x00280101, "US", pixels.bits),  # BitsStored
        (0x00280102, "US", pixels.bits - 1),  # HighBit
        (0x00280103, "US", 0),  # PixelRepresentation: unsigned
    ]
    if pixels.window is not None:
        ds += [
            (0x00281050, "DS", f"{pixels.window[0]:.1f}"),  # WindowCenter
            (0x00281051, "DS", f"{pixels.window[1]:.1f}"),  # WindowWidth
        ]
    if pixels.rescale is not None:
        ds += [
            (0x00281052, "DS", f"{pixels.rescale[1]:g}"),  # RescaleIntercept
            (0x00281053, "DS", f"{pixels.rescale[0]:g}"),  # RescaleSlope
            (0x00281054, "LO", "US"),  # RescaleType: unspecified
        ]
    ds.append((0x7FE00010, "OB" if stored.itemsize == 1 else "OW", stored.tobytes()))
    return meta, ds


def dicom_bytes(image: np.ndarray, pixels: Pixels, **header: Any) -> bytes:
    """The DICOM file (Part 10: preamble, ``DICM``, file meta, explicit-VR little-endian dataset)."""
    meta, ds = dicom_elements(image, pixels, **header)
    group = b"".join(_element(*e) for e in meta)
    parts = [bytes(128), b"DICM", _element(0x00020000, "UL", len(group)), group]
    parts += [_element(*e) for e in ds]
    return b"".join(parts)


_LONG_LENGTH = frozenset({"OB", "OD", "OF", "OL", "OW", "SQ", "UC", "UN", "UR", "UT"})
"""VRs with a 2-byte reserved field and a 4-byte length (PS3.5 §7.1.2)."""


def _element(tag: int, vr: str, value: object) -> bytes:
    """One explicit-VR little-endian data element."""
    if vr == "US":
        data = struct.pack("<H", value)
    elif vr == "UL":
        data = struct.pack("<I", value)
    elif isinstance(value, bytes):
        data = value
    else:
        data = str(value).encode("ascii")
    if len(data) % 2:  # values have even length: UIs and binary pad with NUL, text with a space
        data += b"\x00" if vr in ("UI", "OB") else b" "
    head = struct.pack("<HH2s", tag >> 16, tag & 0xFFFF, vr.encode())
    if vr in _LONG_LENGTH:
        return head + struct.pack("<2xI", len(data)) + data
    return head + struct.pack("<H", len(data)) + data
