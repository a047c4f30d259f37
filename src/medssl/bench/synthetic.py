"""The bench's default input: a synthetic database made in memory, thesis-sized.

Speed does not depend on what the pixels show, only on their number and layout, so the images
are cheap smooth grey fields with speckle; the sizes follow the thesis databases (about 1,240
pretraining images of 110 px, about 240 finetuning train images of 64 px, §5.1).
"""

from __future__ import annotations

import numpy as np

from medssl.data.database import Database

PRETRAIN_IMAGES = 1240  # thesis §5.1: ~1,240 pretraining images per database
FINETUNE_TRAIN_IMAGES = 240  # thesis §5.3: ~240 finetuning train images per database


def synthetic_database(
    n_pretrain: int = PRETRAIN_IMAGES,
    n_finetune_train: int = FINETUNE_TRAIN_IMAGES,
    *,
    pretrain_size: int = 110,
    finetune_size: int = 64,
    seed: int = 0,
) -> Database:
    """An in-memory database: ``n_pretrain`` pretraining train images (uint8, S x S), and
    ``n_finetune_train`` finetuning train images plus a quarter as many val images, with
    labels cycling normal/benign/malignant and a disc mask on every image."""
    rng = np.random.default_rng(seed)
    n_val = max(2, n_finetune_train // 4)
    n_ft = n_finetune_train + n_val

    def fields(n: int, size: int) -> np.ndarray:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        level = rng.uniform(0.2, 0.7, (n, 1, 1)).astype(np.float32)
        slope = rng.uniform(-0.3, 0.3, (n, 1, 1)).astype(np.float32)
        speckle = rng.normal(0.0, 0.08, (n, size, size)).astype(np.float32)
        return (np.clip(level + slope * (xx - 0.5) + speckle, 0, 1) * 255).astype(np.uint8)

    yy, xx = np.mgrid[0:finetune_size, 0:finetune_size] / finetune_size
    centres = rng.uniform(0.3, 0.7, (n_ft, 2))
    masks = (
        (xx[None] - centres[:, 0, None, None]) ** 2 + (yy[None] - centres[:, 1, None, None]) ** 2
        < 0.15**2
    ).astype(np.uint8)
    return Database.from_arrays(
        pretrain=fields(n_pretrain, pretrain_size),
        pretrain_split=["train"] * n_pretrain,
        finetune=fields(n_ft, finetune_size),
        finetune_masks=masks,
        finetune_labels=[i % 3 for i in range(n_ft)],
        finetune_split=["train"] * n_finetune_train + ["val"] * n_val,
        name="synthetic",
    )
