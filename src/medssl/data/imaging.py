"""Image and DICOM loading: every source's pixels become float32 grey in [0, 1], high = bright.

Raster files (PNG, JPEG, BMP, PGM, TIFF) are read with Pillow, DICOM with pydicom. Colour,
alpha and palette images become grey (ITU-R 601 luma, Pillow's ``convert("L")``); 16-bit
greys are scaled by 65535. DICOM pixels go through the standard display chain (DICOM PS3.4
N.2): Modality LUT / rescale slope+intercept, then the VOI LUT or window when the file has
one, then ``MONOCHROME1`` inversion, and are scaled by the output range that chain implies
(``BitsStored`` for 8/12/14/16-bit data, the LUT's bit depth for a VOI LUT).

Masks are binarised with ``> 127`` on the 8-bit grey scale (mode ``1``, ``L``, ``RGB``,
``RGBA``, palette); 16-bit masks whose values exceed 255 are thresholded at half range, and a
mask holding only the values 0 and 1 is taken as is (label-map style), so such a mask is
never read as empty.

Pixel spacing (:func:`dicom_spacing`) is read from a DICOM's ``PixelSpacing`` (0028,0030),
else its ``ImagerPixelSpacing`` (0018,1164); raster files carry none.

Every failure raises :class:`medssl.errors.DataError` naming the file and what is wrong.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medssl.data.records import Loaded
from medssl.errors import DataError

RASTER_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff")
DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom")
IMAGE_SUFFIXES: tuple[str, ...] = RASTER_SUFFIXES + DICOM_SUFFIXES


def is_dicom(path: str | Path) -> bool:
    """True when ``path`` ends in .dcm/.dicom or carries the ``DICM`` magic at byte 128."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def load_image(path: str | Path) -> np.ndarray:
    """Read one image as grey.

    Returns: (H, W) float32 in [0, 1], high = bright (MONOCHROME1 DICOMs inverted).
    Raises DataError for a missing, truncated, corrupt or unsupported file, or a DICOM
    without pixel data.
    """
    return load_image_and_spacing(path)[0]


def load_image_and_spacing(path: str | Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    """:func:`load_image` and the image's pixel spacing: (row, column) mm per pixel of a
    DICOM that carries one (:func:`dicom_spacing`), ``None`` for raster files and DICOMs
    without one."""
    path = _existing(path)
    if is_dicom(path):
        ds = _read_dicom(path)
        return _dicom_grey(path, ds), dicom_spacing(ds, path)
    return _raster_grey(path), None


def dicom_spacing(ds, path: str | Path) -> tuple[float, float] | None:
    """(row, column) spacing in mm between pixel centres, or ``None`` when the header has none.

    ``PixelSpacing`` (0028,0030) first: the spacing in the patient where the image was
    calibrated; else ``ImagerPixelSpacing`` (0018,1164): the spacing at the detector, which
    for a projection mammogram exceeds the spacing in the breast by the geometric
    magnification (PS3.3 §10.7.1). A single value is read as isotropic spacing. Raises
    DataError naming the file when the value is not one or two positive numbers.
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        values = [value] if isinstance(value, (int, float, str)) else list(value)
        try:
            numbers = [float(v) for v in values]
        except (TypeError, ValueError):
            numbers = []
        if len(numbers) == 1:
            numbers *= 2
        if len(numbers) != 2 or not all(np.isfinite(v) and v > 0 for v in numbers):
            raise DataError(
                f"{keyword} {value!r} is not a row\\column spacing in mm (one or two positive "
                "numbers)",
                file=str(path),
            )
        return numbers[0], numbers[1]
    return None


def load_mask(path: str | Path) -> np.ndarray:
    """Read one lesion mask (raster or DICOM).

    Returns: (H, W) bool, True = lesion. See the module docstring for the binarisation rule.
    """
    path = _existing(path)
    if is_dicom(path):
        ds = _read_dicom(path)
        values = _dicom_pixels(path, ds)
        if values.ndim == 3:
            values = values.mean(axis=-1)
        return _binarise(values, path)
    with _open_raster(path) as img:
        if img.mode == "1":
            return np.asarray(img, dtype=bool).copy()
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            return _binarise(np.asarray(img), path)
        return _binarise(np.asarray(img.convert("L")), path)


def image_shape(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image or DICOM, read from its header only (no pixel decoding)."""
    path = _existing(path)
    if is_dicom(path):
        ds = _read_dicom(path, stop_before_pixels=True)
        try:
            return int(ds.Rows), int(ds.Columns)
        except AttributeError:
            raise DataError(
                "DICOM has no Rows/Columns; it holds no image", file=str(path)
            ) from None
    try:
        with Image.open(path) as img:
            width, height = img.size
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"cannot read the image header ({err})", file=str(path)) from None
    return height, width


def check_same_size(image: np.ndarray, mask: np.ndarray, image_file: Path, mask_file: Path) -> None:
    """Raise DataError naming both files when ``mask.shape != image.shape`` (both (H, W))."""
    if mask.shape != image.shape:
        raise DataError(
            f"mask {mask_file} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image is "
            f"{image.shape[1]}x{image.shape[0]}; a mask must have its image's size",
            file=str(image_file),
        )


def load_image_and_masks(
    image_file: Path, mask_files: Sequence[Path] = (), *, with_mask: bool = True
) -> Loaded:
    """The loader most readers use: an image and the union of its masks.

    ``with_mask=False`` gives ``Loaded(image, None)``. With no mask files, the mask is all
    zero (a normal image). Every mask must have the image's size.
    image: (H, W) float32 [0, 1]; mask: (H, W) bool or None.
    """
    image, spacing = load_image_and_spacing(image_file)
    if not with_mask:
        return Loaded(image, None, spacing)
    mask = np.zeros(image.shape, dtype=bool)
    for mask_file in mask_files:
        m = load_mask(mask_file)
        check_same_size(image, m, image_file, mask_file)
        mask |= m
    return Loaded(image, mask, spacing)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found (or not a file)", file=str(path))
    suffix = path.suffix.lower()
    if suffix and suffix not in IMAGE_SUFFIXES and not is_dicom(path):
        raise DataError(
            f"unsupported image format {suffix!r}; expected one of {', '.join(IMAGE_SUFFIXES)}",
            file=str(path),
        )
    return path


def _open_raster(path: Path) -> Image.Image:
    """Open and fully decode a raster image (first frame), turning every failure into DataError."""
    try:
        img = Image.open(path)
        img.load()  # decode now: truncated or corrupt data fails here, not later
    except UnidentifiedImageError:
        raise DataError(
            "not a readable image (corrupt, or not PNG/JPEG/BMP/PGM/TIFF)", file=str(path)
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"corrupt or truncated image ({err})", file=str(path)) from None
    return img


def _raster_grey(path: Path) -> np.ndarray:
    with _open_raster(path) as img:
        mode = img.mode
        if mode in ("I;16", "I;16B", "I;16L"):
            return (np.asarray(img, dtype=np.float32) / 65535.0).astype(np.float32)
        if mode == "I":  # 32-bit int container, e.g. a 16-bit PGM or PNG
            arr = np.asarray(img, dtype=np.float64)
            top = 65535.0 if arr.min() >= 0 and arr.max() <= 65535 else None
            return _scale(arr, 0.0 if top else None, top)
        if mode == "F":
            arr = np.asarray(img, dtype=np.float64)
            inside = arr.min() >= 0 and arr.max() <= 1
            return _scale(arr, 0.0 if inside else None, 1.0 if inside else None)
        if mode == "P":
            img = img.convert("RGBA")
        if img.mode != "L":
            img = img.convert("L")
        return np.asarray(img, dtype=np.float32) / np.float32(255.0)


def _scale(arr: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
    """Map [lo, hi] to [0, 1] (clipped); ``None`` bounds use the array's own min/max."""
    lo = float(arr.min()) if lo is None else lo
    hi = float(arr.max()) if hi is None else hi
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.float32)
    return np.clip((arr - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _read_dicom(path: Path, *, stop_before_pixels: bool = False):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        pass
    except Exception as err:  # pydicom raises many types for damaged files
        raise DataError(f"corrupt DICOM ({type(err).__name__}: {err})", file=str(path)) from None
    # Some exporters omit the 128-byte preamble; accept those only if they describe an image.
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=stop_before_pixels, force=True)
    except Exception as err:
        raise DataError(f"not a DICOM file ({type(err).__name__}: {err})", file=str(path)) from None
    if "Rows" not in ds:
        raise DataError("not a DICOM image file (no DICM preamble, no Rows)", file=str(path))
    return ds


def _dicom_pixels(path: Path, ds) -> np.ndarray:
    """Stored values of the first frame: (H, W), or (H, W, 3) for colour."""
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise DataError(
            "DICOM has no pixel data (a header-only or structured-report file); expected an image",
            file=str(path),
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except Exception as err:  # truncated data, missing decoder plugin, bad attributes
        raise DataError(
            f"cannot decode DICOM pixel data ({type(err).__name__}: {err}); "
            "the file may be truncated or use a compression with no installed decoder",
            file=str(path),
        ) from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[0]
    return np.asarray(arr)


def _dicom_grey(path: Path, ds) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    stored = _dicom_pixels(path, ds)
    if stored.ndim == 3:  # colour DICOM (pydicom gives RGB): luma, already display-ready
        grey = stored[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        top = 2 ** int(ds.get("BitsStored", 8)) - 1
        return _scale(grey, 0.0, float(top))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = apply_modality_lut(stored, ds)
            lo, hi = _modality_range(ds)
            if ds.get("VOILUTSequence"):
                values = apply_voi_lut(values, ds, index=0)
                depth = int(ds.VOILUTSequence[0].LUTDescriptor[2])
                lo, hi = 0.0, float(2**depth - 1)
            elif "WindowCenter" in ds and "WindowWidth" in ds:
                values = apply_voi_lut(values, ds, index=0)  # window output spans [lo, hi]
    except DataError:
        raise
    except Exception as err:
        raise DataError(
            f"cannot apply the DICOM modality/VOI LUT ({type(err).__name__}: {err})", file=str(path)
        ) from None
    grey = _scale(np.asarray(values, dtype=np.float64), lo, hi)
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip() == "MONOCHROME1":
        grey = 1.0 - grey  # MONOCHROME1: the minimum is white; we display high = bright
    return grey.astype(np.float32)


def _modality_range(ds) -> tuple[float, float]:
    """Output range of the Modality LUT stage (as pydicom's ``apply_windowing`` computes it)."""
    if ds.get("ModalityLUTSequence"):
        depth = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**depth - 1)
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 0:
        lo, hi = 0.0, float(2**bits - 1)
    else:
        lo, hi = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    lo, hi = lo * slope + intercept, hi * slope + intercept
    return min(lo, hi), max(lo, hi)


def _binarise(values: np.ndarray, path: Path) -> np.ndarray:
    """(H, W) grey mask values -> bool (see module docstring)."""
    if values.ndim != 2:
        raise DataError(f"mask has shape {values.shape}; expected a 2-D image", file=str(path))
    top = float(values.max()) if values.size else 0.0
    if top <= 1.0 and float(values.min()) >= 0.0:
        return values > 0.5  # 0/1 label map (or 0/1 floats)
    if top <= 255.0:
        return values > 127
    return values > 32767
