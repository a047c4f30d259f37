"""Pretraining end to end through the CLI on a tiny phantom database, and its bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
import yaml

from dbfactory import phantom_db, save_db
from medssl.artifacts import read_csv, read_json
from medssl.cli.main import main
from medssl.data.database import Database
from medssl.data.pool import read_images
from medssl.engine.monitor import HealthMonitor
from medssl.models.encoder import build_encoder
from medssl.models.weights import load_weights
from medssl.ssl import method_names

FAST = [
    "--device",
    "cpu",
    "--set",
    "batch_size=8",
    "--set",
    "augmentation_options.size=32",
    "--set",
    "trainer.progress_bar=false",
    "--set",
    "health.every=2",  # 2 steps an epoch at batch 8: a health read after every epoch
]


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return save_db(phantom_db(), tmp_path_factory.mktemp("db") / "phantoms")


@pytest.mark.slow
def test_cli_pretrain_writes_all_artifacts(db_path, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(
        [
            "pretrain",
            "--method",
            "simclr",
            "--database",
            db_path,
            "--out",
            str(out),
            "--epochs",
            "2",
            *FAST,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    for name in (
        "config.yaml",
        "metrics.csv",
        "checkpoint.pt",
        "encoder.pt",
        "loss_curve.png",
        "tsne.png",
        "health.png",
        "random_init.json",
        "done.json",
    ):
        assert (out / name).is_file(), name
    rows = read_csv(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == ["0", "1"]
    for key in ("train_loss", "val_loss", "lr", "knn_bacc", "knn_gain", "linear_gain"):
        assert np.isfinite(float(rows[-1][key])), key
    for key in ("knn_gain_se", "linear_gain_se", "collapse_std", "health_s"):
        assert np.isfinite(float(rows[-1][key])), key
    for r in rows:  # 4 pretraining-val images: 4 fixed view pairs
        assert 0 <= float(r["alignment"]) <= 4 and -4.5 < float(r["uniformity"]) <= 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    # the default preset is medssl's: SGD 0.06 at batch 128, linear batch scaling, warm-up
    # then cosine, SimCLR at temperature 0.5 (presets/pretrain_medssl.yaml)
    assert cfg["method"] == "simclr" and cfg["method_options"]["temperature"] == 0.5
    assert {k: cfg["optimizer"][k] for k in ("name", "lr", "reference_batch", "lr_scaling")} == {
        "name": "sgd",
        "lr": 0.06,
        "reference_batch": 128,
        "lr_scaling": "linear",
    }
    assert cfg["optimizer"]["schedule"] == "cosine" and cfg["optimizer"]["warmup_fraction"] == 0.1
    assert 0 <= float(rows[-1]["lr"]) <= 0.06 * 8 / 128  # batch 8, decayed
    assert cfg["trainer"]["epochs"] == 2 and cfg["augmentation_options"]["size"] == 32
    load_weights(out / "encoder.pt", build_encoder())
    done = read_json(out / "done.json")
    assert done["epochs_run"] == 2 and done["method"] == "simclr" and done["steps"] == 4
    saved = read_json(out / "random_init.json")
    assert done["random_init"] == {k: v for k, v in saved.items() if k != "per_image"}
    assert set(done["random_init"]) == {
        "knn_bacc", "knn_bacc_se", "linear_bacc", "linear_bacc_se", "collapse_std",
        "alignment", "uniformity",
    }  # fmt: skip
    # every read image's correctness, so a resumed run compares with the same reading
    assert len(saved["per_image"]["knn_correct"]) == len(saved["per_image"]["rows"]) == 12
    assert done["pool"] == {  # the medssl preset's pool: the pretraining role and the train split
        "pool": "pretrain+train", "images": 22, "pretrain_images": 16, "finetune_train_images": 6,
        "left_out_as_duplicates_of_val_or_test": 0,
    }  # fmt: skip
    health = done["health"]
    assert health["epochs"] == 2 and health["random_knn"] == done["random_init"]["knn_bacc"]
    assert health["collapsed"] is False and isinstance(health["never_beat_random"], bool)
    assert health["reads"] == 2 and health["final_knn_gain"] == float(rows[-1]["knn_gain"])
    printed = capsys.readouterr().out
    assert "pretrained simclr for 4 steps (2 epochs of 22 images, pool pretrain+train)" in printed
    assert health["message"] in printed
    # Finished: a second run into the same folder is refused, --resume is a no-op.
    assert (
        main(
            [
                "pretrain",
                "--method",
                "simclr",
                "--database",
                db_path,
                "--out",
                str(out),
                "--epochs",
                "2",
                *FAST,
            ]
        )
        == 2
    )
    assert "finished" in capsys.readouterr().err
    assert (
        main(
            [
                "pretrain",
                "--method",
                "simclr",
                "--database",
                db_path,
                "--out",
                str(out),
                "--epochs",
                "2",
                "--resume",
                *FAST,
            ]
        )
        == 0
    )


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(db_path, tmp_path, monkeypatch):
    from medssl.tasks import pretrain

    args = [
        "pretrain",
        "--method",
        "moco",
        "--database",
        db_path,
        "--epochs",
        "2",
        "--set",
        "method_options.queue_size=12",
        *FAST,
    ]
    assert main([*args, "--out", str(tmp_path / "full")]) == 0

    real = pretrain.check_collapse

    def interrupt(score, threshold, *, epoch):
        if epoch == 1:
            raise KeyboardInterrupt  # before epoch 1's checkpoint: the run resumes from epoch 0
        real(score, threshold, epoch=epoch)

    monkeypatch.setattr(pretrain, "check_collapse", interrupt)
    assert main([*args, "--out", str(tmp_path / "cut")]) == 130
    monkeypatch.setattr(pretrain, "check_collapse", real)
    assert main([*args, "--out", str(tmp_path / "cut"), "--resume"]) == 0
    full = torch.load(tmp_path / "full" / "encoder.pt", weights_only=True)
    resumed = torch.load(tmp_path / "cut" / "encoder.pt", weights_only=True)
    for k in full:
        assert torch.equal(full[k], resumed[k]), k
    a = read_csv(tmp_path / "full" / "metrics.csv")
    b = read_csv(tmp_path / "cut" / "metrics.csv")
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]


def test_resume_with_other_config_names_the_field(db_path, tmp_path):
    from medssl.errors import TrainingError
    from medssl.tasks.pretrain import run_pretraining

    over = ["batch_size=8", "augmentation_options.size=32", "trainer.progress_bar=false"]
    run_pretraining(
        db_path,
        tmp_path / "r",
        method="byol",
        epochs=1,
        device="cpu",
        overrides=[
            *over,
            "method_options.projection_hidden_dim=64",
            "method_options.prediction_hidden_dim=64",
        ],
    )
    (tmp_path / "r" / "done.json").unlink()  # pretend it was interrupted after epoch 0
    with pytest.raises(
        TrainingError, match=r"config\.method_options\.momentum: checkpoint 0\.99 vs now 0\.9"
    ):
        run_pretraining(
            db_path,
            tmp_path / "r",
            method="byol",
            epochs=1,
            device="cpu",
            resume=True,
            overrides=[
                *over,
                "method_options.projection_hidden_dim=64",
                "method_options.prediction_hidden_dim=64",
                "method_options.momentum=0.9",
            ],
        )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--method", "swav"],
            f"unknown SSL method 'swav'; valid names: {', '.join(method_names())}",
        ),
        (
            ["--method", "simclr", "--set", "batch_size=64"],
            "batch_size 64 is larger than the 22 images of the pretraining pool",
        ),
        (["--method", "simclr", "--set", "optimizer.betas=0.9"], "unknown key(s) ['betas']"),
        (
            ["--method", "simclr", "--preset", "nope"],
            "unknown pretraining preset 'nope'; valid names: edges, medssl, thesis",
        ),
    ],
)
def test_bad_input_is_one_clear_line(db_path, tmp_path, capsys, argv, message):
    rc = main(
        [
            "pretrain",
            "--database",
            db_path,
            "--out",
            str(tmp_path / "x"),
            "--epochs",
            "1",
            *FAST,
            *argv,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("verb", "flag"),
    [
        (["pretrain", "--method", "simclr", "--database"], "--database"),
        (["data", "describe"], "database"),
    ],
)
@pytest.mark.parametrize(
    ("database", "expected"),
    [
        ("parent/US2", "no such folder; the databases in {parent}: MG2, US1"),
        ("missing", "no such folder"),
        (
            "parent",
            "this folder holds the databases MG2, US1; pass one of them (e.g. {parent}/MG2)",
        ),
        ("empty", "not a medssl database (no database.json)"),
    ],
)
def test_database_errors_say_what_the_folder_is(
    db_path, tmp_path, capsys, verb, flag, database, expected
):
    """The check finetune runs (cli/finetune.py check_args), for every verb that opens a
    database: a missing folder, the folder `data build --out` wrote, a folder without one."""
    import shutil

    parent = tmp_path / "parent"
    for name in ("US1", "MG2"):
        shutil.copytree(db_path, parent / name)
    (tmp_path / "empty").mkdir()
    path = tmp_path / database
    extra = ["--out", str(tmp_path / "run"), *FAST] if verb[0] == "pretrain" else []
    assert main([*verb, str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {flag}: {expected.format(parent=parent)}" in err, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()  # checked before anything is written


def test_database_without_pretraining_images(tmp_path, capsys):
    db = phantom_db(n_pre=4, n_pre_val=4)  # every pretraining image in val: no train split
    path = save_db(db, tmp_path / "db")
    assert (
        main(
            [
                "pretrain",
                "--method",
                "simclr",
                "--database",
                path,
                "--out",
                str(tmp_path / "x"),
                *FAST,
            ]
        )
        == 2
    )
    assert "no pretraining" in capsys.readouterr().err


def tv_resnet18_1ch() -> torch.nn.Module:
    tv = torchvision.models.resnet18(weights=None)
    tv.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    del tv.fc
    return tv


# SimCLR, MoCo and BYOL run end to end in the tests above; every other method gets a smoke run.
SMOKE = [name for name in method_names() if name not in ("simclr", "moco", "byol")]


@pytest.mark.slow
@pytest.mark.parametrize("name", SMOKE)
def test_smoke_pretraining_exports_a_torchvision_and_smp_encoder(db_path, tmp_path, name):
    import segmentation_models_pytorch as smp

    out = tmp_path / name
    argv = ["pretrain", "--method", name, "--database", db_path, "--out", str(out)]
    assert main([*argv, "--set", "trainer.epochs=1", *FAST]) == 0
    state = torch.load(out / "encoder.pt", weights_only=True)
    tv_resnet18_1ch().load_state_dict(state, strict=True)
    unet = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    unet.encoder.load_state_dict(state, strict=True)
    row = read_csv(out / "metrics.csv")[-1]
    for key in ("train_loss", "knn_bacc", "collapse_std", "alignment", "uniformity"):
        assert np.isfinite(float(row[key])), key
    assert (out / "health.png").is_file() and "health" in read_json(out / "done.json")


@pytest.mark.slow
def test_random_init_reading_is_the_runs_initial_encoder(db_path, tmp_path, monkeypatch):
    """The reading before training is the monitor's reading of the weights the run starts
    from; a run stopped by a TrainingError still leaves its health readable."""
    from medssl.errors import TrainingError
    from medssl.tasks import pretrain

    def stop(score, threshold, *, epoch):
        raise TrainingError("stopped for the test")

    monkeypatch.setattr(pretrain, "check_collapse", stop)
    out = tmp_path / "r"
    with pytest.raises(TrainingError, match="stopped for the test"):
        pretrain.run_pretraining(
            db_path,
            out,
            method="simclr",
            epochs=2,
            device="cpu",
            overrides=[
                "batch_size=8",
                "augmentation_options.size=32",
                "trainer.progress_bar=false",
                "health.every=2",  # the first read (and the stop) after epoch 0
            ],
        )
    db = Database.load(db_path)
    _, images, labels, groups = read_images(db)
    torch.manual_seed(0)  # the run's seed, taken just before it builds the encoder
    expected, _ = HealthMonitor(torch.from_numpy(images), labels, groups, size=32)(build_encoder())
    saved = read_json(out / "random_init.json")
    for key in ("knn_bacc", "linear_bacc"):
        assert saved[key] == pytest.approx(expected[key], abs=1e-6)
    assert (out / "health.png").is_file() and not (out / "done.json").exists()
    health = pretrain.run_health(out)
    assert health.epochs == 1 and health.random_knn == pytest.approx(expected["knn_bacc"])


def test_thesis_and_medssl_presets_resolve_to_their_sources():
    """The thesis preset is thesis §5.2 (Adam 0.014, weight decay 1e-6, no schedule, SimCLR
    at 0.07, MoCo with 16,384 keys at 0.999 and a BN head); medssl's is lightly's SGD recipe
    with the small-data method settings of presets/pretrain_medssl.yaml."""
    from medssl.tasks.pretrain_config import resolve_config

    thesis = resolve_config("simclr", preset="thesis")
    assert (thesis.pretrain_pool, thesis.steps, thesis.trainer.epochs) == ("pretrain", None, 100)
    assert (thesis.optimizer.name, thesis.optimizer.lr, thesis.optimizer.weight_decay) == (
        "adam",
        0.014,
        1e-6,
    )
    assert thesis.optimizer.schedule == "constant" and thesis.method_options.temperature == 0.07
    moco = resolve_config("moco", preset="thesis").method_options
    assert (moco.queue_size, moco.momentum, moco.batch_norm) == (16384, 0.999, True)
    medssl = resolve_config("moco")  # the default preset
    assert medssl.optimizer.name == "sgd" and medssl.optimizer.schedule == "cosine"
    opts = medssl.method_options
    assert (opts.temperature, opts.momentum, opts.momentum_end) == (0.2, 0.99, 1.0)
    assert opts.queue_fraction == 0.5 and opts.batch_norm is False
    assert resolve_config("byol").method_options.momentum_end == 1.0


def test_options_stay_typed_until_the_config_is_saved():
    """resolve_config holds the method's Config and the AugmentConfig; the saved form (what
    config.yaml holds and run ids hash) is their mapping, as when the options were dicts, and
    a merged (mapping) config resolves to the same typed options again."""
    import dataclasses

    from medssl.config import merge
    from medssl.data.augment import AugmentConfig
    from medssl.ssl.moco import MoCo
    from medssl.tasks.pretrain_config import fit_to_data, resolve_config, saved_config

    cfg = resolve_config("moco", preset="thesis", overrides=["augmentation_options.size=32"])
    assert isinstance(cfg.method_options, MoCo.Config)
    assert cfg.augmentation_options == dataclasses.replace(AugmentConfig(), size=32)
    saved = saved_config(cfg)
    assert saved["method_options"] == dataclasses.asdict(cfg.method_options)
    assert saved["augmentation_options"]["crop_scale"] == [0.2, 1.0]  # YAML-ready lists
    again = resolve_config(cfg=merge(cfg, {"seed": 1}))
    assert isinstance(again.method_options, MoCo.Config) and saved_config(again) == {
        **saved, "seed": 1, "trainer": {**saved["trainer"], "seed": 1}
    }  # fmt: skip
    # medssl's MoCo bounds its queue by half the pretraining images, in whole batches
    medssl = resolve_config("moco", overrides=["batch_size=16"])
    fitted = fit_to_data(medssl, n_train=100)
    assert isinstance(fitted.method_options, MoCo.Config)
    assert fitted.method_options == dataclasses.replace(medssl.method_options, queue_size=48)


def test_the_budget_is_in_steps_and_one_budget_is_asked_for():
    """steps gives the epochs of the pool's full batches (rounded up); an epochs budget given
    by --epochs or --set trainer.epochs replaces a preset's steps; both at once is an error."""
    from medssl.errors import ConfigError
    from medssl.tasks.pretrain_config import budget, fit_to_data, read_epochs, resolve_config

    cfg = resolve_config("simclr", overrides=["steps=100", "batch_size=8"])
    assert budget(cfg, 100) == (9, 12)  # 12 steps an epoch (4 images dropped): 9 x 12 >= 100
    assert fit_to_data(cfg, 100).trainer.epochs == 9
    by_epochs = resolve_config("simclr", overrides=["steps=100", "batch_size=8"], epochs=3)
    assert by_epochs.steps is None and budget(by_epochs, 100) == (3, 12)
    by_set = resolve_config("simclr", overrides=["trainer.epochs=4"])
    assert by_set.steps is None and by_set.trainer.epochs == 4
    with pytest.raises(ConfigError, match="both steps .* and trainer.epochs"):
        resolve_config("simclr", overrides=["steps=50", "trainer.epochs=4"])
    with pytest.raises(ConfigError, match="steps: expected >= 1"):
        resolve_config("simclr", overrides=["steps=0"])
    with pytest.raises(ConfigError, match="larger than the 6 images of the pretraining pool"):
        budget(cfg, 6)
    # reads: after the epoch that crosses each multiple of `every` steps, and the last epoch
    assert read_epochs(12, 9, 25) == {2, 4, 6, 8}  # steps 36, 60, 84, 108
    assert read_epochs(4, 5, 100) == {4} and read_epochs(200, 3, 100) == {0, 1, 2}
