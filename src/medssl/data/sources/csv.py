"""Bring your own dataset: a CSV file with one row per image (``docs/datasets.md``, "Your own
dataset").

Columns (header row required, names in any case, in any order; others are ignored):

- ``image``: the image file (PNG, JPEG, BMP, PGM, TIFF or DICOM);
- ``label``: ``normal``, ``benign`` or ``malignant`` (any case; option ``classes`` maps
  other names, e.g. ``{b: benign, m: malignant}``);
- ``mask`` (optional): the lesion mask, or several separated by ``;`` (their union is the
  mask); empty for none. A normal image without one gets an all-zero mask; a lesion image
  without one serves classification and pretraining only (``has_mask`` false);
- ``patient`` (optional): the patient id; empty or absent: each image is its own patient;
- ``modality`` (optional): ``us`` or ``mg``; empty or absent: option ``modality``.

Paths are resolved against the CSV file's folder unless absolute. ``--root csv=`` takes the
CSV file, or a folder holding exactly one ``.csv`` file. Every bad row is named in one error
(its row number as a spreadsheet shows it, and what is wrong), or skipped and counted with
``--lenient``.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medssl.data.imaging import IMAGE_SUFFIXES, load_image_and_masks
from medssl.data.records import CLASSES, MODALITIES, Record, Skipped
from medssl.data.sources import Source, register_source
from medssl.data.synth.files import save_image, save_mask, write_text
from medssl.data.synth.stream import labels_in_order
from medssl.data.synth.ultrasound import phantom_size, render_ultrasound
from medssl.errors import ConfigError, DataError

REQUIRED = ("image", "label")
OPTIONAL = ("mask", "patient", "modality")
MASK_SEPARATOR = ";"


@dataclass(frozen=True)
class CSVOptions:
    classes: dict[str, str] = field(default_factory=dict)  # label in the sheet -> class
    modality: str = "us"  # of rows whose sheet names none


@register_source("csv")
class CSVSource(Source):
    modality = "us"
    Options = CSVOptions
    root_may_be_file = True

    def records(self) -> list[Record]:
        sheet = self._sheet()
        classes = {c: c for c in CLASSES}
        classes.update({str(k).lower(): str(v).lower() for k, v in dict(self.opts.classes).items()})
        bad = sorted(v for v in set(classes.values()) if v not in CLASSES)
        if bad or self.opts.modality not in MODALITIES:
            raise ConfigError(
                f"csv: options classes must map to {', '.join(CLASSES)} and modality be one of "
                f"{', '.join(MODALITIES)}; got classes {dict(self.opts.classes)}, modality "
                f"{self.opts.modality!r}"
            )
        rows = _read(sheet)
        out: list[Record] = []
        problems: list[tuple[int, str]] = []
        seen: dict[str, int] = {}
        for row_no, row in rows:
            try:
                record = self._record(sheet, row_no, row, classes, seen)
            except DataError as err:
                problems.append((row_no, err.reason))
                continue
            out.append(record)
        if problems and not self.lenient:
            lines = "\n".join(f"  row {n}: {why}" for n, why in problems)
            raise DataError(
                f"{len(problems)} bad row(s) (fix them, or pass --lenient to skip and count them):"
                f"\n{lines}",
                file=str(sheet),
            )
        for row_no, why in problems:
            self.skipped.append(_skipped(self.name, sheet, row_no, why))
        return sorted(out, key=lambda r: r.file)

    def _sheet(self) -> Path:
        if self.root.is_file():
            return self.root
        top = self.locate(lambda p: len(_csvs(p)) == 1, "a folder holding exactly one .csv file")
        return _csvs(top)[0]

    def _rel(self, path: Path) -> str:
        """``path`` relative to the root folder (the CSV's own folder when the root is the
        CSV), else absolute."""
        base = self.root if self.root.is_dir() else self.root.parent
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return path.as_posix()

    def _record(self, sheet: Path, row_no: int, row: dict[str, str], classes, seen) -> Record:
        text = row.get("image", "")
        if not text:
            raise DataError("column image is empty")
        image = _resolve(sheet, text)
        where = str(image.resolve())
        if where in seen:
            raise DataError(f"image {text!r} is listed again (first in row {seen[where]})")
        seen[where] = row_no
        if not image.is_file():
            raise DataError(f"image {text!r} not found (looked for {image})")
        if image.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"image {text!r}: expected one of {', '.join(IMAGE_SUFFIXES)}")
        label = classes.get(row.get("label", "").lower())
        if label is None:
            known = ", ".join(sorted(classes))
            raise DataError(f"label {row.get('label', '')!r} maps to no class; expected {known}")
        modality = row.get("modality", "").lower() or self.opts.modality
        if modality not in MODALITIES:
            raise DataError(f"modality {modality!r}; expected one of {', '.join(MODALITIES)}")
        mask_texts = tuple(
            m.strip().replace("\\", "/") for m in row.get("mask", "").split(MASK_SEPARATOR)
        )
        masks = tuple(_resolve(sheet, m) for m in mask_texts if m)
        missing = [m for m in masks if not m.is_file()]
        if missing:
            raise DataError(f"mask {missing[0].name!r} not found (looked for {missing[0]})")
        has_mask = bool(masks) or label == "normal"
        return Record(
            source=self.name,
            file=self._rel(image),
            label=label,
            modality=modality,
            patient=row.get("patient") or None,
            mask_files=tuple(self._rel(m) for m in masks),
            loader=functools.partial(load_image_and_masks, image, masks, with_mask=has_mask),
            has_mask=has_mask,
            multi_mask=len(masks) > 1,
        )

    @classmethod
    def write_phantoms(
        cls, root: Path, counts: dict[str, int], stream, *, scale: float = 1.0
    ) -> Path:
        """``dataset.csv`` with ``images/``, ``masks/``: ultrasound phantoms, two images per
        patient, a tenth of the lesion images without a mask (classification only)."""
        labels = labels_in_order(counts)
        lines = ["image,label,mask,patient,modality"]
        for i, j in enumerate(stream(0).permutation(len(labels))):
            label = labels[j]
            rng = stream(1, i)
            rgb, masks = render_ultrasound(rng, label, size=phantom_size(rng, scale))
            name = f"img_{i:03d}"
            save_image(root / "images" / f"{name}.png", rgb)
            mask = ""
            if (masks and rng.random() >= 0.1) or (not masks and rng.random() < 0.5):
                mask = f"masks/{name}_mask.png"
                save_mask(root / mask, masks[0] if masks else np.zeros(rgb.shape[:2], bool))
            lines.append(f"images/{name}.png,{label.capitalize()},{mask},P{i // 2:03d},us")
        write_text(root / "dataset.csv", "\n".join(lines) + "\n")
        return root


def _csvs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv")


def _read(sheet: Path) -> list[tuple[int, dict[str, str]]]:
    """(row number, {lower-case column: stripped text}) of every non-empty row."""
    try:
        text = sheet.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        text = sheet.read_text(encoding="latin-1")
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    table = list(csv.reader(text.splitlines(), dialect))
    if not table:
        raise DataError("empty CSV; expected a header row naming image and label", file=str(sheet))
    header = [h.strip().lower() for h in table[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(h for h in header if h)}; "
            f"expected {', '.join(REQUIRED)} (and optionally {', '.join(OPTIONAL)})",
            file=str(sheet),
        )
    rows = []
    for row_no, values in enumerate(table[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        rows.append((row_no, {h: v.strip() for h, v in zip(header, values, strict=False) if h}))
    return rows


def _resolve(sheet: Path, text: str) -> Path:
    path = Path(text.replace("\\", "/")).expanduser()
    return path if path.is_absolute() else sheet.parent / path


def _skipped(source: str, sheet: Path, row_no: int, why: str) -> Skipped:
    return Skipped(source, f"{sheet.name} (row {row_no})", why)
