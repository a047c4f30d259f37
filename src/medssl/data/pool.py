"""The unlabeled images pretraining sees (``pretrain_pool``), and the labelled images its health
read may use.

- ``pretrain`` (the thesis, §5.1: disjoint roles): the pretraining role's train split.
- ``pretrain+train``: that, plus the finetuning train split's images with their labels unused —
  standard self-supervised practice (every unlabeled image the protocol allows). Validation
  and test images never: a finetuning image whose content hash (manifest ``sha1``) equals a
  validation or test image's (the source image's ``sha1``, or the stored pixels) is left out
  too, and counted. Under a label fraction the whole
  train split joins (only its labels are subsampled); under K-fold CV the pool follows the
  fold's split (``split``), so each fold needs its own pretraining run.

The finetuning images are stored at the finetuning size F (64 px) and the pretraining images at
P (110 px); the pool holds one array at P, so the finetuning images are resized to P
(bilinear, antialiased) once, before the views are cut from them (the pretraining views are
random resized crops to the view size, ``data.augment``: from an upsampled 64-px image they
carry that image's detail, no more). ``database.json`` and the arrays are never changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from medssl.data.database import Database
from medssl.data.manifest import ManifestRow
from medssl.data.records import CLASSES
from medssl.errors import ConfigError

POOLS = ("pretrain", "pretrain+train")
"""The pretraining pools (``PretrainConfig.pretrain_pool``)."""
HELD_OUT = ("val", "test")
"""The finetuning splits no pool ever holds."""


@dataclass(frozen=True)
class Pool:
    """The images of one pretraining run's pool.

    images: uint8 (N, P, P); ``pretrain_rows`` / ``train_rows``: the rows of ``pretrain.npy``
    and of ``finetune.npy`` they came from; ``left_out``: finetuning train images left out
    because their content equals a validation or test image's.
    """

    pool: str
    images: np.ndarray
    pretrain_rows: np.ndarray
    train_rows: np.ndarray
    left_out: int

    def describe(self) -> dict[str, object]:
        """What a run records of its pool (config.yaml names the setting, done.json this)."""
        return {
            "pool": self.pool,
            "images": int(len(self.images)),
            "pretrain_images": int(len(self.pretrain_rows)),
            "finetune_train_images": int(len(self.train_rows)),
            "left_out_as_duplicates_of_val_or_test": int(self.left_out),
        }


def check_pool(pool: str) -> str:
    if pool not in POOLS:
        raise ConfigError(f"pretrain_pool: {pool!r} is not one of {', '.join(POOLS)}")
    return pool


def finetune_split_names(db: Database, split: Sequence[str] | None = None) -> list[str]:
    """One split name per finetuning row (row order): ``split`` (a fold of K-fold CV) or the
    database's split column."""
    rows = db.rows("finetune")
    names = [str(r.split) for r in rows] if split is None else [str(s) for s in split]
    if len(names) != len(rows):
        raise ConfigError(
            f"pretraining pool: {len(names)} split names for the {len(rows)} finetuning rows of "
            f"database {db.name!r}"
        )
    return names


def pretraining_pool(db: Database, pool: str, split: Sequence[str] | None = None) -> Pool:
    """The pool of ``db`` under ``pool`` (``POOLS``), the finetuning split ``split`` (one name
    per finetuning row; None: the database's split column)."""
    check_pool(pool)
    pre_rows = db.indices("pretrain", "train")
    images = np.asarray(db.arrays["pretrain"][pre_rows])
    train_rows, left_out = _train_rows(db, pool, split)
    if len(train_rows):
        extra = resize(np.asarray(db.arrays["finetune"][train_rows]), images.shape[-1])
        images = np.concatenate([images, extra])
    return Pool(pool, images, pre_rows, train_rows, left_out)


def pool_size(db: Database, pool: str, split: Sequence[str] | None = None) -> int:
    """The number of images :func:`pretraining_pool` gathers, without resizing any."""
    check_pool(pool)
    return len(db.indices("pretrain", "train")) + len(_train_rows(db, pool, split)[0])


def _train_rows(db: Database, pool: str, split: Sequence[str] | None) -> tuple[np.ndarray, int]:
    """(rows of finetune.npy that join the pool, train images left out as duplicates of a
    validation or test image). Content is compared twice: the manifest's ``sha1`` of the
    decoded source image (where the build recorded one) and the stored finetuning pixels."""
    if pool != "pretrain+train":
        return np.zeros(0, dtype=np.int64), 0
    rows = db.rows("finetune")
    names = finetune_split_names(db, split)
    pixels = db.arrays["finetune"]

    def keys(r: ManifestRow) -> set[str]:
        digest = hashlib.sha1(np.ascontiguousarray(pixels[int(r.index)]).tobytes())
        return {f"px:{digest.hexdigest()}"} | ({f"sha1:{r.sha1}"} if r.sha1 else set())

    held: set[str] = set()
    for r, n in zip(rows, names, strict=True):
        if n in HELD_OUT:
            held |= keys(r)
    train = [r for r, n in zip(rows, names, strict=True) if n == "train"]
    keep = [int(r.index) for r in train if not keys(r) & held]
    return np.array(keep, dtype=np.int64), len(train) - len(keep)


def read_images(db: Database, split: Sequence[str] | None = None) -> tuple[np.ndarray, ...]:
    """The health read's labelled images: (finetuning rows, uint8 images (N, F, F), labels
    (N,), patient groups (N,)) of the train and validation splits under ``split``; the test
    split never."""
    rows = db.rows("finetune")
    names = finetune_split_names(db, split)
    chosen = [r for r, n in zip(rows, names, strict=True) if n in ("train", "val")]
    idx = np.array([int(r.index) for r in chosen], dtype=np.int64)
    labels = np.array([CLASSES.index(r.label) for r in chosen], dtype=np.int64)
    groups = np.array([str(r.patient or r.file) for r in chosen])
    return idx, np.asarray(db.arrays["finetune"][idx]), labels, groups


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, S, S) -> uint8 (N, size, size), bilinear with antialiasing (torch), rounded."""
    if images.shape[-1] == size:
        return images
    x = torch.from_numpy(np.ascontiguousarray(images)).float()[:, None]
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
