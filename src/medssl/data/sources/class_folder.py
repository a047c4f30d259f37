"""Generic class-folder source, with the presets QAMEBI, TBUD and MBUD.

Layout: one folder per class (``Benign/``, ``Malignant/``, sometimes ``Normal/``; names
matched in any case) holding PNG/JPG/BMP/TIFF images, possibly in subfolders. Masks, when
the source ships them, lie beside their image with a suffix (``<stem>_mask.png``,
``<stem>_seg.png``; option ``mask_suffixes``) or under a ``masks/`` (or ``mask/``) folder
beside the image or at the top, with the image's stem (optionally plus the suffix).

Options:
- ``classes``: folder name (any case) -> class, e.g. ``{"benign": "benign", "bening": "benign"}``.
  A folder that maps to nothing is an error (skipped when lenient).
- ``masks``: ``required`` (a benign/malignant image without one is an error; normal images
  get an all-zero mask), ``optional`` (``has_mask`` only where one is found) or ``none``.
- ``mask_suffixes``: file-name suffixes that mark a mask.

Presets (``docs/datasets.md``): ``qamebi`` (Ardakani et al., masks required), ``tbud``
(Thammasat, Rodtook et al.; masks used where present), ``mbud`` (Mendeley, Rodrigues; 100
benign + 150 malignant, no masks). No patient ids are published.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medssl.data.imaging import RASTER_SUFFIXES, load_image_and_masks
from medssl.data.records import CLASSES, Record
from medssl.data.sources import Source, register_source
from medssl.data.synth.files import save_image, save_mask
from medssl.data.synth.ultrasound import phantom_size, render_ultrasound
from medssl.errors import ConfigError, DataError

DEFAULT_CLASSES = {"benign": "benign", "malignant": "malignant", "normal": "normal"}
PHANTOM_STEMS = {
    "qamebi": lambda label, i: f"{label} ({i})",
    "tbud": lambda label, i: f"{label[0].upper()}{i:03d}",
    "mbud": lambda label, i: f"{label}_{i:04d}",
}
"""Phantom file names per preset (how each publisher names its images); others: ``<class>_<i>``."""
_MASK_DIRS = ("masks", "mask")
_IGNORED_DIRS = ("__macosx",)


@dataclass(frozen=True)
class ClassFolderOptions:
    # class folder name (any case) -> class
    classes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CLASSES))
    masks: str = "optional"  # required | optional | none (the publisher ships no masks)
    mask_suffixes: tuple[str, ...] = ("_mask", "_seg")  # <image stem><suffix> is its mask


@register_source("class_folder")
@register_source("qamebi", masks="required")
@register_source("tbud", masks="optional", published=("benign", "malignant"))
@register_source("mbud", masks="none", published=("benign", "malignant"))
class ClassFolder(Source):
    modality = "us"
    Options = ClassFolderOptions

    def records(self) -> list[Record]:
        class_map = self._class_map()
        policy = self.opts.masks
        if policy not in ("required", "optional", "none"):
            raise ConfigError(
                f"{self.name}: option masks={policy!r}; valid: 'required', 'optional', 'none'"
            )
        top = self.locate(
            lambda p: any(c.is_dir() and c.name.lower() in class_map for c in p.iterdir()),
            f"a folder with class folders ({', '.join(sorted(class_map))}, any case)",
        )
        out: list[Record] = []
        for folder in sorted(p for p in top.iterdir() if p.is_dir() and not _ignored(p)):
            label = class_map.get(folder.name.lower())
            if label is None:
                if folder.name.lower() not in _MASK_DIRS:
                    self.problem(
                        DataError(
                            f"class folder {folder.name!r} maps to no class; known folder names: "
                            f"{', '.join(sorted(class_map))} (set option classes to map it)",
                            file=str(folder),
                        )
                    )
                continue
            for image in self._images(folder):
                record = self._record(image, label, top, policy)
                if record is not None:
                    out.append(record)
        return sorted(out, key=lambda r: r.file)

    def _class_map(self) -> dict[str, str]:
        class_map = {str(k).lower(): str(v).lower() for k, v in dict(self.opts.classes).items()}
        bad = sorted(v for v in class_map.values() if v not in CLASSES)
        if bad:
            raise ConfigError(
                f"{self.name}: option classes maps to {bad}; valid classes: {', '.join(CLASSES)}"
            )
        return class_map

    def _is_mask_name(self, stem: str) -> bool:
        return any(stem.lower().endswith(s.lower()) for s in self.opts.mask_suffixes)

    def _images(self, folder: Path) -> list[Path]:
        out = []
        for p in sorted(folder.rglob("*")):
            rel = p.relative_to(folder).parts
            if any(part.lower() in _MASK_DIRS or part.startswith(".") for part in rel[:-1]):
                continue
            if (
                p.is_file()
                and p.suffix.lower() in RASTER_SUFFIXES
                and not p.name.startswith(".")
                and not self._is_mask_name(p.stem)
            ):
                out.append(p)
        return out

    def _find_mask(self, image: Path, top: Path) -> Path | None:
        stems = [image.stem + s for s in self.opts.mask_suffixes]
        candidates = [image.parent / (s + ext) for s in stems for ext in _exts(image)]
        class_dir = image.relative_to(top).parts[0]
        for d in _MASK_DIRS:
            for base in (image.parent / d, top / d / class_dir, top / d):
                candidates += [
                    base / (s + ext) for s in [image.stem, *stems] for ext in _exts(image)
                ]
        return next((c for c in candidates if c.is_file()), None)

    def _record(self, image: Path, label: str, top: Path, policy: str) -> Record | None:
        mask = None if policy == "none" else self._find_mask(image, top)
        if mask is None and policy == "required" and label != "normal":
            suffixes = " or ".join(self.opts.mask_suffixes)
            self.problem(
                DataError(
                    f"{label} image without its required mask; expected {image.stem}{suffixes}"
                    f"{image.suffix} beside it or {image.name} in a masks/ folder",
                    file=str(image),
                )
            )
            return None
        has_mask = mask is not None or (policy == "required" and label == "normal")
        masks = (mask,) if mask is not None else ()
        return Record(
            source=self.name,
            file=image.relative_to(self.root).as_posix(),
            label=label,
            modality=self.modality,
            patient=None,
            mask_files=tuple(m.relative_to(self.root).as_posix() for m in masks),
            loader=functools.partial(load_image_and_masks, image, masks, with_mask=has_mask),
            has_mask=has_mask,
        )

    @classmethod
    def write_phantoms(
        cls, root: Path, counts: dict[str, int], stream, *, scale: float = 1.0
    ) -> Path:
        """Class folders ``Benign/``, ``Malignant/`` (``Normal/``) of PNG/JPG/BMP images, with
        ``<stem>_mask.png`` beside each unless the preset ships no masks (``masks: none``)."""
        name = getattr(cls, "registry_name", "class_folder")
        stem = PHANTOM_STEMS.get(name, lambda label, i: f"{label}_{i}")
        masks = cls.options().masks != "none"
        formats = [("png", "PNG"), ("jpg", "JPEG"), ("bmp", "BMP")]
        for ci, label in enumerate(CLASSES):
            if counts.get(label, 0) == 0:
                continue
            folder = root / label.capitalize()
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(1, counts[label] + 1):
                rng = stream(ci, i)
                rgb, lesions = render_ultrasound(rng, label, size=phantom_size(rng, scale))
                ext, fmt = formats[int(rng.choice(3, p=[0.5, 0.3, 0.2]))]
                save_image(folder / f"{stem(label, i)}.{ext}", rgb, fmt)
                if masks:
                    m = lesions[0] if lesions else np.zeros(rgb.shape[:2], dtype=bool)
                    save_mask(folder / f"{stem(label, i)}_mask.png", m)
        return root


def _exts(image: Path) -> list[str]:
    """Mask extensions to try: the image's own first, then the usual raster ones."""
    own = image.suffix
    return [own] + [e for e in (".png", ".bmp", ".jpg", ".tif") if e != own.lower()]


def _ignored(p: Path) -> bool:
    return p.name.startswith(".") or p.name.lower() in _IGNORED_DIRS
