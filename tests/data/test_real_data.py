"""Real data as users bring it, on phantom miniatures of the real layouts: the survey and its
starter recipe, presets with missing sources, every shortfall in one error, fitted quotas,
label conflicts, classification-only databases, the csv source, the breast crop, and the
command-line errors (one line each, naming the file or flag, no traceback)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from medssl.artifacts import read_csv
from medssl.cli.main import main
from medssl.data.database import Database
from medssl.data.phantoms import write_source
from medssl.data.preprocess import breast_box
from medssl.data.quotas import fit_quotas
from medssl.data.sources import open_source
from medssl.errors import DataError

BUSI = {"normal": 12, "benign": 14, "malignant": 12}


def _busi(folder: Path) -> Path:
    """A BUSI miniature with one exact duplicate (benign (99) = benign (1)) and one label
    conflict (benign (98) = malignant (2))."""
    root = write_source("busi", folder, BUSI, seed=0, scale=0.2, multi_mask=0.0)
    for src, dst in (("benign/benign (1)", "benign/benign (99)"),
                     ("malignant/malignant (2)", "benign/benign (98)")):  # fmt: skip
        shutil.copy(root / f"{src}.png", root / f"{dst}.png")
        shutil.copy(root / f"{src}_mask.png", root / f"{dst}_mask.png")
    return root


@pytest.fixture(scope="module")
def busi(tmp_path_factory) -> Path:
    return _busi(tmp_path_factory.mktemp("busi"))


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err and len(err.strip().splitlines()) >= 1


def _recipe(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_survey_counts_and_its_starter_recipe_builds_as_written(busi, tmp_path, capsys):
    recipe = tmp_path / "mine.yaml"
    assert main(["data", "survey", "--root", f"busi={busi}", "--out", str(recipe)]) == 0
    text = capsys.readouterr().out
    header = "| class | images | duplicates | label conflicts | with mask | without mask |"
    assert header in text
    assert "| normal | 12 | 0 | 0 | 12 | 0 | 0 |" in text
    assert "| benign | 16 | 1 | 1 | 14 | 0 | 0 |" in text
    assert "| malignant | 12 | 0 | 1 | 11 | 0 | 0 |" in text
    assert "busi:benign/benign (98).png (benign) ~ busi:malignant/malignant (2).png" in text
    body = recipe.read_text()
    assert "name: MINE" in body and "tasks: [classification, segmentation]" in body
    assert "busi: {benign: 7, malignant: 5, normal: 6}" in body  # half of each class
    out = tmp_path / "db"
    argv = ["data", "build", "--preset", str(recipe), "--out", str(out), "--root", f"busi={busi}"]
    assert main([*argv, "--quiet"]) == 0
    db = Database.load(out / "MINE")
    from medssl.data.recipe import load_recipes

    (written,) = load_recipes(recipe)
    assert db.meta.quotas_used == written.quotas  # every quota filled as written
    assert db.meta.shortfalls == []


def test_preset_with_missing_sources_under_available_sources(busi, tmp_path, capsys):
    preset = _recipe(
        tmp_path / "two.yaml",
        "name: TWO\nquotas:\n  finetune:\n    busi: {benign: 5, malignant: 5, normal: 5}\n"
        "  pretrain:\n    busi: {benign: 3}\n    qamebi: {benign: 4, malignant: 4}\n",
    )
    argv = ["data", "build", "--preset", str(preset), "--root", f"busi={busi}", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "needs the source folder(s) of qamebi" in err and "--available-sources" in err
    _no_traceback(err)
    assert main([*argv, "--out", str(tmp_path / "b"), "--available-sources"]) == 0
    captured = capsys.readouterr()
    assert "--available-sources: left out qamebi" in captured.err
    db = Database.load(tmp_path / "b" / "TWO")
    assert db.meta.left_out_sources == {"qamebi": {"pretrain": {"benign": 4, "malignant": 4}}}
    assert {r.source for r in db.manifest} == {"busi"}
    assert main(["data", "describe", str(tmp_path / "b" / "TWO")]) == 0
    assert "- qamebi: quotas dropped (pretrain 8 images)" in capsys.readouterr().out
    only = _recipe(
        tmp_path / "one.yaml", "name: ONE\nquotas:\n  finetune:\n    qamebi: {benign: 5}\n"
    )
    assert (
        main([*argv[:3], str(only), *argv[4:], "--out", str(tmp_path / "c"), "--available-sources"])
        == 2
    )
    err = capsys.readouterr().err
    assert "--available-sources: recipe ONE" in err and "no finetuning source left" in err


def test_phantoms_standing_in_are_announced_and_a_misspelt_root_is_not_replaced(tmp_path, capsys):
    preset = _recipe(
        tmp_path / "p.yaml",
        "phantom_scale: 0.15\nname: P\nquotas:\n  finetune:\n    busi: {benign: 5, malignant: 5, normal: 5}\n",
    )
    out = tmp_path / "out"
    argv = ["data", "build", "--preset", str(preset), "--out", str(out), "--phantoms", "--quiet"]
    assert main([*argv, "--root", f"busy={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "--root busy=: no source 'busy'; did you mean busi?" in err
    _no_traceback(err)
    assert not out.exists()  # nothing generated in its place
    assert main(argv) == 0
    assert "warning: synthetic phantoms stand in for busi" in capsys.readouterr().err
    assert Database.load(out / "P").phantoms == ["busi"]


def test_a_preset_declares_that_it_is_built_from_phantoms(tmp_path, capsys):
    """``phantoms: true`` in the preset file (as demo and smoke say) makes phantoms for the
    sources without --root; without it those sources are an error that says what to pass."""
    from medssl.data.recipe import load_preset

    body = "name: P\nquotas:\n  finetune:\n    busi: {benign: 5, malignant: 5, normal: 5}\n"
    plain = _recipe(tmp_path / "plain.yaml", "phantom_scale: 0.15\n" + body)
    argv = ["data", "build", "--out", str(tmp_path / "out"), "--quiet", "--preset"]
    assert main([*argv, str(plain)]) == 2
    assert "needs the source folder(s) of busi: pass --root NAME=DIR" in capsys.readouterr().err
    declared = _recipe(tmp_path / "declared.yaml", "phantom_scale: 0.15\nphantoms: true\n" + body)
    assert main([*argv, str(declared)]) == 0
    assert "warning: synthetic phantoms stand in for busi" in capsys.readouterr().err
    assert Database.load(tmp_path / "out" / "P").phantoms == ["busi"]
    bad = _recipe(tmp_path / "bad.yaml", "phantoms: sometimes\n" + body)
    assert main([*argv, str(bad)]) == 2
    assert "bad.yaml: phantoms: expected true or false, not 'sometimes'" in capsys.readouterr().err
    assert [p for p in ("demo", "smoke", "us1", "mg2", "usmg3", "mammography")
            if load_preset(p).phantoms] == ["demo", "smoke"]  # fmt: skip


def test_a_misspelt_root_names_the_closest_source(tmp_path, capsys):
    argv = [
        "data",
        "build",
        "--preset",
        "mg2",
        "--out",
        str(tmp_path),
        "--root",
        f"inbrest={tmp_path}",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--root inbrest=: no source 'inbrest'; did you mean inbreast?" in err
    _no_traceback(err)


SHORT = (
    "name: SHORT\nquotas:\n  finetune:\n    busi: {benign: 28, malignant: 24, normal: 10}\n"
    "  pretrain:\n    busi: {normal: 9}\n"
)


def test_every_shortfall_in_one_error_with_the_largest_quota_that_fits(busi, tmp_path, capsys):
    preset = _recipe(tmp_path / "short.yaml", SHORT)
    argv = ["data", "build", "--preset", str(preset), "--out", str(tmp_path / "db")]
    assert main([*argv, "--root", f"busi={busi}"]) == 2
    err = capsys.readouterr().err
    _no_traceback(err)
    assert "recipe SHORT (--preset " + str(preset) in err and "3 quota(s) cannot be filled" in err
    assert (
        "finetune/busi/benign: quota 28, 16 usable with masks; largest quota that fits: 16" in err
    )
    assert (
        "finetune/busi/malignant: quota 24, 12 usable with masks; largest quota that fits: 12"
        in err
    )
    assert "pretrain/busi/normal: quota 9, 2 usable; largest quota that fits: 2" in err
    assert "--fit-quotas" in err and not (tmp_path / "db").exists()


def test_fit_quotas_keeps_the_class_ratios_and_records_the_quotas_used(tmp_path, capsys):
    busi = write_source("busi", tmp_path / "busi", BUSI, seed=0, scale=0.2, multi_mask=0.0)
    preset = _recipe(tmp_path / "short.yaml", SHORT)
    out = tmp_path / "db"
    argv = ["data", "build", "--preset", str(preset), "--out", str(out), "--root", f"busi={busi}"]
    assert main([*argv, "--fit-quotas"]) == 0
    db = Database.load(out / "SHORT")
    # benign 14/28 and malignant 12/24 of what is wanted: every class at half (normal 10 -> 5);
    # pretraining then holds 7 of the 9 normals it wants
    assert db.meta.quotas_used == {
        "finetune": {"busi": {"benign": 14, "malignant": 12, "normal": 5}},
        "pretrain": {"busi": {"normal": 7}},
    }
    assert db.meta.fit_quotas is True
    assert db.meta.recipe.quotas["finetune"]["busi"]["benign"] == 28  # the recipe as written
    assert {(s["role"], s["class"], s["available"]) for s in db.meta.shortfalls} == {
        ("finetune", "benign", 14), ("finetune", "malignant", 12), ("pretrain", "normal", 7)
    }  # fmt: skip
    text = capsys.readouterr().out
    assert "## Quotas used (fitted to the sources, class ratios kept)" in text
    assert "- finetune/busi: benign 14, malignant 12, normal 5" in text


def test_fit_quotas_rule():
    want = {("a", "benign"): 10, ("b", "benign"): 10, ("a", "malignant"): 10, ("a", "normal"): 4}
    avail = {("a", "benign"): 10, ("b", "benign"): 2, ("a", "malignant"): 30, ("a", "normal"): 0}
    # benign fills 12 of 20: f = 0.6; malignant 6 of 10; normal, held by no source, gets 0
    assert fit_quotas(want, avail) == {
        ("a", "benign"): 10, ("b", "benign"): 2, ("a", "malignant"): 6, ("a", "normal"): 0
    }  # fmt: skip
    assert fit_quotas({("a", "benign"): 5}, {("a", "benign"): 9}) == {("a", "benign"): 5}


def test_a_label_conflict_in_a_busi_miniature_is_found_and_left_out(busi, tmp_path, capsys):
    body = (
        "name: CONFLICT\n{keep}quotas:\n  finetune:\n    busi: {{malignant: 12, normal: 5}}\n"
        "  pretrain:\n    busi: {{benign: 16}}\n"
    )
    preset = _recipe(tmp_path / "c.yaml", body.format(keep=""))
    argv = ["data", "build", "--preset", str(preset), "--root", f"busi={busi}", "--lenient"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "## Label conflicts (duplicates whose labels differ): 1" in out
    assert "(1 label conflict(s), 2 image(s) left out)" in out
    db = Database.load(tmp_path / "a" / "CONFLICT")
    (found,) = db.meta.label_conflicts["found"]
    assert found["kind"] == "exact" and found["action"] == "left out"
    assert sorted(found["left_out"]) == [
        "busi:benign/benign (98).png",
        "busi:malignant/malignant (2).png",
    ]
    files = {r.file for r in db.manifest}
    assert "benign/benign (98).png" not in files and "malignant/malignant (2).png" not in files
    assert main(["data", "describe", str(tmp_path / "a" / "CONFLICT")]) == 0
    assert "(malignant): left out" in capsys.readouterr().out
    kept = _recipe(tmp_path / "k.yaml", body.format(keep="label_conflicts: keep\n"))
    assert main([*argv[:3], str(kept), *argv[4:], "--out", str(tmp_path / "b"), "--quiet"]) == 0
    db = Database.load(tmp_path / "b" / "CONFLICT")
    assert [c["action"] for c in db.meta.label_conflicts["found"]] == ["kept"]


def _csv_dataset(root: Path) -> Path:
    """A csv source of ultrasound phantoms (two images per patient, some lesions unmasked)."""
    return write_source(
        "csv", root, {"normal": 8, "benign": 10, "malignant": 10}, seed=0, scale=0.2
    )


def test_csv_source_reads_good_rows_and_names_every_bad_one(tmp_path, capsys):
    root = _csv_dataset(tmp_path / "data")
    sheet = root / "dataset.csv"
    good = open_source("csv", sheet).records()
    assert len(good) == 28 and {r.patient for r in good} >= {"P000", "P013"}
    assert {r.modality for r in good} == {"us"}
    assert any(not r.has_mask and r.label != "normal" for r in good)  # lesion without a mask
    for r in good[:3]:
        loaded = r.load()
        assert loaded.image.ndim == 2 and (loaded.mask is not None) == r.has_mask
    # the same rows read from another folder, paths relative to the CSV
    (tmp_path / "elsewhere").mkdir()
    assert len(open_source("csv", root).records()) == 28
    for i in (1, 2, 3):
        shutil.copy(root / "images" / "img_000.png", root / f"extra{i}.png")
    with open(sheet, "a") as f:
        f.write("images/nothere.png,benign,,P100,us\n")  # row 30
        f.write("images/img_000.png,benign,,P101,us\n")  # row 31
        f.write("extra1.png,suspicious,,P102,us\n")  # row 32
        f.write(f"{root / 'extra2.png'},benign,masks/none.png,,\n")  # row 33: absolute path
        f.write("extra3.png,benign,,,ct\n")  # row 34
    with pytest.raises(DataError) as err:
        open_source("csv", sheet).records()
    lines = str(err.value).splitlines()
    assert (
        lines[0] == f"{sheet}: 5 bad row(s) (fix them, or pass --lenient to skip and count them):"
    )
    assert lines[1].startswith("  row 30: image 'images/nothere.png' not found")
    assert lines[2] == "  row 31: image 'images/img_000.png' is listed again (first in row 2)"
    assert lines[3].startswith("  row 32: label 'suspicious' maps to no class; expected benign")
    assert lines[4].startswith("  row 33: mask 'none.png' not found")
    assert lines[5] == "  row 34: modality 'ct'; expected one of us, mg"
    lenient = open_source("csv", sheet, lenient=True)
    assert len(lenient.records()) == 28 and len(lenient.skipped) == 5
    assert (
        main(["data", "survey", "--root", f"csv={sheet}", "--out", str(tmp_path / "r.yaml")]) == 2
    )
    err_text = capsys.readouterr().err
    assert str(sheet) in err_text and "row 30" in err_text and "row 34" in err_text
    _no_traceback(err_text)


def test_csv_header_and_folder_are_checked(tmp_path):
    root = _csv_dataset(tmp_path / "d")
    (root / "bad.csv").write_text("file,class\na.png,benign\n")
    with pytest.raises(DataError, match=r"bad\.csv: missing column\(s\) image, label; found file"):
        open_source("csv", root / "bad.csv").records()
    with pytest.raises(DataError, match="holding exactly one .csv file"):
        open_source("csv", root).records()  # two CSV files in the folder
    (root / "bad.csv").write_text("Image;LABEL;Patient\nimages/img_001.png;Benign;p1\n")
    (record,) = open_source("csv", root / "bad.csv").records()  # any case, ; separated
    assert (record.label, record.patient, record.file) == ("benign", "p1", "images/img_001.png")


def test_classification_only_database_finetunes_and_plans_no_segmentation(tmp_path):
    from medssl.tasks.benchmark import BenchmarkConfig, plan_runs
    from medssl.tasks.finetune import run_finetune

    root = _csv_dataset(tmp_path / "data")
    preset = _recipe(
        tmp_path / "cls.yaml",
        "name: CLS\ntasks: [classification]\nsizes: {pretrain: 32, finetune: 32}\nquotas:\n"
        "  finetune:\n    csv: {benign: 6, malignant: 6, normal: 5}\n"
        "  pretrain:\n    csv: {benign: 2, malignant: 2}\n",
    )
    # two images per patient: pretraining keeps what finetuning's patients leave (fitted)
    assert main(["data", "build", "--preset", str(preset), "--out", str(tmp_path / "db"),
                 "--root", f"csv={root}", "--quiet", "--fit-quotas"]) == 0  # fmt: skip
    db = Database.load(tmp_path / "db" / "CLS")
    assert db.meta.tasks == ("classification",)
    ft = db.rows("finetune")
    assert any(r.has_mask == 0 and r.label != "normal" for r in ft)  # no mask needed
    trainer = {"epochs": 1, "progress_bar": False, "precision": "32-true"}
    overrides = {"trainer": trainer, "batch_size": 8, "figure_splits": ["test"]}
    run = run_finetune(
        tmp_path / "db" / "CLS", tmp_path / "run", task="classification", preset="demo",
        overrides={**overrides, "examples_per_group": 1},
    )  # fmt: skip
    assert {r["metric"] for r in read_csv(run / "results.csv")} >= {"balanced_accuracy", "mcc"}
    from medssl.data.labelled import finetune_splits

    with pytest.raises(DataError, match="serves classification only"):
        finetune_splits(db, needs_masks=True, task="segmentation")
    cfg = BenchmarkConfig(methods=["simclr"], seeds=1)
    runs = plan_runs(cfg, {"CLS": db})
    assert {r.task for r in runs if r.kind == "finetune"} == {"classification"}
    assert len([r for r in runs if r.kind == "finetune"]) == 2  # random + simclr


def test_mini_mias_circles_serve_as_coarse_masks_when_asked(tmp_path):
    root = write_source(
        "mini_mias", tmp_path / "mias", {"normal": 5, "benign": 6, "malignant": 6}, seed=0
    )
    preset = _recipe(
        tmp_path / "m.yaml",
        "name: MIAS\nsources:\n  mini_mias: {circles_as_masks: true}\nquotas:\n"
        "  finetune:\n    mini_mias: {normal: 5, benign: 5, malignant: 5}\n",
    )
    assert main(["data", "build", "--preset", str(preset), "--out", str(tmp_path / "db"),
                 "--root", f"mini_mias={root}", "--lenient", "--quiet"]) == 0  # fmt: skip
    db = Database.load(tmp_path / "db" / "MIAS")
    ft = db.rows("finetune")
    lesions = [r for r in ft if r.label != "normal" and r.has_mask]
    assert lesions and all(r.coarse_mask == 1 for r in lesions)
    assert all(r.coarse_mask == 0 for r in ft if r.label == "normal")
    assert db.meta.coarse_masks == {"mini_mias": len(lesions)}
    from medssl.data.describe import describe

    assert "coarse masks (approximate regions, not outlines" in describe(db)


@pytest.mark.parametrize("name", ["cbis_ddsm", "inbreast"])
def test_breast_crop_keeps_every_lesion_inside(tmp_path, name):
    counts = (
        {"benign": 4, "malignant": 4}
        if name == "cbis_ddsm"
        else {"normal": 2, "benign": 4, "malignant": 4}
    )
    root = write_source(name, tmp_path / name, counts, seed=1, scale=0.2)
    shrink = []
    for r in open_source(name, root).records():
        loaded = r.load()
        box, widened = breast_box(loaded.image, loaded.mask)
        assert loaded.mask.sum() == box.crop(loaded.mask).sum(), r.file  # the lesion stays in
        inside = box.crop(loaded.image > 0.05).sum()
        assert inside >= 0.97 * (loaded.image > 0.05).sum()  # and the breast
        shrink.append(box.height * box.width / loaded.image.size)
    assert np.mean(shrink) < 0.85  # background is cut away


def test_breast_crop_widens_for_a_mask_outside_the_breast():
    image = np.zeros((100, 80), np.float32)
    image[20:60, 0:30] = 0.6  # the breast
    image[90:95, 70:75] = 0.9  # a marker, smaller: not the breast
    mask = np.zeros(image.shape, bool)
    mask[55:70, 20:35] = True  # reaches below and right of the breast
    box, widened = breast_box(image, mask)
    assert widened and mask.sum() == box.crop(mask).sum()
    plain, widened = breast_box(image, None)
    assert not widened and (plain.top, plain.left) == (18, 0) and plain.height == 44
    assert breast_box(np.zeros((10, 10), np.float32))[0].height == 10  # nothing above threshold


def test_breast_crop_database_records_the_crop(tmp_path):
    root = write_source(
        "inbreast", tmp_path / "inb", {"normal": 5, "benign": 6, "malignant": 6}, seed=0, scale=0.2
    )
    body = (
        "name: MG\ncrop: {crop}\nsizes: {{pretrain: 48, finetune: 128}}\nquotas:\n"
        "  finetune:\n    inbreast: {{normal: 5, benign: 5, malignant: 5}}\n"
    )
    dbs = {}
    for crop in ("none", "breast"):
        preset = _recipe(tmp_path / f"{crop}.yaml", body.format(crop=crop))
        assert main(["data", "build", "--preset", str(preset), "--out", str(tmp_path / crop),
                     "--root", f"inbreast={root}", "--quiet"]) == 0  # fmt: skip
        dbs[crop] = Database.load(tmp_path / crop / "MG")
    whole, crop = dbs["none"], dbs["breast"]
    assert crop.images("finetune").shape[1:] == (128, 128)
    assert all(r.crop_box for r in crop.rows("finetune"))
    assert all(r.crop_box == "" for r in whole.rows("finetune"))
    assert crop.meta.crop["cropped"] == 15 and "largest 8-connected" in crop.meta.crop["rule"]
    # the same images, the lesions larger in the stored pixels
    assert [r.file for r in whole.rows("finetune")] == [r.file for r in crop.rows("finetune")]
    assert crop.masks().sum() > 1.05 * whole.masks().sum()
    for r in crop.rows("finetune"):
        top, left, h, w = (int(v) for v in r.crop_box.split(","))
        assert (r.orig_h, r.orig_w) == (h, w)


def test_folds_larger_than_a_class_are_a_named_error(tmp_path, capsys):
    argv = ["benchmark", "--preset", "smoke", "--folds", "12", "--dry-run", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--folds 12: every class needs at least 12 finetuning images" in err
    assert "of database US1" in err and "use --folds 10 or fewer" in err
    _no_traceback(err)


def test_survey_needs_a_root_and_a_yaml_out(tmp_path, capsys):
    assert main(["data", "survey", "--out", str(tmp_path / "r.yaml")]) == 2
    assert "survey: no source given; pass --root NAME=DIR" in capsys.readouterr().err
    root = tmp_path / "x"
    root.mkdir()
    assert main(["data", "survey", "--root", f"busi={root}", "--out", str(tmp_path / "r.txt")]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and ".yaml" in err
    _no_traceback(err)


def test_a_class_smaller_than_the_folds_is_a_named_error_at_build_time(busi, tmp_path, capsys):
    """The build-time twin of the benchmark's --folds check: 3 normals cannot fill the 5
    stratified folds of the 60/20/20 finetuning split (build._check_classes)."""
    preset = _recipe(
        tmp_path / "thin.yaml",
        "name: THIN\nquotas:\n  finetune:\n    busi: {benign: 5, malignant: 5, normal: 3}\n",
    )
    out = tmp_path / "db"
    argv = ["data", "build", "--preset", str(preset), "--out", str(out), "--root", f"busi={busi}"]
    assert main([*argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    _no_traceback(err)
    assert f"recipe THIN of {preset}: finetuning class(es) too small for the 0.6/0.2/0.2" in err
    assert "5 stratified folds need at least 5 images of each class: normal has 3;" in err
    assert "benign has" not in err and "malignant has" not in err  # only the thin class
    assert not out.exists()


@pytest.mark.parametrize(
    ("size", "tasks", "expected"),
    [
        (100, "", "sizes.finetune: 100; the U-Net of segmentation needs a multiple of 32 "
         "(the nearest: 96 or 128), or declare tasks: [classification]"),
        (16, "", "sizes.finetune: 16; the U-Net of segmentation needs a multiple of 32 "
         "(the nearest: 32)"),
        (0, "tasks: [classification]\n", "sizes.finetune: 0; expected a side in pixels >= 1"),
    ],
)  # fmt: skip
def test_a_finetuning_size_the_unet_cannot_take_is_refused_when_the_recipe_loads(
    tmp_path, capsys, size, tasks, expected
):
    preset = _recipe(
        tmp_path / "odd.yaml",
        f"name: ODD\n{tasks}sizes: {{finetune: {size}}}\nquotas:\n"
        "  finetune:\n    busi: {benign: 5, malignant: 5, normal: 5}\n",
    )
    out = tmp_path / "db"
    argv = ["data", "build", "--preset", str(preset), "--out", str(out), "--phantoms", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    _no_traceback(err)
    assert f"{preset}: recipe ODD: {expected}" in err, err
    assert not out.exists()


def test_a_classification_only_recipe_may_take_any_finetuning_size(tmp_path):
    from medssl.data.recipe import load_recipes

    preset = _recipe(
        tmp_path / "cls.yaml",
        "name: CLS\ntasks: [classification]\nsizes: {finetune: 100}\nquotas:\n"
        "  finetune:\n    busi: {benign: 5}\n",
    )
    (recipe,) = load_recipes(preset)
    assert recipe.sizes.finetune == 100


def test_the_mammography_preset_is_mg2_cropped_to_the_breast_at_128_px():
    from medssl.data.recipe import load_recipes

    (mg2,) = load_recipes("mg2")
    (recipe,) = load_recipes("mammography")
    assert (recipe.name, recipe.crop, recipe.sizes.finetune) == ("MG2-crop128", "breast", 128)
    assert recipe.sizes.pretrain == mg2.sizes.pretrain == 110 and mg2.sizes.finetune == 64
    assert recipe.tasks == ("classification", "segmentation")
    assert recipe.quotas == mg2.quotas  # MG2's sources and quotas (thesis tables 5.1-5.2)
    assert recipe.sources == mg2.sources
