"""End-to-end classification fine-tuning through the CLI on a tiny phantom database."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from dbfactory import make_db, save_db
from medssl.artifacts import read_csv
from medssl.cli.main import main
from medssl.models.encoder import build_encoder, encoder_state_dict

RESULT_COLUMNS = ["run_id", "task", "database", "init", "seed", "fold", "split", "metric", "value"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Small CPU convolutions run much faster on one thread on a shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return save_db(make_db(8, 4, 4, size=32), tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory):
    torch.manual_seed(123)
    path = tmp_path_factory.mktemp("pretrain") / "encoder.pt"
    torch.save(encoder_state_dict(build_encoder()), path)
    return str(path)


def _cli(db_path, out, init, *extra):
    return main(_cli_argv(db_path, out, init, *extra))


def _cli_argv(db_path, out, init, *extra):
    return [
        "finetune",
        "--task",
        "classification",
        "--database",
        db_path,
        "--init",
        init,
        "--out",
        str(out),
        "--preset",
        "demo",
        "--epochs",
        "2",
        "--set",
        "batch_size=6",
        "--device",
        "cpu",
        "--no-progress",
        "--seed",
        "0",
        *extra,
    ]


@pytest.mark.slow
@pytest.mark.parametrize("init", ["pretrained", "random"])
def test_classification_run_outputs_and_beats_chance(tmp_path, db_path, encoder_file, init):
    out = tmp_path / "run"
    assert _cli(db_path, out, encoder_file if init == "pretrained" else "random") == 0
    for name in (
        "config.yaml",
        "metrics.csv",
        "best.pt",
        "results.csv",
        "done.json",
        "loss_curve.png",
    ):
        assert (out / name).is_file(), name
    for s in ("train", "val", "test"):
        for fig in (f"roc_pr_{s}.png", f"confusion_{s}.png"):
            assert (out / fig).is_file(), fig
        pred = np.load(out / f"predictions_{s}.npz")
        assert set(pred.files) == {"ids", "patients", "sources", "y_true", "probs"}
        assert pred["probs"].shape == (len(pred["y_true"]), 3)
        np.testing.assert_allclose(pred["probs"].sum(1), 1, atol=1e-5)
    epochs = read_csv(out / "metrics.csv")
    assert len(epochs) == 2 and {"train_loss", "val_loss", "val_mcc"} <= set(epochs[0])
    rows = read_csv(out / "results.csv")
    assert list(rows[0]) == RESULT_COLUMNS
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert {r["init"] for r in rows} == {encoder_file if init == "pretrained" else "random"}
    test = {r["metric"]: float(r["value"]) for r in rows if r["split"] == "test"}
    for m in (
        "mcc",
        "balanced_accuracy",
        "f1_weighted",
        "f1_macro",
        "auroc_macro",
        "ap_macro",
        "expected_cost",
        "loss",
        "accuracy",
        "sensitivity_malignant",
        "specificity_normal",
        "confusion_malignant_normal",
    ):
        assert m in test, m
    # Saved predictions reproduce the recorded metrics without the model.
    from medssl.metrics.classification import classification_metrics

    pred = np.load(out / "predictions_test.npz")
    again = classification_metrics(pred["y_true"], pred["probs"])
    assert again["mcc"] == pytest.approx(test["mcc"], nan_ok=True)
    # Quality: chance is accuracy 1/3, MCC 0, AUROC 0.5.
    assert test["accuracy"] > 0.6 and test["mcc"] > 0.4 and test["auroc_macro"] > 0.75
    done = json.loads((out / "done.json").read_text())
    assert done["task"] == "classification" and done["split_sizes"] == {
        "train": 24,
        "val": 12,
        "test": 12,
    }
    assert math.isfinite(done["monitor_value"])


def test_encoder_of_wrong_channels_is_a_clear_error(tmp_path, db_path, capsys):
    bad = tmp_path / "encoder.pt"
    torch.save(encoder_state_dict(build_encoder(in_channels=2)), bad)  # 3 would be folded
    assert _cli(db_path, tmp_path / "run", str(bad)) == 2
    err = capsys.readouterr().err
    assert "conv1.weight" in err and "input channels differ" in err


def test_unknown_preset_lists_valid_ones(tmp_path, db_path, capsys):
    assert _cli(db_path, tmp_path / "run", "random", "--preset", "nope") == 2
    assert "demo" in capsys.readouterr().err


def test_finetune_prints_its_result_and_drops_its_resume_state(tmp_path, db_path, capsys):
    out = tmp_path / "run"
    assert _cli(db_path, out, "random") == 0
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and "train_loss" in lines[0] and "val_mcc" in lines[0]  # --no-progress
    final = printed.strip().splitlines()[-1]
    assert final.startswith("classification") and "test mcc" in final and str(out) in final
    assert not (out / "checkpoint.pt").exists() and (out / "best.pt").is_file()


def test_resume_ignores_display_flags(tmp_path, db_path, monkeypatch, capsys):
    """An interrupted run resumes although the second command shows a progress bar and the
    first did not, and writes its resume state at another interval: neither is part of a run's
    identity. The interrupt keeps the last finished epoch (written on the way out)."""
    from medssl.tasks import finetune

    calls = {"n": 0}
    real = finetune.predict

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # epoch 1's validation: epoch 0's checkpoint is on disk
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(finetune, "predict", interrupted)
    out = tmp_path / "run"
    assert _cli(db_path, out, "random") == 130
    assert (out / "checkpoint.pt").is_file() and not (out / "done.json").exists()
    monkeypatch.setattr(finetune, "predict", real)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 0
    argv = [a for a in _cli_argv(db_path, out, "random") if a != "--no-progress"]
    argv += ["--set", "trainer.checkpoint_every_s=0"]
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err
    assert (out / "done.json").is_file()


def test_options_stay_typed_until_the_config_is_saved():
    """resolve_config holds the SupervisedAugmentConfig; the saved form (what config.yaml holds
    and run ids hash) is the options' mapping as given (the fields set over the preset), as
    when they were a dict, and a saved or merged config resolves to the same typed options."""
    import dataclasses

    from medssl.config import merge, to_dict
    from medssl.data.augment import SUPERVISED_AUGMENTATIONS
    from medssl.tasks.finetune import resolve_config, saved_config

    given = {"rotate_deg": 5.0, "scale": [0.8, 1.2]}
    sets = ["augmentation_options.rotate_deg=5.0", "augmentation_options.scale=[0.8, 1.2]"]
    cfg = resolve_config(preset="demo", overrides=sets)
    flip = SUPERVISED_AUGMENTATIONS.get("flip")  # the demo preset's
    assert cfg.augmentation_options == dataclasses.replace(flip, rotate_deg=5.0, scale=(0.8, 1.2))
    saved = saved_config(cfg)
    assert saved == to_dict(dataclasses.replace(cfg, augmentation_options=given))
    assert resolve_config(saved).augmentation_options == cfg.augmentation_options
    again = resolve_config(merge(cfg, {"seed": 1}))
    assert again.augmentation_options == cfg.augmentation_options and saved_config(again) == {
        **saved, "seed": 1, "trainer": {**saved["trainer"], "seed": 1}
    }  # fmt: skip
    # another preset takes the options given over it, not the fields of the first preset
    light = resolve_config(cfg, overrides=["augmentation=light"]).augmentation_options
    assert light == dataclasses.replace(
        SUPERVISED_AUGMENTATIONS.get("light"), rotate_deg=5.0, scale=(0.8, 1.2)
    )
    thesis = resolve_config(preset="thesis")
    assert thesis.augmentation_options == SUPERVISED_AUGMENTATIONS.get("none")
    assert saved_config(thesis)["augmentation_options"] == {}


@pytest.mark.parametrize(
    ("database", "expected"),
    [
        ("missing", "--database: no such folder"),
        ("parent", "holds the databases"),
        ("empty", "not a medssl database (no database.json)"),
    ],
)
def test_database_flag_errors_say_what_the_folder_is(tmp_path, db_path, capsys, database, expected):
    import shutil

    parent = tmp_path / "parent"
    shutil.copytree(db_path, parent / "US1")
    (tmp_path / "empty").mkdir()
    assert _cli(str(tmp_path / database), tmp_path / "run", "random") == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # checked before anything is written


def test_init_that_is_not_a_checkpoint_is_a_clear_error(tmp_path, db_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    assert _cli(db_path, tmp_path / "run", str(junk)) == 2
    err = capsys.readouterr().err
    assert "junk.pt" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["finetune", "--task", "classification", "--database", "{tmp}/nope"], "no such folder"),
        (
            ["finetune", "--task", "classification", "--database", "{db}", "--init", "{tmp}/x.pt"],
            "--init {tmp}/x.pt: no such file or folder",
        ),
        (["pretrain", "--method", "simclr", "--database", "{tmp}/nope"], "no such folder"),
    ],
)
def test_bad_arguments_fail_before_torch_is_imported(tmp_path, db_path, argv, expected):
    """check_args runs before the training stack is imported: the error appears at once, not
    after the seconds torch takes to import (the CLI's own modules import no torch)."""
    import subprocess
    import sys

    argv = [a.format(tmp=tmp_path, db=db_path) for a in argv] + ["--out", str(tmp_path / "run")]
    code = (
        "import json, sys\nfrom medssl.cli.main import main\n"
        f"rc = main({argv!r})\nprint(json.dumps([rc, 'torch' in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout) == [2, False], done.stderr
    assert expected.format(tmp=tmp_path) in done.stderr and "Traceback" not in done.stderr
