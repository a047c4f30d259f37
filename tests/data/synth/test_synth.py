"""Synthetic phantoms: determinism, the real on-disk layouts, DICOM validity, class statistics."""

from __future__ import annotations

import csv
import hashlib
import plistlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from medssl.data.phantoms import phantom_writers, write_phantoms, write_source
from medssl.data.sources import SOURCES
from medssl.data.synth import generate_mammogram, generate_ultrasound, render_mammogram
from medssl.errors import ConfigError

TINY = {
    "busi": {"normal": 2, "benign": 3, "malignant": 3},
    "breast_lesions_usg": {"normal": 2, "benign": 2, "malignant": 2},
    "qamebi": {"normal": 1, "benign": 3, "malignant": 3},
    "tbud": {"benign": 2, "malignant": 2},
    "mbud": {"benign": 2, "malignant": 2},
    "cbis_ddsm": {"benign": 4, "malignant": 3},
    "inbreast": {"normal": 2, "benign": 3, "malignant": 3},
    "mini_mias": {"normal": 2, "benign": 1, "malignant": 1},
}
SCALE = 0.15


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("phantoms")
    return out, write_phantoms(out, TINY, seed=3, scale=SCALE)


def test_every_layout_is_written(phantoms):
    _, roots = phantoms
    assert set(roots) == set(TINY) == set(phantom_writers()) - {"class_folder", "csv"}
    for name, root in roots.items():
        assert root.is_dir(), name
    assert set(phantom_writers()) == set(SOURCES.names())  # every source writes phantoms


def test_same_seed_same_bytes_other_seed_differs(phantoms, tmp_path):
    out, _ = phantoms
    counts = {k: TINY[k] for k in ("busi", "breast_lesions_usg", "cbis_ddsm", "inbreast")}
    write_phantoms(tmp_path / "a", counts, seed=3, scale=SCALE)
    for name in counts:
        assert _tree_digest(tmp_path / "a" / name) == _tree_digest(out / name), name
    other = write_phantoms(tmp_path / "b", {"busi": TINY["busi"]}, seed=4, scale=SCALE)
    assert _tree_digest(other["busi"]) != _tree_digest(out / "busi" / "Dataset_BUSI_with_GT")


def test_generators_are_pure_functions_of_the_rng():
    a = generate_ultrasound(np.random.default_rng(5), "malignant")
    b = generate_ultrasound(np.random.default_rng(5), "malignant")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = generate_mammogram(np.random.default_rng(5), "benign", scale=SCALE)
    d = generate_mammogram(np.random.default_rng(5), "benign", scale=SCALE)
    assert c[1] == d[1] and np.array_equal(c[0], d[0]) and np.array_equal(c[2], d[2])


def test_ultrasound_images_and_masks():
    sizes = set()
    for i, label in enumerate(["normal", "benign", "malignant"] * 4):
        rgb, mask = generate_ultrasound(np.random.default_rng(i), label)
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert mask.dtype == bool and mask.shape == rgb.shape[:2]
        assert 310 <= rgb.shape[0] <= 719 and 190 <= rgb.shape[1] <= 1048
        assert (label == "normal") == (not mask.any())
        sizes.add(rgb.shape)
    assert len(sizes) > 6


def _orientation_share(label: str, n: int = 40) -> float:
    """Share of lesions wider than tall (bounding box)."""
    wide = 0
    for i in range(n):
        _, mask = generate_ultrasound(np.random.default_rng([11, i]), label, size=(200, 260))
        rows, cols = np.nonzero(mask)
        wide += (cols.max() - cols.min()) > (rows.max() - rows.min())
    return wide / n


def test_ultrasound_class_shapes_overlap_but_differ():
    benign_wide = _orientation_share("benign")
    malignant_wide = _orientation_share("malignant")
    assert 0.6 <= benign_wide < 1.0  # mostly wider-than-tall, a minority breaks the rule
    assert 0.0 < malignant_wide <= 0.4  # mostly taller-than-wide


def test_mammogram_bits_and_mask():
    seen_bits = set()
    for i, label in enumerate(["normal", "benign", "malignant"] * 3):
        image, bits, mask = generate_mammogram(np.random.default_rng(i), label, scale=SCALE)
        seen_bits.add(bits)
        assert image.dtype == np.uint16 and image.max() <= 2**bits - 1
        assert mask.shape == image.shape
        assert 0.55 <= image.shape[1] / image.shape[0] <= 0.85
        assert (label == "normal") == (not mask.any())
        assert (image == 0).mean() > 0.05  # black background around the breast
    assert len(seen_bits) > 1


def test_left_breast_is_the_mirror_of_the_right():
    left = render_mammogram(np.random.default_rng(2), "malignant", scale=SCALE, laterality="L")
    right = render_mammogram(np.random.default_rng(2), "malignant", scale=SCALE, laterality="R")
    a, b = left.mask(), right.mask()[:, ::-1]
    assert a.any() and (a != b).sum() <= 0.02 * a.sum()


def _grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def test_busi_layout(phantoms):
    _, roots = phantoms
    root = roots["busi"]
    assert root.name == "Dataset_BUSI_with_GT"
    for cls in ("benign", "malignant", "normal"):
        images = sorted(p for p in (root / cls).glob("*.png") if "_mask" not in p.name)
        assert len(images) == TINY["busi"][cls]
        for img in images:
            assert Image.open(img).mode == "RGB"
            mask_file = img.with_name(img.stem + "_mask.png")
            mask = Image.open(mask_file)
            assert mask.mode == "L" and mask.size == Image.open(img).size
            values = set(np.unique(np.asarray(mask)).tolist())
            assert values <= {0, 255}
            assert (cls == "normal") == (values == {0})


def test_busi_multi_masks(tmp_path):
    root = write_source("busi", tmp_path, {"benign": 6}, seed=0, scale=SCALE, multi_mask=0.5)
    extra = sorted((root / "benign").glob("*_mask_1.png"))
    assert extra
    first = extra[0].with_name(extra[0].name.replace("_mask_1", "_mask"))
    assert first.is_file()


def test_breast_lesions_usg_layout(phantoms):
    from openpyxl import load_workbook

    _, roots = phantoms
    root = roots["breast_lesions_usg"]
    (sheet,) = root.glob("BrEaST-Lesions-USG-clinical-data-*.xlsx")
    rows = list(load_workbook(sheet, read_only=True).active.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    for col in ("CaseID", "Image_filename", "Mask_tumor_filename", "Classification"):
        assert col in header
    recs = [dict(zip(header, r, strict=True)) for r in body]
    assert sorted(r["Classification"] for r in recs) == sorted(
        c for c, n in TINY["breast_lesions_usg"].items() for _ in range(n)
    )
    for r in recs:
        image = root / r["Image_filename"]
        assert image.is_file() and image.name.startswith("case")
        if r["Classification"] != "normal":
            assert r["Mask_tumor_filename"] == image.stem + "_tumor.png"
            assert _grey(root / r["Mask_tumor_filename"]).shape == _grey(image).shape
            assert _grey(root / r["Mask_tumor_filename"]).max() == 255
        elif r["Mask_tumor_filename"]:
            assert _grey(root / r["Mask_tumor_filename"]).max() == 0


@pytest.mark.parametrize("name", ["qamebi", "tbud", "mbud"])
def test_class_folder_layouts(phantoms, name):
    _, roots = phantoms
    root = roots[name]
    for cls, n in TINY[name].items():
        folder = root / cls.capitalize()
        images = [p for p in folder.iterdir() if "_mask" not in p.stem]
        assert len(images) == n
        assert {p.suffix for p in images} <= {".png", ".jpg", ".bmp"}
        for img in images:
            mask = img.with_name(img.stem + "_mask.png")
            assert mask.is_file() == (name != "mbud")
            if mask.is_file():
                assert _grey(mask).shape == _grey(img).shape


def test_cbis_ddsm_layout(phantoms):
    _, roots = phantoms
    root = roots["cbis_ddsm"]
    required = {
        "patient_id", "left or right breast", "image view", "abnormality id", "abnormality type",
        "pathology", "image file path", "cropped image file path", "ROI mask file path",
    }  # fmt: skip
    rows = []
    for kind in ("mass", "calc"):
        for split in ("train", "test"):
            with open(root / f"{kind}_case_description_{split}_set.csv", newline="") as f:
                reader = csv.DictReader(f)
                assert required <= set(reader.fieldnames)
                rows += list(reader)
    images: dict[str, set[str]] = {}
    for r in rows:
        assert r["patient_id"].startswith("P_") and r["pathology"] in {
            "BENIGN",
            "MALIGNANT",
            "BENIGN_WITHOUT_CALLBACK",
        }
        images.setdefault(r["image file path"], set()).add(
            r["pathology"].replace("_WITHOUT_CALLBACK", "")
        )
        roi_folder = root / "CBIS-DDSM" / r["ROI mask file path"].strip().split("/")[0]
        assert list(roi_folder.rglob("*.dcm")), roi_folder
    agree = [p for p in images.values() if len(p) == 1]
    assert len(agree) == sum(TINY["cbis_ddsm"].values())
    assert len(images) - len(agree) == 2  # the disagreeing extras
    assert len(rows) > len(images)  # several abnormality rows on some images
    # the CSV names 000000.dcm; on disk the first path component resolves it
    some = next(iter(images))
    assert some.endswith("000000.dcm")
    full = list((root / "CBIS-DDSM" / some.split("/")[0]).rglob("*.dcm"))
    assert len(full) == 1 and full[0].name == "1-1.dcm"
    ds = pydicom.dcmread(full[0])
    assert ds.pixel_array.shape == (ds.Rows, ds.Columns)


def test_mammography_dicoms_read_back(phantoms):
    _, roots = phantoms
    photometric, bits = set(), set()
    for name in ("cbis_ddsm", "inbreast"):
        for path in roots[name].rglob("*.dcm"):
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
            assert pixels.shape == (ds.Rows, ds.Columns)
            assert int(pixels.max()) <= 2**ds.BitsStored - 1
            photometric.add(ds.PhotometricInterpretation)
            bits.add(int(ds.BitsStored))
    assert photometric == {"MONOCHROME1", "MONOCHROME2"}
    assert 14 in bits and 8 in bits


def test_outline_mask_is_the_sign_of_its_signed_field():
    """``Outline.mask`` skips the angle where rho alone decides; it must give exactly
    ``signed > 0``, for smooth and spiculated outlines, rotated, and clipped by the image."""
    from medssl.data.synth.shapes import irregular_outline, smooth_outline

    rng = np.random.default_rng(0)
    shape = (90, 70)
    for i in range(40):
        cy, cx = rng.uniform(-10, 100), rng.uniform(-10, 80)
        ry, rx = rng.uniform(2, 30), rng.uniform(2, 30)
        angle = rng.uniform(0, np.pi)
        if i % 2:
            outline = irregular_outline(rng, cy, cx, ry, rx, angle=angle, spike_amp=0.8)
        else:
            outline = smooth_outline(rng, cy, cx, ry, rx, angle=angle, lobes=0.15)
        box, s = outline.signed(shape)
        expected = np.zeros(shape, dtype=bool)
        expected[box] = s > 0
        np.testing.assert_array_equal(outline.mask(shape), expected)


def test_cbis_roi_masks_are_full_size_binary(phantoms):
    _, roots = phantoms
    tree = roots["cbis_ddsm"] / "CBIS-DDSM"
    checked = 0
    for folder in tree.iterdir():
        if not folder.name[-1].isdigit():
            continue
        full = next((tree / folder.name.rsplit("_", 1)[0]).rglob("*.dcm"))
        shape = pydicom.dcmread(full).pixel_array.shape
        masks = [pydicom.dcmread(p) for p in folder.rglob("*.dcm")]
        masks = [m for m in masks if m.SeriesDescription == "ROI mask images"]
        assert len(masks) == 1
        px = masks[0].pixel_array
        assert px.shape == shape and set(np.unique(px).tolist()) == {0, 255}
        checked += 1
    assert checked >= sum(TINY["cbis_ddsm"].values())


def test_inbreast_layout(phantoms):
    _, roots = phantoms
    root = roots["inbreast"]
    assert root.name == "INbreast Release 1.0"
    lines = (root / "INbreast.csv").read_text().splitlines()
    assert (
        lines[0] == "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"
    )
    rows = [dict(zip(lines[0].split(";"), line.split(";"), strict=True)) for line in lines[1:]]
    birads = [r["Bi-Rads"] for r in rows]
    assert birads.count("0") == 2
    assert sum(b == "1" for b in birads) == TINY["inbreast"]["normal"]
    assert sum(b in {"2", "3"} for b in birads) == TINY["inbreast"]["benign"]
    assert sum(b in {"4a", "4b", "4c", "5", "6"} for b in birads) == TINY["inbreast"]["malignant"]
    for r in rows:
        (dcm,) = (root / "AllDICOMs").glob(f"{r['File Name']}_*_MG_{r['Laterality']}_*_ANON.dcm")
        ds = pydicom.dcmread(dcm)
        assert ds.BitsStored == 14
        # INbreast's 70 µm pixels, as a phantom SCALE times smaller spans them
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx([0.07 / SCALE] * 2, rel=1e-5)
        xml = root / "AllXML" / f"{r['File Name']}.xml"
        if r["Bi-Rads"] in {"4a", "4b", "4c", "5", "6"}:
            doc = plistlib.loads(xml.read_bytes())
            rois = doc["Images"][0]["ROIs"]
            assert rois and all(
                isinstance(p, str) and p.startswith("(") for roi in rois for p in roi["Point_px"]
            )
            assert {roi["Name"] for roi in rois} <= {"Mass", "Calcification", "Cluster"}


def test_mini_mias_layout(phantoms):
    _, roots = phantoms
    root = roots["mini_mias"]
    n = sum(TINY["mini_mias"].values())
    pgms = sorted(root.glob("mdb*.pgm"))
    assert [p.name for p in pgms] == [f"mdb{i:03d}.pgm" for i in range(1, n + 1)]
    img = Image.open(pgms[0])
    assert img.size == (1024, 1024) and img.mode == "L"
    rows = [
        line.split()
        for line in (root / "Info.txt").read_text().splitlines()
        if line.startswith("mdb")
    ]
    per_image: dict[str, list[list[str]]] = {}
    for r in rows:
        per_image.setdefault(r[0], []).append(r)
    assert len(per_image) == n
    normal = [k for k, v in per_image.items() if v[0][2] == "NORM"]
    assert len(normal) == TINY["mini_mias"]["normal"] and all(
        len(per_image[k][0]) == 3 for k in normal
    )
    for r in rows:
        if len(r) == 7:
            x, y = int(r[4]), int(r[5])
            assert 0 <= x < 1024 and 0 <= y <= 1024


def test_mini_mias_coordinates_point_at_the_lesion(tmp_path):
    root = write_source("mini_mias", tmp_path, {"malignant": 3}, seed=1)
    rows = [
        line.split()
        for line in (root / "Info.txt").read_text().splitlines()
        if line.startswith("mdb")
    ]
    for r in rows:
        if len(r) == 7:
            image = np.asarray(Image.open(root / f"{r[0]}.pgm"), dtype=np.float32)
            x, y = int(r[4]), 1024 - int(r[5])  # bottom-left origin
            assert image[y, x] > 0  # inside the breast


def test_counts_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="valid: benign, malignant"):
        write_source("mbud", tmp_path, {"normal": 1})
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        write_source("nope", tmp_path, {})
    with pytest.raises(ConfigError, match=">= 0"):
        write_source("busi", tmp_path, {"benign": -1})


def test_cli_synth_writes_a_whole_tree_that_builds_reuse(tmp_path, capsys):
    from medssl.artifacts import read_json
    from medssl.cli.main import main
    from medssl.data.phantoms import ensure_phantoms
    from medssl.data.recipe import demand, load_preset

    out = tmp_path / "phantoms"
    argv = ["data", "synth", "--preset", "smoke", "--scale", "0.1", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    counts = demand(list(load_preset("smoke").recipes))
    n = sum(sum(c.values()) for c in counts.values())
    assert f"{n} phantom images (scale 0.1)" in printed and "images/s" in printed
    assert not list(tmp_path.glob(".phantoms.*"))  # the temporary sibling is gone
    marker = read_json(out / "phantoms.json")
    assert marker["seed"] == 0 and marker["scale"] == 0.1 and marker["counts"] == counts
    assert sorted(marker["roots"]) == sorted(counts)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "phantoms.json"]
    assert marker["inventory"] == {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
    }
    # a build asking for the same phantoms reuses the tree as it is
    before = _tree_digest(out)
    roots = ensure_phantoms(out, counts, seed=0, scale=0.1)
    assert {k: str(v) for k, v in roots.items()} == marker["roots"]
    assert _tree_digest(out) == before
    # files the disk lost (an OS crash after the tree moved into place) are written again
    victim = next(p for p in sorted(out.rglob("*.png")))
    victim.write_bytes(b"")
    ensure_phantoms(out, counts, seed=0, scale=0.1)
    assert _tree_digest(out) == before
    # an existing folder is replaced only when asked, with a one-line error otherwise
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert _tree_digest(out) == before  # same seed and scale, same bytes
    assert main([*argv[:-4], "--scale", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "--scale: the phantom scale must be a number in (0, 1]" in capsys.readouterr().err


def test_scale_per_modality(tmp_path):
    """A preset may size ultrasound and mammography phantoms apart ({us: .., mg: ..})."""
    from medssl.data.phantoms import source_scale
    from medssl.data.recipe import check_scale, describe_scale, load_preset

    recipe = tmp_path / "r.yaml"
    body = "databases:\n  - name: X\n    quotas: {finetune: {busi: {benign: 1}}}\n"
    recipe.write_text("phantom_scale: {us: 0.5, mg: 0.1}\n" + body)
    scale = load_preset(recipe).phantom_scale
    assert scale == {"us": 0.5, "mg": 0.1} and describe_scale(scale) == "us 0.5, mg 0.1"
    assert source_scale(scale, "busi") == 0.5 and source_scale(scale, "inbreast") == 0.1
    assert source_scale(0.3, "tbud") == 0.3 and describe_scale(0.3) == "0.3"
    for bad in ("{us: 0.5}", "{us: 0.5, mg: 0.1, ct: 1}", "{us: 0.5, mg: 2}", "big", "0"):
        recipe.write_text(f"phantom_scale: {bad}\n" + body)
        with pytest.raises(ConfigError, match=r"r\.yaml: phantom_scale"):
            load_preset(recipe)
    assert check_scale(1, "x") == 1.0
    counts = {"busi": {"benign": 1}, "inbreast": {"benign": 1}}
    both = write_phantoms(tmp_path / "a", counts, seed=0, scale={"us": 0.5, "mg": 0.1})
    one = write_phantoms(tmp_path / "b", counts, seed=0, scale=0.5)
    # ultrasound as at scale 0.5, byte for byte; mammograms five times smaller
    assert _tree_digest(both["busi"]) == _tree_digest(one["busi"])

    def rows(root: Path) -> int:
        return pydicom.dcmread(next(root.rglob("*.dcm"))).Rows

    assert 4 < rows(one["inbreast"]) / rows(both["inbreast"]) < 6
