"""Fine-tuning data selection (splits, masks, overrides) on dbfactory's tiny phantom database."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dbfactory import make_db, save_db
from medssl.data.database import Database
from medssl.data.labelled import finetune_splits
from medssl.errors import ConfigError, DataError
from medssl.tasks.finetune import (
    load_preset,
    preset_names,
    resolve_config,
    resolve_init,
)


def test_splits_follow_the_manifest():
    db = make_db(2, 1, 1)
    splits, excluded = finetune_splits(db, needs_masks=False)
    assert excluded == 0
    assert {s: len(d) for s, d in splits.items()} == {"train": 6, "val": 3, "test": 3}
    assert splits["train"].labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert splits["val"].ids == ["f6", "f7", "f8"]
    assert splits["train"].images.shape == (6, 64, 64) and splits["train"].masks.dtype == np.uint8


def test_split_override():
    db = make_db(2, 1, 1)
    splits, _ = finetune_splits(
        db, needs_masks=False, split_override={"train": [0, 1, 2, 9], "val": [3, 4, 5], "test": [6]}
    )
    assert splits["train"].rows.tolist() == [0, 1, 2, 9] and splits["test"].rows.tolist() == [6]
    with pytest.raises(ConfigError, match="two splits"):
        finetune_splits(db, needs_masks=False, split_override={"train": [0, 1], "val": [1]})
    with pytest.raises(ConfigError, match="not finetuning rows"):
        finetune_splits(db, needs_masks=False, split_override={"train": [0, 99], "val": [1]})


def test_segmentation_excludes_images_without_mask():
    db = make_db(2, 1, 1)
    no_mask = [
        dataclasses.replace(r, has_mask=False) if r.role == "finetune" and r.index in (0, 1) else r
        for r in db.manifest
    ]
    db = dataclasses.replace(db, manifest=no_mask)
    splits, excluded = finetune_splits(db, needs_masks=True, task="segmentation")
    assert excluded == 2 and len(splits["train"]) == 4
    db = dataclasses.replace(
        db, manifest=[dataclasses.replace(r, has_mask=False) for r in db.manifest]
    )
    with pytest.raises(
        DataError, match=r"database 'tiny'.*12 finetuning images lack a lesion mask"
    ):
        finetune_splits(db, needs_masks=True, task="segmentation")


def test_saved_database_loads_the_same(tmp_path):
    db = make_db(1, 1, 1, size=32)
    loaded = Database.load(save_db(db, tmp_path / "db"))
    assert loaded.labels().tolist() == db.labels().tolist() and loaded.images("finetune").shape == (
        9,
        32,
        32,
    )


def test_presets_and_overrides(tmp_path):
    assert {"thesis", "demo"} <= set(preset_names())
    thesis = load_preset("thesis")
    assert thesis.optimizer.name == "adam" and thesis.optimizer.lr == 1e-4
    assert (
        thesis.optimizer.weight_decay == 1e-6
        and thesis.batch_size == 64
        and thesis.trainer.epochs == 100
    )
    assert thesis.class_weighting is False
    cfg = resolve_config(preset="demo", overrides=["optimizer.lr=0.01", "trainer.epochs=2"])
    assert cfg.optimizer.lr == 0.01 and cfg.trainer.epochs == 2
    assert cfg.trainer.monitor == "val_mcc" and cfg.trainer.seed == cfg.seed
    with pytest.raises(ConfigError, match="unknown fine-tuning preset 'nope'.*demo"):
        load_preset("nope")
    with pytest.raises(ConfigError, match="unknown key"):
        resolve_config(overrides=["learning_rate=1"])
    with pytest.raises(ConfigError, match="optimizer.name: .lbfgs. is not one of adam"):
        resolve_config(overrides=["optimizer.name=lbfgs"])
    assert resolve_config(overrides=["figure_splits=[test]"]).figure_splits == ["test"]
    assert thesis.augmentation == "none"  # thesis §5.3: supervised images unaltered
    with pytest.raises(ConfigError, match="fine-tuning augmentation preset 'wild'"):
        resolve_config(overrides=["augmentation=wild"])
    with pytest.raises(ConfigError, match="augmentation_options.*unknown key"):
        resolve_config(overrides=["augmentation_options.shear=3"])
    with pytest.raises(ConfigError, match=r"figure_splits: unknown split\(s\) \['tset'\]"):
        resolve_config(overrides=["figure_splits=[tset]"])
    with pytest.raises(ConfigError, match="no such file or folder"):
        resolve_init(tmp_path / "missing.pt")


def test_train_batches_never_end_with_a_single_image():
    """BatchNorm cannot train on one image: a last batch of one joins the batch before it."""
    from medssl.data.augment import SUPERVISED_AUGMENTATIONS
    from medssl.data.batches import TrainBatches

    def sizes(n, batch):
        data = {"x": torch.zeros(n, 1, 4, 4), "y": torch.zeros(n, dtype=torch.long)}
        batches = TrainBatches(
            data, batch, seed=0, epoch=0, augment=SUPERVISED_AUGMENTATIONS.get("flip")
        )
        got = [len(b["y"]) for b in batches]
        assert len(got) == len(batches)
        return got

    assert sizes(17, 8) == [8, 9]
    assert sizes(16, 8) == [8, 8]
    assert sizes(18, 8) == [8, 8, 2]
    assert sizes(9, 16) == [9]


def test_supervised_augmentation_moves_image_and_mask_together():
    """One geometry for an image and its mask: a bright square and its mask stay aligned and
    the mask stays binary; 'none' is the identity; the stream is a function of (seed, epoch)."""
    from medssl.data.augment import SUPERVISED_AUGMENTATIONS, augment_supervised
    from medssl.data.batches import TrainBatches

    x = torch.full((8, 1, 32, 32), -1.0)
    x[:, :, 8:20, 10:22] = 1.0
    mask = ((x + 1) / 2).round()
    light = SUPERVISED_AUGMENTATIONS.get("light")
    g = torch.Generator().manual_seed(0)
    xa, ma = augment_supervised(x, mask, light, g)
    assert set(ma.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(xa, x)
    inside = xa[ma.bool()]
    outside = xa[~ma.bool()]
    assert inside.mean() > 0.5 > outside.mean()  # the mask still covers the bright square
    same = augment_supervised(x, mask, SUPERVISED_AUGMENTATIONS.get("none"), g)
    assert torch.equal(same[0], x) and torch.equal(same[1], mask)
    data = {"x": x, "mask": mask}
    a = [b["x"] for b in TrainBatches(data, 4, seed=1, epoch=2, augment=light)]
    b = [b["x"] for b in TrainBatches(data, 4, seed=1, epoch=2, augment=light)]
    c = [b["x"] for b in TrainBatches(data, 4, seed=1, epoch=3, augment=light)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))
