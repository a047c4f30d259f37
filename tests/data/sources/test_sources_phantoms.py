"""Label-rule corner cases and bad input on phantom miniatures of the real layouts
(``medssl.data.phantoms.write_source``), edited where a test needs a broken file."""

from __future__ import annotations

import csv
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from medssl.data.imaging import load_mask
from medssl.data.phantoms import write_source
from medssl.data.sources import open_source
from medssl.errors import DataError

SMALL = {"scale": 0.25}


def test_busi_multi_mask_policies(tmp_path):
    root = write_source(
        "busi", tmp_path, {"normal": 1, "benign": 2, "malignant": 1}, multi_mask=1.0, **SMALL
    )
    excluded = open_source("busi", root).records()
    lesions = [r for r in excluded if r.label != "normal"]
    assert lesions and all(
        r.multi_mask and not r.has_mask and len(r.mask_files) > 1 for r in lesions
    )
    assert all(r.load().mask is None for r in lesions)
    united = {r.file: r for r in open_source("busi", root, multi_mask="union").records()}
    for r in lesions:
        u = united[r.file]
        assert u.has_mask and u.multi_mask
        expected = np.logical_or.reduce([load_mask(root / f) for f in u.mask_files])
        np.testing.assert_array_equal(u.load().mask, expected)


def test_cbis_disagreement_and_bwc_mapping(tmp_path):
    counts = {"benign": 3, "malignant": 2}
    root = write_source("cbis_ddsm", tmp_path, counts, disagree=2, without_callback=1.0, **SMALL)
    src = open_source("cbis_ddsm", root)
    recs = src.records()
    assert Counter(r.label for r in recs) == Counter(counts)
    assert len(src.skipped) == 2 and all("disagree" in s.reason for s in src.skipped)
    for (
        r
    ) in recs:  # the ROI picked among mask and crop is the one of the image's size; lesions present
        loaded = r.load()
        assert loaded.mask.shape == loaded.image.shape and loaded.mask.any()
    thesis = open_source("cbis_ddsm", root, bwc_as="normal").records()
    assert Counter(r.label for r in thesis) == Counter({"normal": 3, "malignant": 2})
    assert not any(r.load().mask.any() for r in thesis if r.label == "normal")
    # those "normals" show their lesion: marked, so finetuning never takes them as normals
    assert [r.normal_with_finding for r in thesis] == [r.label == "normal" for r in thesis]


def test_cbis_csv_missing_column_and_unknown_pathology(tmp_path):
    root = write_source("cbis_ddsm", tmp_path, {"benign": 2, "malignant": 2}, disagree=0, **SMALL)
    sheets = [p for p in sorted(root.glob("*_set.csv")) if len(p.read_text().splitlines()) > 1]
    sheet = sheets[0]
    with open(sheet, newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0]["pathology"] = "PROBABLY_BENIGN"
    with open(sheet, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(DataError, match=rf"{sheet.name} \(row 2\).*PROBABLY_BENIGN"):
        open_source("cbis_ddsm", root).records()
    sheet.write_text(sheet.read_text().replace("image view", "view"))
    with pytest.raises(DataError, match=rf"{sheet.name}.*missing column.*image view"):
        open_source("cbis_ddsm", root).records()
    lenient = open_source("cbis_ddsm", root, lenient=True)
    lenient.records()
    assert any("missing column" in s.reason for s in lenient.skipped)


def test_inbreast_birads_rules_and_patients(tmp_path):
    root = write_source(
        "inbreast", tmp_path, {"normal": 1, "benign": 2, "malignant": 2}, birads0=2, **SMALL
    )
    src = open_source("inbreast", root)
    recs = src.records()
    assert sum("BI-RADS 0" in s.reason for s in src.skipped) == 2
    mapping = {"1": "normal", "2": "benign", "3": "benign"}
    for r in recs:
        birads = dict(r.extra)["birads"]
        assert r.label == mapping.get(birads, "malignant")
        assert r.patient == r.file.split("/")[-1].split("_")[1]  # the patient hash of the file name
    # a BI-RADS value that maps to nothing is an error naming the CSV row
    sheet = root / "INbreast.csv"
    lines = sheet.read_text().splitlines()
    lines[2] = re.sub(r";[^;]*$", ";7", lines[2])
    sheet.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"INbreast.csv \(row 3\).*'7'"):
        open_source("inbreast", root).records()


def test_mini_mias_circles_inside_image(tmp_path):
    from medssl.data.sources.mini_mias import circles

    root = write_source("mini_mias", tmp_path, {"normal": 1, "benign": 1, "malignant": 2})
    recs = open_source("mini_mias", root).records()
    info = (root / "Info.txt").read_text()
    for r in recs:
        ref = r.file.split("/")[-1][:-4]
        rows = [line.split() for line in info.splitlines() if line.startswith(ref + " ")]
        with_xy = [row for row in rows if len(row) == 7]
        found = circles(r)
        assert [(c, row) for c, row, _ in found] == [(int(x[4]), 1024 - int(x[5])) for x in with_xy]
        assert all(0 <= c < 1024 and 0 <= row < 1024 for c, row, _ in found)
        assert r.patient == f"{(int(ref[3:]) + 1) // 2:03d}"


def test_ultrasound_bad_input_on_phantoms(tmp_path):
    busi = write_source(
        "busi",
        tmp_path / "busi",
        {"normal": 1, "benign": 2, "malignant": 1},
        multi_mask=0.0,
        **SMALL,
    )
    # a truncated image fails when its loader runs, naming the file
    image = next(busi.glob("benign/* (1).png"))
    image.write_bytes(image.read_bytes()[:300])
    rec = next(r for r in open_source("busi", busi).records() if r.file.endswith(image.name))
    with pytest.raises(DataError, match=re.escape(image.name)):
        rec.load()
    # a mask of another size, naming both files
    mask = next(busi.glob("malignant/*_mask.png"))
    Image.open(mask).resize((7, 5)).save(mask)
    rec = next(r for r in open_source("busi", busi).records() if r.label == "malignant")
    with pytest.raises(DataError, match=re.escape(mask.name)):
        rec.load()
    # an image without its required mask
    mask.unlink()
    with pytest.raises(DataError, match="without its mask"):
        open_source("busi", busi).records()
    lenient = open_source("busi", busi, lenient=True)
    assert len(lenient.records()) == 3 and len(lenient.skipped) == 1

    breast = write_source(
        "breast_lesions_usg",
        tmp_path / "breast",
        {"normal": 1, "benign": 1, "malignant": 1},
        **SMALL,
    )
    next(breast.glob("case*_tumor.png")).unlink()
    with pytest.raises(DataError, match="without its required mask"):
        open_source("breast_lesions_usg", breast).records()

    qamebi = write_source("qamebi", tmp_path / "qamebi", {"benign": 1, "malignant": 1}, **SMALL)
    (qamebi / "Unknown").mkdir()
    with pytest.raises(DataError, match="maps to no class"):
        open_source("qamebi", qamebi).records()
