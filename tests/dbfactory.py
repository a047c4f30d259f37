"""Small in-memory databases that several test modules train on, and the writer that puts one
on disk in the artifact format of :mod:`medssl.data.database` (plain functions, imported like
``contracts``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medssl.data.database import Database, write_database


def phantom(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Grey image whose class is a shape (1: bright disc, 2: dark ring, 0: none) under a strong
    nuisance (grey level, gradient, speckle) that the augmentations teach an encoder to ignore."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = (
        rng.uniform(0.1, 0.8)
        + rng.uniform(-0.3, 0.3) * (xx - 0.5)
        + rng.normal(0, 0.05, (size, size))
    )
    cx, cy = rng.uniform(0.3, 0.7, 2)
    d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    r = rng.uniform(0.15, 0.25)
    if label == 1:
        img = img + 0.3 * (d < r) - 0.3 * ((d >= r) & (d < 1.4 * r))
    elif label == 2:
        img = img - 0.3 * (np.abs(d - r) < 0.05) + 0.3 * (np.abs(d - 0.6 * r) < 0.05)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def phantom_db(n_pre=20, n_ft=12, seed=0, n_pre_val=4) -> Database:
    rng = np.random.default_rng(seed)
    pre = np.stack([phantom(int(y), 110, rng) for y in rng.integers(0, 3, n_pre)])
    ft_y = np.arange(n_ft) % 3
    ft = np.stack([phantom(int(y), 64, rng) for y in ft_y])
    return Database.from_arrays(
        pretrain=pre,
        pretrain_split=["train"] * (n_pre - n_pre_val) + ["val"] * n_pre_val,
        finetune=ft,
        finetune_masks=np.zeros_like(ft),
        finetune_labels=ft_y,
        finetune_split=["train" if i < n_ft // 2 else "val" for i in range(n_ft)],
        name="phantoms",
    )


def make_db(
    n_train: int = 16,
    n_val: int = 8,
    n_test: int = 8,
    seed: int = 0,
    name: str = "tiny",
    size: int = 64,
) -> Database:
    """A learnable phantom database: per split ``n`` images per class (``size`` px, uint8).

    normal: speckle only (empty mask); benign: a bright disk; malignant: a dark disk.
    Masks are the disks. Pretraining role: 4 blank images. (End-to-end tests use size 32 to
    stay fast on small CPUs; nothing in fine-tuning depends on the 64 px of real databases.)
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    k = size / 64
    images, masks, labels, split = [], [], [], []
    for s, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        for i in range(3 * n):
            y = i % 3
            img = rng.normal(100, 18, (size, size))
            mask = np.zeros((size, size), np.uint8)
            if y > 0:
                r = rng.uniform(7, 13) * k
                cy, cx = rng.uniform(16 * k, 48 * k, 2)
                mask = (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).astype(np.uint8)
                img[mask == 1] = rng.normal(200 if y == 1 else 15, 12, int(mask.sum()))
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            masks.append(mask)
            labels.append(y)
            split.append(s)
    return Database.from_arrays(
        pretrain=np.zeros((4, 110, 110), np.uint8),
        pretrain_split=["train", "train", "train", "val"],
        finetune=np.stack(images),
        finetune_masks=np.stack(masks),
        finetune_labels=labels,
        finetune_split=split,
        name=name,
    )


def save_db(db: Database, path: Path) -> str:
    """Write ``db`` to the folder ``path`` (created if missing) as `medssl data build` would,
    check that it loads with the same checksum, and return the folder."""
    path.mkdir(parents=True, exist_ok=True)
    write_database(path, db)
    assert Database.load(path).checksum == db.checksum
    return str(path)
