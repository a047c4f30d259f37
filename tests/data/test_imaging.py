"""Image/DICOM loading: formats, bit depths, DICOM display chain, mask binarisation, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medssl.data.imaging import (
    check_same_size,
    image_shape,
    load_image,
    load_image_and_masks,
    load_image_and_spacing,
    load_mask,
)
from medssl.errors import DataError


def write_dicom(
    path: Path,
    pixels: np.ndarray | None,
    *,
    bits: int = 16,
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    voi_lut: np.ndarray | None = None,
    signed: bool = False,
    **header: object,
) -> Path:
    """A minimal valid DICOM (Explicit VR Little Endian); ``pixels=None`` writes no pixel data."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MG"
    ds.PatientID = "P1"
    for keyword, value in header.items():  # e.g. PixelSpacing=[0.07, 0.07]
        setattr(ds, keyword, value)
    if pixels is not None:
        allocated = 8 if bits <= 8 else 16
        dtype = {8: np.uint8, 16: np.uint16}[allocated]
        if signed:
            dtype = {8: np.int8, 16: np.int16}[allocated]
        arr = np.asarray(pixels).astype(dtype)
        ds.Rows, ds.Columns = arr.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = allocated
        ds.BitsStored = bits
        ds.HighBit = bits - 1
        ds.PixelRepresentation = 1 if signed else 0
        ds.PixelData = arr.tobytes()
        if window is not None:
            ds.WindowCenter, ds.WindowWidth = window
        if rescale is not None:
            ds.RescaleSlope, ds.RescaleIntercept = rescale
        if voi_lut is not None:
            item = Dataset()
            item.LUTDescriptor = [len(voi_lut), 0, 8]
            item.add_new(0x00283006, "US", [int(v) for v in voi_lut])  # LUTData
            ds.VOILUTSequence = [item]
    ds.save_as(path, enforce_file_format=True)
    return path


# --- raster formats -----------------------------------------------------------------------


def test_png_grey_rgb_rgba_palette(tmp_path):
    grey = np.array([[0, 255], [128, 64]], dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "l.png")
    Image.fromarray(np.stack([grey] * 3, -1)).save(tmp_path / "rgb.png")
    rgba = np.concatenate([np.stack([grey] * 3, -1), np.full((2, 2, 1), 7, np.uint8)], -1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(grey).convert("P").save(tmp_path / "p.png")
    expected = grey / 255.0
    for name in ("l.png", "rgb.png", "rgba.png", "p.png"):
        img = load_image(tmp_path / name)
        assert img.dtype == np.float32 and img.shape == (2, 2), name
        np.testing.assert_allclose(img, expected, atol=1 / 255 + 1e-6, err_msg=name)


def test_jpg_bmp_pgm_tiff(tmp_path):
    grey = np.full((8, 6), 200, dtype=np.uint8)
    for name in ("a.jpg", "a.bmp", "a.pgm", "a.tif"):
        Image.fromarray(grey).save(tmp_path / name)
        img = load_image(tmp_path / name)
        assert img.shape == (8, 6)
        assert abs(float(img.mean()) - 200 / 255) < 0.02, name


def test_16bit_png_and_tiff(tmp_path):
    arr = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "a.png")
    Image.fromarray(arr).save(tmp_path / "a.tif")
    for name in ("a.png", "a.tif"):
        img = load_image(tmp_path / name)
        np.testing.assert_allclose(img, arr / 65535.0, atol=1e-6, err_msg=name)


def test_rgb_colour_to_luma(tmp_path):
    rgb = np.zeros((1, 1, 3), np.uint8)
    rgb[..., 0] = 255  # pure red: luma 0.299
    Image.fromarray(rgb).save(tmp_path / "red.png")
    assert abs(float(load_image(tmp_path / "red.png")[0, 0]) - 0.299) < 0.01


# --- DICOM --------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 12, 14, 16])
def test_dicom_bit_depth_scaled_by_bits_stored(tmp_path, bits):
    top = 2**bits - 1
    arr = np.array([[0, top], [top // 2, 0]])
    img = load_image(write_dicom(tmp_path / "a.dcm", arr, bits=bits))
    assert img.dtype == np.float32
    np.testing.assert_allclose(img, arr / top, atol=1e-6)


def test_dicom_monochrome1_is_inverted(tmp_path):
    arr = np.array([[0, 4095]])
    mono1 = load_image(write_dicom(tmp_path / "m1.dcm", arr, bits=12, photometric="MONOCHROME1"))
    np.testing.assert_allclose(mono1, [[1.0, 0.0]], atol=1e-6)


def test_dicom_window_applied(tmp_path):
    # window centre 1000, width 200 over 12-bit data: below 900 -> 0, above 1100 -> 1
    arr = np.array([[0, 900, 1000, 1100, 4095]])
    img = load_image(write_dicom(tmp_path / "w.dcm", arr, bits=12, window=(1000, 200)))
    assert img[0, 0] == 0.0 and img[0, -1] == 1.0
    assert abs(float(img[0, 2]) - 0.5) < 0.01
    assert np.all(np.diff(img[0]) >= 0)


def test_dicom_rescale_slope_intercept(tmp_path):
    arr = np.array([[0, 255]])
    img = load_image(write_dicom(tmp_path / "r.dcm", arr, bits=8, rescale=(2.0, -100.0)))
    np.testing.assert_allclose(img, [[0.0, 1.0]], atol=1e-6)


def test_dicom_voi_lut_sequence(tmp_path):
    lut = np.array([255, 128, 0, 0])  # inverts the first entries, 8-bit output
    arr = np.array([[0, 1, 2, 3]])
    img = load_image(write_dicom(tmp_path / "v.dcm", arr, bits=8, voi_lut=lut))
    np.testing.assert_allclose(img, [[1.0, 128 / 255, 0.0, 0.0]], atol=1e-6)


def test_dicom_without_pixels_is_data_error(tmp_path):
    path = write_dicom(tmp_path / "nopix.dcm", None)
    with pytest.raises(DataError, match="no pixel data") as info:
        load_image(path)
    assert "nopix.dcm" in str(info.value)


def test_truncated_dicom_is_data_error(tmp_path):
    path = write_dicom(tmp_path / "t.dcm", np.arange(400).reshape(20, 20), bits=16)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 300])
    with pytest.raises(DataError, match="t.dcm"):
        load_image(path)


def test_dicom_without_suffix_detected_by_magic(tmp_path):
    path = write_dicom(tmp_path / "000000", np.array([[0, 255]]), bits=8)
    np.testing.assert_allclose(load_image(path), [[0.0, 1.0]])
    assert image_shape(path) == (1, 2)


# --- masks --------------------------------------------------------------------------------


def test_mask_modes_binarised(tmp_path):
    m = np.array([[0, 255], [100, 200]], dtype=np.uint8)
    expected = m > 127
    Image.fromarray(m).save(tmp_path / "l.png")
    Image.fromarray(m > 127).save(tmp_path / "one.png")  # mode "1"
    Image.fromarray(np.stack([m] * 3, -1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([m] * 4, -1)).save(tmp_path / "rgba.png")
    Image.fromarray(m.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "one.png").mode == "1"
    for name in ("l.png", "one.png", "rgb.png", "rgba.png", "sixteen.png"):
        mask = load_mask(tmp_path / name)
        assert mask.dtype == bool
        np.testing.assert_array_equal(mask, expected, err_msg=name)


def test_zero_one_label_map_mask_is_not_empty(tmp_path):
    Image.fromarray(np.array([[0, 1]], np.uint8)).save(tmp_path / "m.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png"), [[False, True]])


def test_dicom_mask(tmp_path):
    path = write_dicom(tmp_path / "roi.dcm", np.array([[0, 255], [255, 0]]), bits=8)
    np.testing.assert_array_equal(load_mask(path), [[False, True], [True, False]])


def test_load_image_and_masks_union_and_size_check(tmp_path):
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "img.png")
    a = np.zeros((4, 5), np.uint8)
    a[0, 0] = 255
    b = np.zeros((4, 5), np.uint8)
    b[3, 4] = 255
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    loaded = load_image_and_masks(tmp_path / "img.png", [tmp_path / "a.png", tmp_path / "b.png"])
    assert loaded.mask.sum() == 2 and loaded.mask[0, 0] and loaded.mask[3, 4]
    assert load_image_and_masks(tmp_path / "img.png", []).mask.sum() == 0
    assert load_image_and_masks(tmp_path / "img.png", [], with_mask=False).mask is None
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"big\.png.*img\.png|img\.png.*big\.png"):
        load_image_and_masks(tmp_path / "img.png", [tmp_path / "big.png"])
    with pytest.raises(DataError):
        check_same_size(np.zeros((2, 2)), np.zeros((2, 3), bool), Path("i.png"), Path("m.png"))


# --- pixel spacing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header, expected",
    [
        ({"PixelSpacing": [0.07, 0.07]}, (0.07, 0.07)),
        ({"PixelSpacing": [0.1, 0.05]}, (0.1, 0.05)),  # (row, column), as DICOM orders them
        ({"ImagerPixelSpacing": [0.094, 0.094]}, (0.094, 0.094)),
        ({"PixelSpacing": [0.085, 0.085], "ImagerPixelSpacing": [0.094, 0.094]}, (0.085, 0.085)),
        ({"PixelSpacing": "0.2"}, (0.2, 0.2)),  # one value: isotropic
        ({}, None),
    ],
)
def test_dicom_pixel_spacing(tmp_path, header, expected):
    path = write_dicom(tmp_path / "a.dcm", np.zeros((3, 4)), bits=12, **header)
    image, spacing = load_image_and_spacing(path)
    assert image.shape == (3, 4)
    assert spacing == (pytest.approx(expected) if expected else None)
    assert load_image_and_masks(path, []).spacing == spacing


def test_raster_has_no_spacing_and_bad_spacing_names_the_file(tmp_path):
    Image.fromarray(np.zeros((3, 4), np.uint8)).save(tmp_path / "a.png")
    assert load_image_and_spacing(tmp_path / "a.png")[1] is None
    assert load_image_and_masks(tmp_path / "a.png", []).spacing is None
    bad = write_dicom(tmp_path / "bad.dcm", np.zeros((3, 4)), PixelSpacing=[0.1, 0.0])
    with pytest.raises(DataError, match=r"bad\.dcm.*PixelSpacing|PixelSpacing.*bad\.dcm"):
        load_image_and_spacing(bad)


# --- bad files ----------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found") as info:
        load_image(tmp_path / "nope.png")
    assert "nope.png" in str(info.value)


def test_truncated_png(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t.png"):
        load_image(tmp_path / "t.png")
    with pytest.raises(DataError, match="t.png"):
        load_mask(tmp_path / "t.png")


def test_garbage_and_unsupported(tmp_path):
    (tmp_path / "g.png").write_bytes(b"this is not an image at all")
    with pytest.raises(DataError, match="g.png"):
        load_image(tmp_path / "g.png")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="unsupported"):
        load_image(tmp_path / "x.txt")
    (tmp_path / "bad.dcm").write_bytes(b"\0" * 50)
    with pytest.raises(DataError, match="bad.dcm"):
        load_image(tmp_path / "bad.dcm")
