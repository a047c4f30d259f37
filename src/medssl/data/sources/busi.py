"""BUSI — Breast Ultrasound Images Dataset (Al-Dhabyani et al., Data in Brief 28:104863, 2020).

Layout (``docs/datasets.md``)::

    Dataset_BUSI_with_GT/
      benign/     benign (1).png  benign (1)_mask.png  benign (4)_mask_1.png ...
      malignant/  ...
      normal/     normal (1).png  normal (1)_mask.png   (masks all zero)

or, in some copies, ``<class>/images/`` and ``<class>/mask/`` subfolders (mask files named
like the image, or with the ``_mask`` suffix). Class folder names are matched in any case.

Multi-mask images (``_mask_1``, ``_mask_2``: several lesions). Option ``multi_mask``:
``exclude`` (default, the thesis: kept for pretraining only, ``has_mask=False``) or ``union``
(masks OR-ed). A benign/malignant image without a mask is an error (or skipped when
lenient); a normal image without one gets an all-zero mask. No patient ids are published.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl.data.imaging import load_image_and_masks
from medssl.data.records import CLASSES, Record
from medssl.data.sources import Source, register_source
from medssl.data.synth.files import save_image, save_mask
from medssl.data.synth.ultrasound import phantom_size, render_ultrasound
from medssl.errors import ConfigError, DataError

_MASK = re.compile(r"^(?P<stem>.+?)_mask(_\d+)?$", re.IGNORECASE)
_IGNORED_DIRS = ("__macosx",)


def _class_dirs(folder: Path) -> dict[str, Path]:
    return {
        p.name.lower(): p
        for p in sorted(folder.iterdir())
        if p.is_dir() and p.name.lower() in CLASSES
    }


@dataclass(frozen=True)
class BUSIOptions:
    # an image with several lesion masks: left out (exclude), or one mask, their union (union)
    multi_mask: str = "exclude"


@register_source("busi")
class BUSI(Source):
    modality = "us"
    Options = BUSIOptions

    def records(self) -> list[Record]:
        policy = self.opts.multi_mask
        if policy not in ("exclude", "union"):
            raise ConfigError(f"busi: option multi_mask={policy!r}; valid: 'exclude', 'union'")
        top = self.locate(
            lambda p: bool(_class_dirs(p)), "a BUSI folder with benign/ malignant/ normal/"
        )
        for p in sorted(top.iterdir()):
            if p.is_dir() and p.name.lower() not in CLASSES and not _ignored(p):
                self.problem(
                    DataError(
                        f"folder {p.name!r} maps to no class; BUSI class folders are {', '.join(CLASSES)}",
                        file=str(p),
                    )
                )
        out: list[Record] = []
        for label, folder in _class_dirs(top).items():
            image_dir, mask_dir = folder, folder
            if (folder / "images").is_dir():
                image_dir = folder / "images"
                mask_dir = next(
                    (folder / n for n in ("mask", "masks") if (folder / n).is_dir()), image_dir
                )
            masks = _masks_by_stem(mask_dir, split=mask_dir != image_dir)
            for image in sorted(
                p for p in image_dir.iterdir() if _is_png(p) and not _MASK.match(p.stem)
            ):
                record = self._record(image, label, masks.get(image.stem.lower(), []), policy)
                if record is not None:
                    out.append(record)
        return sorted(out, key=lambda r: r.file)

    def _record(self, image: Path, label: str, masks: list[Path], policy: str) -> Record | None:
        if not masks and label != "normal":
            self.problem(
                DataError(
                    f"{label} image without its mask; expected {image.stem}_mask.png beside it",
                    file=str(image),
                )
            )
            return None
        multi = len(masks) > 1
        with_mask = not multi or policy == "union"
        return Record(
            source=self.name,
            file=self._rel(image),
            label=label,
            modality=self.modality,
            patient=None,
            mask_files=tuple(self._rel(m) for m in masks),
            loader=functools.partial(
                load_image_and_masks, image, tuple(masks), with_mask=with_mask
            ),
            has_mask=with_mask,
            multi_mask=multi,
        )

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    @classmethod
    def write_phantoms(
        cls,
        root: Path,
        counts: dict[str, int],
        stream,
        *,
        scale: float = 1.0,
        multi_mask: float = 0.03,
    ) -> Path:
        """``Dataset_BUSI_with_GT/<class>/<class> (i).png`` + ``<class> (i)_mask.png`` (and
        ``_mask_1`` ...); ``multi_mask``: share of lesion images with several lesions, one
        mask file each."""
        base = root / "Dataset_BUSI_with_GT"
        for ci, label in enumerate(("benign", "malignant", "normal")):
            folder = base / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(1, counts[label] + 1):
                rng = stream(ci, i)
                several = label != "normal" and rng.random() < multi_mask
                n = 1 + int(rng.integers(1, 3)) if several else 1
                rgb, masks = render_ultrasound(
                    rng, label, size=phantom_size(rng, scale), n_lesions=n
                )
                save_image(folder / f"{label} ({i}).png", rgb)
                for k, m in enumerate(masks or [np.zeros(rgb.shape[:2], dtype=bool)]):
                    suffix = "_mask" if k == 0 else f"_mask_{k}"
                    save_mask(folder / f"{label} ({i}){suffix}.png", m)
        return base


def _masks_by_stem(folder: Path, *, split: bool) -> dict[str, list[Path]]:
    """image stem (lower case) -> its mask files, sorted; ``split``: masks may share the image's name."""
    out: dict[str, list[Path]] = {}
    for p in sorted(folder.iterdir()):
        if not _is_png(p):
            continue
        m = _MASK.match(p.stem)
        if m:
            out.setdefault(m.group("stem").lower(), []).append(p)
        elif split:
            out.setdefault(p.stem.lower(), []).append(p)
    return out


def _is_png(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() == ".png" and not p.name.startswith(".")


def _ignored(p: Path) -> bool:
    return p.name.startswith(".") or p.name.lower() in _IGNORED_DIRS
