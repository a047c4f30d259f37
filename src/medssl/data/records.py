"""What a source reader yields: one :class:`Record` per image, loaded lazily.

Readers only parse layouts and label sheets; pixels are read when the database builder asks
for them (``record.load()``), so quotas can be drawn before thousands of large DICOMs are
decoded. Every loading error is a :class:`medssl.errors.DataError` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

CLASSES: tuple[str, ...] = ("normal", "benign", "malignant")
"""The three classes everywhere, in label-index order (0 normal, 1 benign, 2 malignant)."""

MODALITIES: tuple[str, ...] = ("us", "mg")
"""Ultrasound and mammography."""


@dataclass(frozen=True)
class Loaded:
    """Pixels of one record.

    image:   (H, W) float32 grey in [0, 1] (display convention: high = bright).
    mask:    (H, W) bool lesion mask, or ``None`` when the source publishes none.
    spacing: (row, column) spacing in mm of the image's own pixels, from the DICOM header
             (:func:`medssl.data.imaging.dicom_spacing`), or ``None`` when unknown.
    """

    image: np.ndarray
    mask: np.ndarray | None
    spacing: tuple[float, float] | None = None


@dataclass(frozen=True)
class Record:
    source: str  # registry name of the reader, e.g. "busi"
    file: str  # image path relative to the source root (as published)
    label: str  # one of CLASSES
    modality: str  # one of MODALITIES
    patient: str | None  # published patient id, or None
    mask_files: tuple[str, ...]  # mask paths relative to the root; () when none is published
    loader: Callable[[], Loaded] = field(repr=False, compare=False)
    has_mask: bool = False  # the loader returns a mask (all-zero for normal images)
    multi_mask: bool = False  # several lesion masks (BUSI _mask_1, _mask_2 ...)
    extra: tuple[tuple[str, str], ...] = ()  # source-specific facts, e.g. (("birads", "4a"),)
    # labelled normal by a source option although the image shows a finding (CBIS-DDSM's
    # BENIGN_WITHOUT_CALLBACK read as normal): pretraining may use it, finetuning never does
    normal_with_finding: bool = False
    # the mask is an approximate region, not an outline (mini-MIAS circles, when asked for)
    coarse_mask: bool = False

    def load(self) -> Loaded:
        return self.loader()


@dataclass(frozen=True)
class Skipped:
    """An item a lenient reader or builder left out, with its reason (kept in the manifest)."""

    source: str
    file: str
    reason: str
