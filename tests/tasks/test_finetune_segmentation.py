"""End-to-end U-Net fine-tuning through the CLI on a tiny phantom database."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from dbfactory import make_db, save_db
from medssl.artifacts import read_csv
from medssl.cli.main import main
from medssl.metrics.segmentation import segmentation_metrics
from medssl.models.encoder import build_encoder, encoder_state_dict


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return save_db(make_db(8, 4, 4, size=32), tmp_path_factory.mktemp("db"))


def _cli(db_path, out, init, *extra):
    return main(
        [
            "finetune",
            "--task",
            "segmentation",
            "--database",
            db_path,
            "--init",
            init,
            "--out",
            str(out),
            "--preset",
            "demo",
            "--epochs",
            "3",
            "--set",
            "batch_size=6",
            "--device",
            "cpu",
            "--no-progress",
            *extra,
        ]
    )


@pytest.mark.slow
@pytest.mark.parametrize("init", ["pretrained", "random"])
def test_segmentation_run_outputs_and_beats_chance(tmp_path, db_path, init):
    enc = tmp_path / "encoder.pt"
    torch.manual_seed(7)
    torch.save(encoder_state_dict(build_encoder()), enc)
    out = tmp_path / "run"
    assert _cli(db_path, out, str(enc) if init == "pretrained" else "random") == 0
    for name in (
        "config.yaml",
        "metrics.csv",
        "best.pt",
        "results.csv",
        "done.json",
        "loss_curve.png",
        "segmentation_curves.png",
        "examples_test_dice.png",
    ):
        assert (out / name).is_file(), name
    for s in ("train", "val", "test"):
        pred = np.load(out / f"predictions_{s}.npz")
        assert {"ids", "patients", "masks_true", "probs"} <= set(pred.files)
        assert pred["masks_true"].dtype == np.uint8 and pred["probs"].dtype == np.float16
        assert pred["probs"].shape == pred["masks_true"].shape == (len(pred["ids"]), 32, 32)
        assert len(read_csv(out / f"per_image_{s}.csv")) == len(pred["ids"])
    epochs = read_csv(out / "metrics.csv")
    for col in (
        "train_loss",
        "val_loss",
        "val_dice",
        "val_iou",
        "val_pixel_accuracy",
        "val_precision",
        "val_recall",
        "train_dice_pooled",
        "val_dice_pooled",
    ):
        assert col in epochs[0], col
    rows = read_csv(out / "results.csv")
    test = {r["metric"]: float(r["value"]) for r in rows if r["split"] == "test"}
    for m in (
        "dice",
        "iou",
        "pixel_accuracy",
        "precision",
        "recall",
        "hd",
        "hd95",
        "dice_pooled",
        "iou_pooled",
        "normal_fp_rate",
        "normal_pred_area",
        "n_lesion",
        "n_normal",
        "missed_lesions",
        "normal_fp_images",
        "hd_undefined",
        "hd_orig_px",
        "hd_mm",
    ):
        assert m in test, m
    assert test["n_lesion"] == 8 and test["n_normal"] == 4
    # every lesion image has a distance (a miss scores the image diagonal), none is dropped
    assert test["hd_undefined"] == 0 and test["precision_undefined"] == 0
    per_image = read_csv(out / "per_image_test.csv")
    assert {"source", "missed", "hd_orig_px", "hd_mm"} <= set(per_image[0])
    # Metrics recomputed from the saved predictions match the records (float16 probabilities).
    pred = np.load(out / "predictions_test.npz")
    again = segmentation_metrics(pred["masks_true"], pred["probs"].astype(np.float32))
    assert again["dice"] == pytest.approx(test["dice"], abs=1e-3)
    # Quality: predicting every pixel as lesion gives Dice ~0.1 here; an empty prediction 0.
    all_ones = segmentation_metrics(
        pred["masks_true"], np.ones_like(pred["probs"], dtype=np.float32)
    )
    assert test["dice"] > max(0.35, all_ones["dice"] + 0.2)
    assert json.loads((out / "done.json").read_text())["excluded_no_mask"] == 0


def test_database_without_masks_is_a_clear_error(tmp_path, capsys):
    db = make_db(1, 1, 1, size=32, name="nomask")
    db = dataclasses.replace(
        db, manifest=[dataclasses.replace(r, has_mask=False) for r in db.manifest]
    )
    path = save_db(db, tmp_path / "db")
    assert _cli(path, tmp_path / "run", "random") == 2
    err = capsys.readouterr().err
    assert "nomask" in err and "9 finetuning images lack a lesion mask" in err
