"""Source readers on tiny hand-made miniatures of each published layout: label rules, masks,
patients, corner cases and bad input (strict error naming file/row, or lenient skip)."""

from __future__ import annotations

import csv
import plistlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medssl.data.records import CLASSES
from medssl.data.sources import SOURCES, Source, open_source, register_source
from medssl.errors import ConfigError, DataError

H, W = 12, 10


def png(path: Path, value: int = 100, shape=(H, W), rgb: bool = False, box=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full(shape, value, np.uint8)
    if box is not None:
        arr[:] = 0
        arr[box] = 255
    Image.fromarray(np.stack([arr] * 3, -1) if rgb else arr).save(path)
    return path


def dicom(
    path: Path,
    pixels: np.ndarray,
    bits: int = 16,
    photometric: str = "MONOCHROME2",
    spacing: tuple[float, float] | None = None,
) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    arr = np.asarray(pixels).astype(np.uint8 if bits <= 8 else np.uint16)
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = (
        arr.itemsize * 8,
        bits,
        bits - 1,
        0,
    )
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    ds.PixelData = arr.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def labels(records) -> dict[str, str]:
    return {r.file: r.label for r in records}


def test_registry_holds_every_source():
    from medssl.data.sources import _import_all  # open_source imports every reader module

    _import_all()
    assert set(SOURCES.names()) >= {
        "busi", "breast_lesions_usg", "class_folder", "qamebi", "tbud", "mbud", "cbis_ddsm", "inbreast", "mini_mias",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="valid names"):
        open_source("nope", ".")


# --- BUSI ---------------------------------------------------------------------------------


def make_busi(tmp: Path) -> Path:
    top = tmp / "Dataset_BUSI_with_GT"
    png(top / "benign" / "benign (1).png", rgb=True)
    png(top / "benign" / "benign (1)_mask.png", box=(slice(2, 5), slice(2, 5)))
    png(top / "benign" / "benign (2).png")
    png(top / "benign" / "benign (2)_mask.png", box=(slice(0, 2), slice(0, 2)))
    png(top / "benign" / "benign (2)_mask_1.png", box=(slice(8, 10), slice(8, 10)))
    png(top / "malignant" / "malignant (1).png")
    png(top / "malignant" / "malignant (1)_mask.png", box=(slice(1, 9), slice(1, 3)))
    png(top / "normal" / "normal (1).png")
    png(top / "normal" / "normal (1)_mask.png", box=(slice(0, 0), slice(0, 0)))
    return top


def test_busi_records_and_multi_mask_exclude(tmp_path):
    top = make_busi(tmp_path)
    for root in (top, tmp_path):  # the parent holding exactly the one top folder works too
        recs = open_source("busi", root).records()
        assert [Path(r.file).name for r in recs] == [
            "benign (1).png",
            "benign (2).png",
            "malignant (1).png",
            "normal (1).png",
        ]
    by = {Path(r.file).name: r for r in recs}
    assert by["benign (2).png"].multi_mask and not by["benign (2).png"].has_mask
    assert by["benign (2).png"].load().mask is None
    assert by["benign (1).png"].has_mask and by["benign (1).png"].load().mask.sum() == 9
    assert by["normal (1).png"].load().mask.sum() == 0
    assert all(r.patient is None and r.modality == "us" for r in recs)


def test_busi_multi_mask_union(tmp_path):
    recs = open_source("busi", make_busi(tmp_path), multi_mask="union").records()
    rec = next(r for r in recs if r.file.endswith("benign (2).png"))
    assert rec.has_mask and rec.multi_mask and rec.load().mask.sum() == 8
    with pytest.raises(ConfigError, match="multi_mask"):
        open_source("busi", tmp_path, multi_mask="first").records()
    with pytest.raises(ConfigError, match="unknown option"):
        open_source("busi", tmp_path, nope=1)


def test_source_options_are_typed_with_preset_defaults(tmp_path):
    """Options are each source's frozen Options dataclass: a preset's values over its defaults,
    a user's over the preset's; a mistyped value or a preset with an unknown option is a
    ConfigError naming the source."""
    qamebi = open_source("qamebi", tmp_path)
    assert qamebi.opts == SOURCES.get("class_folder").Options(masks="required")
    assert open_source("qamebi", tmp_path, masks="optional").opts.masks == "optional"
    assert SOURCES.get("mbud").options().masks == "none"
    assert open_source("inbreast", tmp_path, roi_names=["Mass", "Cluster"]).opts.roi_names == (
        "Mass",
        "Cluster",
    )
    with pytest.raises(ConfigError, match=r"mini_mias options.circles_as_masks: expected bool"):
        open_source("mini_mias", tmp_path, circles_as_masks="yes")
    with pytest.raises(
        ConfigError, match=r"nope: unknown option\(s\) \['maks'\]; valid: \['classes'"
    ):
        register_source("nope", maks="none")(SOURCES.get("class_folder"))
    assert "nope" not in SOURCES.names()
    with pytest.raises(TypeError, match="declare reader options as `Options`"):
        type("OldStyle", (Source,), {"options": {"masks": "none"}})


def test_busi_images_and_mask_subfolders(tmp_path):
    top = tmp_path / "BUSI"
    png(top / "Benign" / "images" / "benign (1).png")
    png(top / "Benign" / "mask" / "benign (1).png", box=(slice(0, 3), slice(0, 3)))
    png(top / "Malignant" / "images" / "malignant (1).png")
    png(top / "Malignant" / "mask" / "malignant (1)_mask.png", box=(slice(0, 1), slice(0, 1)))
    recs = open_source("busi", top).records()
    assert labels(recs) == {
        "Benign/images/benign (1).png": "benign",
        "Malignant/images/malignant (1).png": "malignant",
    }
    assert [r.load().mask.sum() for r in recs] == [9, 1]


def test_busi_bad_input(tmp_path):
    top = make_busi(tmp_path)
    (top / "malignant" / "malignant (1)_mask.png").unlink()
    png(top / "unknown" / "x.png")
    with pytest.raises(DataError, match="unknown"):
        open_source("busi", top).records()
    src = open_source("busi", top, lenient=True)
    recs = src.records()
    assert len(recs) == 3
    reasons = " | ".join(s.reason for s in src.skipped)
    assert "maps to no class" in reasons and "without its mask" in reasons
    # mask size differs from image: detected when the loader runs, naming both files
    png(top / "benign" / "benign (1)_mask.png", shape=(H + 1, W))
    rec = next(
        r
        for r in open_source("busi", top, lenient=True).records()
        if r.file.endswith("benign (1).png")
    )
    with pytest.raises(
        DataError, match=r"benign \(1\)_mask\.png.*benign \(1\)\.png|benign \(1\)\.png.*_mask"
    ):
        rec.load()


def test_truncated_png_fails_at_load(tmp_path):
    top = make_busi(tmp_path)
    path = top / "malignant" / "malignant (1).png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    recs = open_source("busi", top).records()  # layout is fine; pixels fail later
    rec = next(r for r in recs if r.file.endswith("malignant (1).png"))
    with pytest.raises(DataError, match="malignant"):
        rec.load()


# --- BrEaST-Lesions_USG -------------------------------------------------------------------

BREAST_HEADER = [
    "CaseID",
    "Image_filename",
    "Mask_tumor_filename",
    "Mask_other_filename",
    "Classification",
]
BREAST_ROWS = [
    [1, "case001.png", "case001_tumor.png", "case001_other1.png", "benign"],
    [2, "case002.png", "case002_tumor.png", None, "malignant"],
    [3, "case003.png", None, None, "normal"],
]


def make_breast(tmp: Path, rows=BREAST_ROWS, header=BREAST_HEADER, fmt: str = "xlsx") -> Path:
    top = tmp / "BrEaST-Lesions_USG-images_and_masks"
    png(top / "case001.png", rgb=True)
    png(top / "case001_tumor.png", box=(slice(0, 2), slice(0, 3)))
    png(top / "case001_other1.png", box=(slice(5, 9), slice(5, 9)))
    png(top / "case002.png")
    png(top / "case002_tumor.png", box=(slice(3, 4), slice(3, 4)))
    png(top / "case003.png")
    name = "BrEaST-Lesions-USG-clinical-data-Dec-15-2023"
    if fmt == "xlsx":
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(header)
        for row in rows:
            ws.append(row)
        wb.save(top / f"{name}.xlsx")
    else:
        with open(top / f"{name}.csv", "w", newline="") as f:
            w = csv.writer(f, delimiter=";")
            w.writerow(header)
            w.writerows([["" if v is None else v for v in row] for row in rows])
    return top


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_breast_lesions_usg(tmp_path, fmt):
    top = make_breast(tmp_path, fmt=fmt)
    recs = open_source("breast_lesions_usg", tmp_path).records()
    assert labels(recs) == {
        f"{top.name}/case001.png": "benign",
        f"{top.name}/case002.png": "malignant",
        f"{top.name}/case003.png": "normal",
    }
    assert [r.patient for r in recs] == ["1", "2", "3"]
    assert [r.load().mask.sum() for r in recs] == [6, 1, 0]  # the _other1 mask is ignored
    assert all("other" not in f for r in recs for f in r.mask_files)


def test_breast_bad_input(tmp_path):
    rows = [*BREAST_ROWS, [4, "case004.png", "case004_tumor.png", None, "suspicious"]]
    make_breast(tmp_path, rows=rows)
    with pytest.raises(DataError, match=r"row 5.*suspicious|suspicious"):
        open_source("breast_lesions_usg", tmp_path).records()
    src = open_source("breast_lesions_usg", tmp_path, lenient=True)
    assert len(src.records()) == 3 and "maps to no class" in src.skipped[0].reason
    (tmp_path / "BrEaST-Lesions_USG-images_and_masks" / "case002_tumor.png").unlink()
    with pytest.raises(DataError, match="without its required mask"):
        open_source("breast_lesions_usg", tmp_path).records()


def test_breast_missing_column(tmp_path):
    header = ["CaseID", "Image_filename", "Mask_tumor_filename", "Mask_other_filename", "Diagnosis"]
    make_breast(tmp_path, header=header, fmt="csv")
    with pytest.raises(DataError, match="Classification") as info:
        open_source("breast_lesions_usg", tmp_path).records()
    assert "clinical-data" in str(info.value)


# --- class folders ------------------------------------------------------------------------


def test_class_folder_presets_and_mask_patterns(tmp_path):
    root = tmp_path / "QAMEBI"
    png(root / "BENIGN" / "b1.png")
    png(root / "BENIGN" / "b1_mask.png", box=(slice(0, 2), slice(0, 2)))
    png(root / "BENIGN" / "b2.bmp")
    png(root / "BENIGN" / "b2_seg.png", box=(slice(0, 1), slice(0, 3)))
    png(root / "Malignant" / "m1.png")
    png(root / "Malignant" / "masks" / "m1.png", box=(slice(0, 5), slice(0, 1)))
    png(root / "normal" / "n1.png")
    recs = open_source("qamebi", root).records()
    assert labels(recs) == {
        "BENIGN/b1.png": "benign", "BENIGN/b2.bmp": "benign", "Malignant/m1.png": "malignant", "normal/n1.png": "normal",
    }  # fmt: skip
    assert [r.load().mask.sum() for r in recs] == [4, 3, 5, 0]
    assert all(r.has_mask for r in recs)
    mbud = open_source("mbud", root).records()
    assert len(mbud) == 4 and not any(r.has_mask for r in mbud) and mbud[0].load().mask is None
    assert open_source("mbud", root).name == "mbud" and recs[0].source == "qamebi"


def test_class_folder_unknown_folder_and_class_map(tmp_path):
    png(tmp_path / "Benign" / "a.png")
    png(tmp_path / "Bening" / "b.png")  # misspelt folder
    with pytest.raises(DataError, match="Bening"):
        open_source("mbud", tmp_path).records()
    src = open_source("mbud", tmp_path, lenient=True)
    assert len(src.records()) == 1 and len(src.skipped) == 1
    mapped = open_source(
        "class_folder", tmp_path, classes={"benign": "benign", "bening": "benign"}
    ).records()
    assert len(mapped) == 2
    with pytest.raises(ConfigError):
        open_source("class_folder", tmp_path, classes={"benign": "cancer"}).records()


def test_class_folder_required_mask_missing(tmp_path):
    png(tmp_path / "Malignant" / "m1.png")
    with pytest.raises(DataError, match="without its required mask"):
        open_source("qamebi", tmp_path).records()
    assert open_source("qamebi", tmp_path, lenient=True).records() == []
    assert not open_source("tbud", tmp_path).records()[0].has_mask


# --- CBIS-DDSM ----------------------------------------------------------------------------

CBIS_COLS = ["patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
             "abnormality type", "pathology", "image file path", "cropped image file path", "ROI mask file path"]  # fmt: skip


def cbis_row(patient, side, view, n, pathology, kind="Mass", split="Training"):
    full = f"{kind}-{split}_{patient}_{side}_{view}"
    roi = f"{full}_{n}"
    return {
        "patient_id": patient, "breast_density": "2", "left or right breast": side, "image view": view,
        "abnormality id": str(n), "abnormality type": kind.lower(), "pathology": pathology,
        "image file path": f"{full}/1.2.3/1.2.4/000000.dcm",
        "cropped image file path": f"{roi}/1.2.5/1.2.6/000000.dcm",
        "ROI mask file path": f"{roi}/1.2.5/1.2.6/000001.dcm",
    }  # fmt: skip


def make_cbis(tmp: Path, rows) -> Path:
    top = tmp / "CBIS"
    tree = top / "CBIS-DDSM"
    for r in rows:
        full = r["image file path"].split("/")[0]
        roi = r["ROI mask file path"].split("/")[0]
        # TCIA names differ from the CSV's (other uids, 1-1.dcm): resolved by the first component
        if not (tree / full).exists():
            dicom(
                tree / full / "9.9" / "9.8" / "1-1.dcm",
                np.arange(H * W).reshape(H, W) * 100,
                bits=16,
            )
        mask = np.zeros((H, W), np.uint8)
        n = int(r["abnormality id"])
        mask[n, : n + 1] = 255
        dicom(tree / roi / "9.7" / "9.6" / "1-1.dcm", np.full((4, 3), 200), bits=8)  # the crop
        dicom(tree / roi / "9.7" / "9.6" / "1-2.dcm", mask, bits=8)  # the ROI mask
    kinds = {"Mass": "mass", "Calc": "calc"}
    for kind, prefix in kinds.items():
        for split, name in (("Training", "train"), ("Test", "test")):
            chosen = [r for r in rows if r["image file path"].startswith(f"{kind}-{split}")]
            with open(top / f"{prefix}_case_description_{name}_set.csv", "w", newline="") as f:
                w = csv.DictWriter(f, CBIS_COLS)
                w.writeheader()
                w.writerows(chosen)
    return top


def test_cbis_ddsm_grouping_labels_masks(tmp_path):
    rows = [
        cbis_row("P_00001", "LEFT", "CC", 1, "MALIGNANT"),
        cbis_row("P_00001", "LEFT", "CC", 2, "MALIGNANT"),
        cbis_row("P_00002", "RIGHT", "MLO", 1, "BENIGN"),
        cbis_row("P_00002", "RIGHT", "MLO", 2, "BENIGN_WITHOUT_CALLBACK"),
        cbis_row("P_00003", "LEFT", "MLO", 1, "BENIGN", kind="Calc", split="Test"),
        cbis_row("P_00003", "LEFT", "MLO", 2, "MALIGNANT", kind="Calc", split="Test"),
        cbis_row("P_00004", "LEFT", "CC", 3, "BENIGN_WITHOUT_CALLBACK"),
    ]
    top = make_cbis(tmp_path, rows)
    src = open_source("cbis_ddsm", tmp_path)
    recs = src.records()
    assert [(r.patient, r.label) for r in recs] == [
        ("P_00001", "malignant"),
        ("P_00002", "benign"),
        ("P_00004", "benign"),
    ]
    assert (
        len(src.skipped) == 1
        and "disagree" in src.skipped[0].reason
        and "P_00003" in src.skipped[0].reason
    )
    loaded = recs[0].load()
    assert loaded.image.shape == loaded.mask.shape == (H, W)
    assert loaded.mask.sum() == 2 + 3  # union of ROI 1 (row 1, 2 px) and ROI 2 (row 2, 3 px)
    assert loaded.image.max() <= 1 and loaded.image.min() >= 0
    thesis = open_source("cbis_ddsm", top, bwc_as="normal")
    recs = thesis.records()
    assert [(r.patient, r.label) for r in recs] == [("P_00001", "malignant"), ("P_00004", "normal")]
    assert recs[1].load().mask.sum() == 0
    # the thesis mapping's "normal" still shows its finding: never a finetuning normal
    assert [r.normal_with_finding for r in recs] == [False, True]
    assert not any(r.normal_with_finding for r in open_source("cbis_ddsm", top).records())
    assert {s.reason.split()[0] for s in thesis.skipped} == {
        "P_00002/RIGHT/MLO",
        "P_00003/LEFT/MLO",
    }


def test_cbis_ddsm_bad_input(tmp_path):
    rows = [
        cbis_row("P_00001", "LEFT", "CC", 1, "MALIGNANT"),
        cbis_row("P_00002", "LEFT", "CC", 1, "UNKNOWN"),
    ]
    top = make_cbis(tmp_path, rows)
    with pytest.raises(DataError, match=r"mass_case_description_train_set.csv \(row 3\).*UNKNOWN"):
        open_source("cbis_ddsm", top).records()
    src = open_source("cbis_ddsm", top, lenient=True)
    assert len(src.records()) == 1 and "maps to no class" in src.skipped[0].reason
    # the ROI mask of the wrong size: detected at load
    import shutil

    roi = top / "CBIS-DDSM" / "Mass-Training_P_00001_LEFT_CC_1"
    shutil.rmtree(roi)
    dicom(roi / "a" / "b" / "1-1.dcm", np.zeros((H + 2, W)), bits=8)
    rec = src.records()[0]
    with pytest.raises(DataError, match="no ROI mask DICOM of the image's size"):
        rec.load()
    shutil.rmtree(roi)
    with pytest.raises(DataError, match="without its required mask"):
        open_source("cbis_ddsm", top).records()
    # a CSV missing a column
    path = top / "mass_case_description_train_set.csv"
    text = path.read_text().replace("pathology", "diagnosis")
    path.write_text(text)
    with pytest.raises(DataError, match="missing column.*pathology"):
        open_source("cbis_ddsm", top).records()


# --- INbreast -----------------------------------------------------------------------------


def make_inbreast(tmp: Path, rows: list[tuple[str, str, str]]) -> Path:
    """rows: (patient id, file name, bi-rads)."""
    top = tmp / "INbreast Release 1.0"
    (top / "AllXML").mkdir(parents=True)
    lines = ["Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"]
    for patient, name, birads in rows:
        lines.append(f"{patient};55;L;CC;201001;{name};2;{birads}")
        dicom(
            top / "AllDICOMs" / f"{name}_abcd{patient}_MG_L_CC_ANON.dcm",
            np.full((H, W), 3000),
            bits=14,
            photometric="MONOCHROME1",
            spacing=(0.07, 0.07),
        )
        roi = {"Name": "Mass", "Point_px": ["(1.0, 1.0)", "(6.0, 1.0)", "(6.0, 4.0)", "(1.0, 4.0)"]}
        calc = {"Name": "Calcification", "Point_px": ["(8, 9)"]}
        with open(top / "AllXML" / f"{name}.xml", "wb") as f:
            plistlib.dump({"Images": [{"ImageIndex": 0, "ROIs": [roi, calc]}]}, f)
    (top / "INbreast.csv").write_text("\n".join(lines) + "\n")
    return top


def test_inbreast_birads_and_masks(tmp_path):
    rows = [
        ("1", "100", "1"),
        ("1", "101", "2"),
        ("2", "102", "4c"),
        ("2", "103", "0"),
        ("3", "104", "3"),
        ("removed", "105", "6"),
    ]
    top = make_inbreast(tmp_path, rows)
    src = open_source("inbreast", tmp_path)
    recs = src.records()
    got = {r.file.split("/")[-1].split("_")[0]: (r.label, r.patient) for r in recs}
    assert got == {
        "100": ("normal", "1"),
        "101": ("benign", "1"),
        "102": ("malignant", "2"),
        "104": ("benign", "3"),
        "105": ("malignant", "abcdremoved"),
    }
    assert len(src.skipped) == 1 and "BI-RADS 0" in src.skipped[0].reason
    by = {r.file.split("/")[-1].split("_")[0]: r for r in recs}
    mask = by["102"].load().mask
    assert mask.sum() == 6 * 4 and mask[1:5, 1:7].all()  # the filled Mass polygon, outline included
    assert by["100"].load().mask.sum() == 0
    image = by["102"].load().image
    assert abs(float(image.mean()) - (1 - 3000 / (2**14 - 1))) < 1e-5  # MONOCHROME1 inverted
    assert by["102"].load().spacing == pytest.approx((0.07, 0.07))  # from the DICOM header
    with_calc = open_source("inbreast", top, roi_names=("Mass", "Calcification")).records()
    assert next(r for r in with_calc if "102_" in r.file).load().mask.sum() == 6 * 4 + 1


def test_inbreast_without_roi_policy(tmp_path):
    top = make_inbreast(tmp_path, [("1", "100", "2")])
    (top / "AllXML" / "100.xml").unlink()
    rec = open_source("inbreast", top).records()[0]
    assert rec.has_mask and rec.load().mask.sum() == 0
    rec = open_source("inbreast", top, without_roi="no_mask").records()[0]
    assert not rec.has_mask and rec.load().mask is None


def test_inbreast_bad_input(tmp_path):
    top = make_inbreast(tmp_path, [("1", "100", "2"), ("1", "101", "7")])
    with pytest.raises(DataError, match=r"INbreast.csv \(row 3\).*'7'"):
        open_source("inbreast", top).records()
    src = open_source("inbreast", top, lenient=True)
    assert len(src.records()) == 1 and len(src.skipped) == 1
    # a DICOM without pixels
    from pydicom import dcmread

    path = next((top / "AllDICOMs").glob("100_*"))
    ds = dcmread(path)
    del ds.PixelData
    ds.save_as(path)
    with pytest.raises(DataError, match="no pixel data"):
        src.records()[0].load()
    (top / "INbreast.csv").write_text("Patient ID;File Name\n1;100\n")
    with pytest.raises(DataError, match="missing column.*Bi-Rads"):
        open_source("inbreast", top).records()


# --- mini-MIAS ----------------------------------------------------------------------------

MIAS_INFO = """\
MIAS database reference list
mdb001 G CIRC B 535 425 197
mdb002 G CIRC B 522 280 69
mdb003 D NORM
mdb004 D NORM
mdb005 F CALC B 477 133 30
mdb005 F CALC M 500 168 26
mdb006 F SPIC M *NOTE 3*
"""


def make_mias(tmp: Path) -> Path:
    top = tmp / "all-mias"
    top.mkdir(parents=True)
    for i in range(1, 7):
        Image.fromarray(np.full((16, 16), 40 * i, np.uint8)).save(top / f"mdb{i:03d}.pgm")
    (top / "Info.txt").write_text(MIAS_INFO)
    return top


def test_mini_mias(tmp_path):
    from medssl.data.sources.mini_mias import circle_mask, circles

    make_mias(tmp_path)
    recs = open_source("mini_mias", tmp_path).records()
    assert [(r.file.split("/")[-1], r.label, r.patient) for r in recs] == [
        ("mdb001.pgm", "benign", "001"), ("mdb002.pgm", "benign", "001"), ("mdb003.pgm", "normal", "002"),
        ("mdb004.pgm", "normal", "002"), ("mdb005.pgm", "malignant", "003"), ("mdb006.pgm", "malignant", "003"),
    ]  # fmt: skip
    assert not any(r.has_mask for r in recs) and recs[0].load().mask is None
    assert circles(recs[0]) == [(535, 1024 - 425, 197)]
    assert circles(recs[4]) == [(477, 1024 - 133, 30), (500, 1024 - 168, 26)]
    assert circles(recs[5]) == [] and circles(recs[2]) == []
    assert abs(float(recs[1].load().image.mean()) - 80 / 255) < 1e-6
    m = circle_mask((1024, 1024), circles(recs[0]))
    assert m[599, 535] and not m[425, 535 + 198]


def test_mini_mias_bad_rows(tmp_path):
    top = make_mias(tmp_path)
    (top / "Info.txt").write_text(MIAS_INFO + "mdb007 F CIRC\n")
    with pytest.raises(DataError, match=r"Info.txt \(row 9\).*severity"):
        open_source("mini_mias", top).records()
    src = open_source("mini_mias", top, lenient=True)
    assert len(src.records()) == 6 and len(src.skipped) == 1


def test_missing_root_and_wrong_layout(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_source("busi", tmp_path / "nope")
    for name in ("busi", "breast_lesions_usg", "qamebi", "cbis_ddsm", "inbreast", "mini_mias"):
        with pytest.raises(DataError, match="expected"):
            open_source(name, tmp_path).records()


@pytest.mark.parametrize("name", ["busi", "qamebi"])
def test_labels_valid_and_sorted(tmp_path, name):
    root = make_busi(tmp_path) if name == "busi" else tmp_path
    if name == "qamebi":
        png(root / "Benign" / "a.png")
        png(root / "Benign" / "a_mask.png")
    recs = open_source(name, root).records()
    assert all(r.label in CLASSES for r in recs)
    assert [r.file for r in recs] == sorted(r.file for r in recs)


def csv_to_xls(top: Path) -> None:
    """Replace INbreast.csv by the published INbreast.xls form: numbers stored as numbers."""
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    ws = book.add_sheet("Sheet1")
    lines = (top / "INbreast.csv").read_text().splitlines()
    for i, line in enumerate(lines):
        for j, value in enumerate(line.split(";")):
            ws.write(i, j, float(value) if value.isdigit() else value)
    book.save(str(top / "INbreast.xls"))
    (top / "INbreast.csv").unlink()


def test_inbreast_reads_the_published_xls(tmp_path):
    rows = [("1", "100", "1"), ("2", "102", "4c"), ("2", "103", "0"), ("3", "104", "3")]
    top = make_inbreast(tmp_path, rows)
    from_csv = [(r.file, r.label, r.patient) for r in open_source("inbreast", top).records()]
    csv_to_xls(top)
    src = open_source("inbreast", top)
    from_xls = [(r.file, r.label, r.patient) for r in src.records()]
    assert from_xls == from_csv and len(from_xls) == 3  # 12.0 cells read as "12", BI-RADS 0 dropped
    assert len(src.skipped) == 1 and "BI-RADS 0" in src.skipped[0].reason


def test_inbreast_corrupt_xls_names_the_file(tmp_path):
    top = make_inbreast(tmp_path, [("1", "100", "2")])
    (top / "INbreast.csv").unlink()
    (top / "INbreast.xls").write_bytes(b"not an excel file")
    with pytest.raises(DataError, match=r"INbreast.xls.*cannot read the Excel sheet"):
        open_source("inbreast", top).records()


def test_cbis_missing_full_image_names_row(tmp_path):
    import shutil

    top = make_cbis(tmp_path, [cbis_row("P_00001", "LEFT", "CC", 1, "MALIGNANT")])
    shutil.rmtree(top / "CBIS-DDSM" / "Mass-Training_P_00001_LEFT_CC")
    with pytest.raises(DataError, match=r"row 2.*no DICOM"):
        open_source("cbis_ddsm", top).records()
