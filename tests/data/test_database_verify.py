"""A database folder is verified when it is loaded: each damage is one named error, no traceback."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medssl.artifacts import read_json, save_npy, write_json
from medssl.cli.main import main
from medssl.data.database import Database, array_checksum, write_database
from medssl.data.meta import LAYOUT_VERSION
from medssl.data.recipe import Recipe, Sizes
from medssl.errors import DataError


def tiny_db() -> Database:
    """6 pretraining images (110 px) and 9 finetuning images (64 px, 3 per split)."""
    rng = np.random.default_rng(0)
    ft = rng.integers(0, 256, (9, 64, 64), dtype=np.uint8)
    return Database.from_arrays(
        pretrain=rng.integers(0, 256, (6, 110, 110), dtype=np.uint8),
        pretrain_split=["train"] * 4 + ["val"] * 2,
        finetune=ft,
        finetune_masks=(ft > 200).astype(np.uint8),
        finetune_labels=[0, 1, 2] * 3,
        finetune_split=["train"] * 3 + ["val"] * 3 + ["test"] * 3,
        name="TINY",
    )


@pytest.fixture
def folder(tmp_path):
    """``tiny_db()`` written as `medssl data build` writes a database (sizes and counts in
    database.json)."""
    db, path = tiny_db(), tmp_path / "TINY"
    sizes = Recipe(name="TINY", sizes=Sizes(pretrain=110, finetune=64))
    path.mkdir()
    write_database(path, dataclasses.replace(db, meta=dataclasses.replace(db.meta, recipe=sizes)))
    return path


def describe_error(path, capsys) -> str:
    """What `medssl data describe PATH` prints to stderr; it must fail with one line."""
    assert main(["data", "describe", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    return captured.err


def test_an_intact_folder_loads_and_keeps_its_checksum(folder):
    db = Database.load(folder)
    assert db.checksum == array_checksum(db.arrays, db.manifest) == tiny_db().checksum


def test_a_folder_without_manifest_names_it(folder, capsys):
    (folder / "manifest.csv").unlink()
    err = describe_error(folder, capsys)
    assert f"{folder / 'manifest.csv'}: missing" in err and "medssl data build" in err


@pytest.mark.parametrize("key", ["pretrain", "finetune", "finetune_masks"])
@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty"])
def test_a_damaged_array_names_its_file_and_the_expected_shape(folder, capsys, key, damage):
    file = folder / f"{key}.npy"
    data = file.read_bytes()
    file.write_bytes(
        {"truncated": data[: len(data) // 2], "random bytes": np.random.default_rng(1).bytes(900),
         "empty": b""}[damage]
    )  # fmt: skip
    err = describe_error(folder, capsys)
    n, side = (6, 110) if key == "pretrain" else (9, 64)
    assert f"{file}: " in err and f"expected uint8 ({n}, {side}, {side})" in err
    assert "rebuild the database with `medssl data build`" in err


def test_an_array_whose_shape_disagrees_with_the_manifest_is_refused(folder, capsys):
    save_npy(folder / "finetune.npy", tiny_db().arrays["finetune"][:7])
    err = describe_error(folder, capsys)
    assert f"{folder / 'finetune.npy'}: holds uint8 (7, 64, 64), expected uint8 (9, 64, 64)" in err


def test_an_image_side_that_disagrees_with_database_json_is_refused(folder, capsys):
    db = tiny_db()
    save_npy(folder / "pretrain.npy", db.arrays["pretrain"][:, :100, :100])
    err = describe_error(folder, capsys)
    assert f"{folder / 'pretrain.npy'}: holds uint8 (6, 100, 100)" in err
    assert "side 110 in database.json" in err


def test_a_manifest_row_with_an_unknown_label_names_its_row(folder, capsys):
    text = (folder / "manifest.csv").read_text().splitlines()
    text[3] = text[3].replace(",benign,", ",cyst,")
    (folder / "manifest.csv").write_text("\n".join(text) + "\n")
    err = describe_error(folder, capsys)
    assert f"{folder / 'manifest.csv'} (row 4): label 'cyst'" in err


def test_a_manifest_that_disagrees_with_the_recorded_counts_is_refused(folder, capsys):
    meta = read_json(folder / "database.json")
    meta["counts"]["finetune/test/normal"] = 2
    write_json(folder / "database.json", meta)
    err = describe_error(folder, capsys)
    assert "does not match database.json's counts" in err and "finetune/test/normal 2 vs 1" in err


def test_a_pixel_edited_finetune_array_is_refused(folder, capsys):
    edited = tiny_db().arrays["finetune"].copy()
    edited[4, 10, 10] ^= 1  # one pixel, one bit: same shape, same dtype
    save_npy(folder / "finetune.npy", edited)
    err = describe_error(folder, capsys)
    assert f"{folder}: contents differ from the checksum in database.json" in err
    assert "rebuild the database" in err
    with pytest.raises(DataError, match="checksum"):
        Database.load(folder)
    # the documented opt-out skips only the checksum
    assert (
        Database.load(folder, verify_checksum=False).arrays["finetune"][4, 10, 10]
        == edited[4, 10, 10]
    )


def test_finetune_refuses_an_edited_database_before_training(folder, tmp_path, capsys):
    edited = tiny_db().arrays["finetune_masks"].copy()
    edited[0] = 1 - edited[0]
    save_npy(folder / "finetune_masks.npy", edited)
    out = tmp_path / "run"
    argv = ["finetune", "--task", "segmentation", "--database", str(folder), "--out", str(out),
            "--epochs", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("medssl finetune: error:") and "Traceback" not in err
    assert f"{folder}: contents differ from the checksum" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "edit", [{"layout_version": LAYOUT_VERSION + 1}, {"layout_version": None, "format_version": 1}]
)
def test_a_folder_of_another_layout_says_to_rebuild(folder, capsys, edit):
    """A later layout, or one written before the version field (``format_version: 1``)."""
    meta = {
        k: v for k, v in {**read_json(folder / "database.json"), **edit}.items() if v is not None
    }
    write_json(folder / "database.json", meta)
    err = describe_error(folder, capsys)
    found = edit["layout_version"] or "none (format_version 1)"
    assert f"{folder / 'database.json'}: layout_version {found}: this medssl reads" in err
    assert "rebuild the database with `medssl data build`" in err


@pytest.mark.parametrize("edit", ["missing", "unknown"])
def test_database_json_with_a_missing_or_unknown_key_says_to_rebuild(folder, capsys, edit):
    meta = read_json(folder / "database.json")
    if edit == "missing":
        del meta["mask_resize"]
    else:
        meta["colour"] = "blue"
    write_json(folder / "database.json", meta)
    err = describe_error(folder, capsys)
    assert ("['mask_resize']" if edit == "missing" else "['colour']") in err
    assert "rebuild the database with `medssl data build`" in err


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("has_mask", "yes", "has_mask 'yes': expected 0 or 1"),
        ("orig_h", "tall", "expected a number"),
    ],
)
def test_a_manifest_cell_of_the_wrong_type_names_its_row(folder, capsys, column, value, expected):
    lines = (folder / "manifest.csv").read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index(column)] = value
    lines[2] = ",".join(cells)
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    err = describe_error(folder, capsys)
    assert f"{folder / 'manifest.csv'} (row 3): " in err and expected in err
