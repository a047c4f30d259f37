"""The pretraining pool (data.pool): the role alone, or the role plus the finetuning train
split, never a validation or test image (by content), recorded in the run; database.json
untouched."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import yaml

from dbfactory import make_db, save_db
from medssl.artifacts import read_json
from medssl.data.database import Database
from medssl.data.pool import pool_size, pretraining_pool, read_images, resize
from medssl.errors import ConfigError
from medssl.tasks.benchmark import fold_splits


def _hashes(images: np.ndarray) -> set[str]:
    return {hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images}


@pytest.fixture(scope="module")
def db():
    """make_db's 64-px finetuning images (train 9, val 6, test 6) and 4 blank pretraining
    images (3 train); train image 0 is made a copy of test image 0 (a duplicate across
    splits, as a source that ships one image twice would give)."""
    d = make_db(n_train=3, n_val=2, n_test=2, size=64)
    finetune = d.arrays["finetune"].copy()
    train, test = d.indices("finetune", "train"), d.indices("finetune", "test")
    finetune[train[0]] = finetune[test[0]]
    rows = d.rows("finetune")
    return Database.from_arrays(
        pretrain=np.random.default_rng(0).integers(0, 255, (4, 110, 110)),
        pretrain_split=["train", "train", "train", "val"], finetune=finetune,
        finetune_masks=d.arrays["finetune_masks"], finetune_labels=d.labels("finetune"),
        finetune_split=[r.split for r in rows], name="pool",
    )  # fmt: skip


def test_pretrain_pool_is_the_pretraining_role_alone(db):
    pool = pretraining_pool(db, "pretrain")
    assert np.array_equal(pool.images, db.images("pretrain", "train"))
    assert len(pool.train_rows) == 0 and pool.left_out == 0
    assert pool_size(db, "pretrain") == len(pool.images) == 3


def test_pretrain_plus_train_adds_the_train_split_and_never_a_val_or_test_image(db):
    pool = pretraining_pool(db, "pretrain+train")
    train = db.indices("finetune", "train")
    # the role, then every train image but the duplicate of a test image, resized to 110 px
    assert np.array_equal(pool.images[:3], db.images("pretrain", "train"))
    assert pool.left_out == 1 and list(pool.train_rows) == list(train[1:])
    assert np.array_equal(pool.images[3:], resize(db.arrays["finetune"][train[1:]], 110))
    assert pool.images.shape == (3 + 8, 110, 110) and pool_size(db, "pretrain+train") == 11
    # by content: no pool image is a validation or test image (at the pool's size)
    held = np.concatenate([db.images("finetune", "val"), db.images("finetune", "test")])
    assert not _hashes(pool.images) & _hashes(resize(held, 110))
    assert not set(pool.train_rows) & set(db.indices("finetune", "val"))
    assert not set(pool.train_rows) & set(db.indices("finetune", "test"))
    assert pool.describe() == {
        "pool": "pretrain+train", "images": 11, "pretrain_images": 3,
        "finetune_train_images": 8, "left_out_as_duplicates_of_val_or_test": 1,
    }  # fmt: skip


def test_the_pool_follows_a_folds_split(db):
    split = fold_splits(db, 3, 0, 1)
    pool = pretraining_pool(db, "pretrain+train", split)
    train = [i for i, s in enumerate(split) if s == "train"]
    held = [i for i, s in enumerate(split) if s != "train"]
    assert set(pool.train_rows) <= set(train) and not set(pool.train_rows) & set(held)
    assert not _hashes(pool.images) & _hashes(resize(db.arrays["finetune"][held], 110))


def test_the_health_read_never_sees_the_test_split(db):
    rows, images, labels, groups = read_images(db)
    expected = np.concatenate([db.indices("finetune", "train"), db.indices("finetune", "val")])
    assert sorted(rows) == sorted(expected) and len(images) == len(labels) == len(groups) == 15
    split = fold_splits(db, 3, 0, 0)
    rows, *_ = read_images(db, split)
    assert all(split[r] in ("train", "val") for r in rows)


def test_an_unknown_pool_is_a_named_error(db):
    with pytest.raises(ConfigError, match="pretrain_pool: 'all' is not one of pretrain, "):
        pretraining_pool(db, "all")


@pytest.mark.parametrize("pool", ["pretrain", "pretrain+train"])
def test_the_run_records_its_pool_and_leaves_database_json_alone(db, tmp_path, pool):
    from medssl.tasks.pretrain import run_pretraining

    path = save_db(db, tmp_path / "db")
    before = (tmp_path / "db" / "database.json").read_bytes()
    out = run_pretraining(
        path, tmp_path / "run", method="simclr", device="cpu",
        overrides=[f"pretrain_pool={pool}", "steps=1", "batch_size=2", "trainer.progress_bar=false",
                   "augmentation_options.size=32"],
    )  # fmt: skip
    assert (tmp_path / "db" / "database.json").read_bytes() == before
    assert yaml.safe_load((out / "config.yaml").read_text())["pretrain_pool"] == pool
    done = read_json(out / "done.json")
    assert done["pool"]["pool"] == pool and done["pool"]["images"] == (
        3 if pool == "pretrain" else 11
    )
    # one step asked for: one epoch of the pool's full batches of 2 (1 step, or 5 of 11 images)
    assert done["steps"] == {"pretrain": 1, "pretrain+train": 5}[pool]
