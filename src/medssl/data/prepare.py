"""One drawn record, loaded, checked and preprocessed for its role.

The loaded image must be 2-D grey with a mask of its own size; a mammogram is cropped to the
breast when the recipe asks (:func:`medssl.data.preprocess.breast_box`); the finetuning view
is padded to square and resized with its mask, the pretraining view resized. The content hash
and fingerprint of the full image (:mod:`medssl.data.dedupe`) let the builder find duplicates.
A finetuning image labelled benign/malignant whose mask is empty after loading (INbreast
calcification-only findings) is marked ``empty_lesion``: stored with ``has_mask = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medssl.data.dedupe import content_hash, fingerprint
from medssl.data.preprocess import Box, MaskResize, breast_box, finetune_view, pretrain_view
from medssl.data.recipe import Recipe
from medssl.data.records import Loaded, Record, Skipped
from medssl.errors import DataError


@dataclass
class Prepared:
    """A drawn record, loaded and preprocessed for its role."""

    image: np.ndarray  # uint8 (S, S)
    mask: MaskResize | None  # finetuning images whose record has a mask
    orig_size: tuple[int, int]  # size of the region padded and resized (the image or its crop)
    spacing: tuple[float, float] | None  # (row, column) mm per original pixel
    empty_lesion: bool  # labelled benign/malignant, but the loaded mask is empty
    sha1: str
    fingerprint: np.ndarray
    crop: Box | None = None  # the breast crop of a mammogram (recipe crop: breast)
    crop_widened: bool = False  # the lesion mask reached outside the breast and widened it


def prepare(
    rec: Record, role: str, recipe: Recipe, lenient: bool, skipped: list[Skipped]
) -> Prepared | None:
    """``rec`` prepared for ``role``; None when it cannot be loaded and ``lenient`` (the reason
    appended to ``skipped``), else a DataError naming its source and file."""
    loaded = _load(rec, lenient, skipped)
    if loaded is None:
        return None
    full = loaded.image
    raw = None
    if role == "finetune" and rec.has_mask:
        raw = loaded.mask if loaded.mask is not None else np.zeros(full.shape, dtype=bool)
    box, widened = None, False
    image = full
    if recipe.crop == "breast" and rec.modality == "mg":
        box, widened = breast_box(full, raw)
        image, raw = box.crop(full), None if raw is None else box.crop(raw)
    mask, empty_lesion = None, False
    if role == "finetune":
        empty_lesion = raw is not None and rec.label != "normal" and not raw.any()
        img, mask = finetune_view(image, raw, recipe.sizes.finetune)
    else:
        img = pretrain_view(image, recipe.sizes.pretrain, pad=recipe.pad_pretrain)
    return Prepared(
        image=img,
        mask=mask,
        orig_size=tuple(image.shape),
        spacing=loaded.spacing,
        empty_lesion=empty_lesion,
        sha1=content_hash(full),
        fingerprint=fingerprint(full),
        crop=box,
        crop_widened=widened,
    )


def _load(rec: Record, lenient: bool, skipped: list[Skipped]) -> Loaded | None:
    try:
        loaded = rec.load()
        if loaded.image.ndim != 2:
            raise DataError(
                f"expected a 2-D grey image, got shape {loaded.image.shape}", file=rec.file
            )
        if loaded.mask is not None and loaded.mask.shape != loaded.image.shape:
            raise DataError(
                f"mask size {loaded.mask.shape} differs from image size {loaded.image.shape}",
                file=rec.file,
            )
    except DataError as e:
        if not lenient:
            raise DataError(f"{rec.source}: {e}") from None
        skipped.append(Skipped(rec.source, rec.file, e.reason))
        return None
    return loaded
