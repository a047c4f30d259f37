"""mini-MIAS (Suckling et al., 1994): 322 mammograms, 1024 x 1024 8-bit PGM, with ``Info.txt``.

Data rows of ``Info.txt`` read ``mdb001 G CIRC B 535 425 197``: reference, background
tissue (F/G/D), abnormality class (CALC, CIRC, SPIC, MISC, ARCH, ASYM, NORM), severity
(B/M), then x, y, radius (absent on some rows). Other lines (title, notes) are ignored.

Rules (``docs/datasets.md``): an image with several rows is malignant if any row is M,
else benign if any is B, else normal (a non-NORM row without severity is an error naming
the row). Coordinates have their origin at the bottom-left: row = 1024 - y. There are no
pixel masks (``has_mask=False``); the circles go in ``extra["circles"]`` as
``"col,row,radius;..."`` for a coarse localisation check (:func:`circles`,
:func:`circle_mask`). Option ``circles_as_masks: true`` makes the circles the masks
(``coarse_mask`` records, manifest column ``coarse_mask`` 1: approximate regions, not
outlines); a normal image then has an empty mask, and an abnormal one whose rows give no
coordinates none. Images come in left/right pairs of one patient:
patient = (number + 1) // 2.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl.data.imaging import load_image_and_masks
from medssl.data.records import Loaded, Record
from medssl.data.sources import Source, register_source
from medssl.data.synth.files import save_image, write_text
from medssl.data.synth.mammography import render_mammogram
from medssl.data.synth.stream import labels_in_order
from medssl.errors import DataError

SIZE = 1024  # every mini-MIAS image is 1024 x 1024; the y axis points up from the bottom row
_ROW = re.compile(r"^(mdb\d{3})\s+(\S+)\s+(\S+)(?:\s+(.*))?$", re.IGNORECASE)
ABNORMALITIES = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM")
_Row = tuple[int, str, str, str, tuple[int, int, int] | None]
"""One Info.txt row of an image: line number, tissue, abnormality, severity, circle."""


def _info(folder: Path) -> Path | None:
    return next(
        (p for p in sorted(folder.iterdir()) if p.is_file() and p.name.lower() == "info.txt"), None
    )


@dataclass(frozen=True)
class MiniMIASOptions:
    circles_as_masks: bool = False  # the published centre-and-radius circles as (coarse) masks


@register_source("mini_mias")
class MiniMIAS(Source):
    modality = "mg"
    Options = MiniMIASOptions

    def records(self) -> list[Record]:
        top = self.locate(
            lambda p: _info(p) is not None, "a mini-MIAS folder with mdbNNN.pgm and Info.txt"
        )
        info = _info(top)
        rows = self._rows(info)
        images = {
            p.stem.lower(): p
            for p in sorted(top.iterdir())
            if p.is_file() and p.suffix.lower() == ".pgm"
        }
        for ref in sorted(set(images) - set(rows)):
            self.problem(
                DataError(
                    f"image {images[ref].name} has no row in Info.txt; its class is unknown",
                    file=str(images[ref]),
                )
            )
        out: list[Record] = []
        for ref in sorted(rows):
            image = images.get(ref)
            if image is None:
                self.problem(
                    DataError(
                        f"{ref}.pgm listed in Info.txt is missing",
                        file=str(info),
                        row=rows[ref][0][0],
                    )
                )
                continue
            out.append(self._record(ref, image, rows[ref]))
        return sorted(out, key=lambda r: r.file)

    def _rows(self, info: Path) -> dict[str, list[_Row]]:
        """Info.txt's data rows of each image reference, with their line numbers."""
        rows: dict[str, list[_Row]] = {}
        for row_no, line in enumerate(info.read_text(encoding="latin-1").splitlines(), start=1):
            try:
                parsed = _parse(line, info, row_no)
            except DataError as err:
                self.problem(err)
                continue
            if parsed is not None:
                rows.setdefault(parsed[0], []).append((row_no, *parsed[1:]))
        return rows

    def _record(self, ref: str, image: Path, rows: list[_Row]) -> Record:
        severities = {r[3] for r in rows}
        label = "malignant" if "M" in severities else "benign" if "B" in severities else "normal"
        found = [r[4] for r in rows if r[4] is not None]
        number = int(ref[3:])
        coarse = bool(self.opts.circles_as_masks) and (label == "normal" or bool(found))
        loader = (
            functools.partial(load_with_circles, image, tuple(found))
            if coarse
            else functools.partial(load_image_and_masks, image, (), with_mask=False)
        )
        return Record(
            source=self.name,
            file=image.relative_to(self.root).as_posix(),
            label=label,
            modality=self.modality,
            patient=f"{(number + 1) // 2:03d}",
            mask_files=(),
            loader=loader,
            has_mask=coarse,
            coarse_mask=coarse and label != "normal",
            extra=(
                ("tissue", rows[0][1]),
                ("abnormality", "+".join(sorted({r[2] for r in rows}))),
                ("circles", ";".join(f"{c},{r},{rad}" for c, r, rad in found)),
            ),
        )

    @classmethod
    def write_phantoms(
        cls, root: Path, counts: dict[str, int], stream, *, scale: float = 1.0
    ) -> Path:
        """``mdbNNN.pgm`` (1024 x 1024, 8-bit) and ``Info.txt`` (bottom-left origin, as
        published).

        Images ``2k-1`` and ``2k`` are the left and right breasts of patient ``k``. Some
        abnormal images have several rows (a malignant image may carry a benign row), some
        rows no coordinates. ``scale`` is ignored: mini-MIAS is always 1024 x 1024.
        """
        labels = labels_in_order(counts)
        lines = [
            "MIAS database (mini), phantom written by medssl",
            "reference | tissue | class | severity | x | y | radius (origin bottom-left)",
        ]
        for n, j in enumerate(stream(0).permutation(len(labels)), start=1):
            label = labels[j]
            rng = stream(1, n)
            m = render_mammogram(
                rng, label, shape=(SIZE, SIZE), bits=8, laterality="L" if n % 2 else "R"
            )
            ref = f"mdb{n:03d}"
            save_image(root / f"{ref}.pgm", m.image.astype(np.uint8), "PPM")  # PPM writes P5
            lines += _phantom_rows(rng, ref, label, m)
        write_text(root / "Info.txt", "\n".join(lines) + "\n")
        return root


def _phantom_rows(rng: np.random.Generator, ref: str, label: str, m) -> list[str]:
    """``Info.txt`` rows of one phantom: NORM, or one row per lesion (a class drawn from the
    lesion's kind and shape; 8% without coordinates)."""
    tissue = "FGGD"[m.density - 1]
    if not m.lesions:
        return [f"{ref} {tissue} NORM"]
    lines = []
    for a, lesion in enumerate(m.lesions):
        severity = "M" if label == "malignant" else "B"
        if a > 0 and label == "malignant" and rng.random() < 0.5:
            severity = "B"
        if lesion.kind == "calcification":
            abn = "CALC"
        elif label == "benign":
            abn = "CIRC" if rng.random() < 0.8 else "MISC"
        else:
            abn = str(rng.choice(["SPIC", "MISC", "ARCH"], p=[0.7, 0.2, 0.1]))
        o = lesion.outline
        if rng.random() < 0.08:
            lines.append(f"{ref} {tissue} {abn} {severity}")
        else:
            radius = int(round(max(o.rx, o.ry) * 1.2))
            x, y = int(round(o.cx)), SIZE - int(round(o.cy))
            lines.append(f"{ref} {tissue} {abn} {severity} {x} {y} {radius}")
    return lines


def _parse(line: str, info: Path, row_no: int):
    """(ref, tissue, abnormality, severity, (col, row, radius) or None), or None for non-data lines."""
    m = _ROW.match(line.strip())
    if m is None:
        return None
    ref, tissue, abnormality, rest = (
        m.group(1).lower(),
        m.group(2).upper(),
        m.group(3).upper(),
        m.group(4) or "",
    )
    if abnormality not in ABNORMALITIES:
        raise DataError(
            f"abnormality class {abnormality!r}; expected one of {', '.join(ABNORMALITIES)}",
            file=str(info),
            row=row_no,
        )
    fields = rest.split()
    severity = fields[0].upper() if fields and fields[0].upper() in ("B", "M") else ""
    if abnormality != "NORM" and not severity:
        raise DataError(
            f"{ref}: {abnormality} row without severity B or M", file=str(info), row=row_no
        )
    numbers = fields[1:4] if severity else []
    circle = None
    if len(numbers) == 3 and all(re.fullmatch(r"\d+(\.\d+)?", n) for n in numbers):
        x, y, radius = (int(round(float(n))) for n in numbers)
        circle = (x, SIZE - y, radius)
    return ref, tissue, abnormality, severity, circle


def load_with_circles(image: Path, found: tuple[tuple[int, int, int], ...]) -> Loaded:
    """image: (H, W) float32 [0, 1]; mask: (H, W) bool, the abnormality circles filled."""
    loaded = load_image_and_masks(image, (), with_mask=False)
    return Loaded(loaded.image, circle_mask(loaded.image.shape, list(found)), None)


def circles(record: Record) -> list[tuple[int, int, int]]:
    """The record's abnormality circles as (col, row, radius) in image pixels (top-left origin)."""
    text = dict(record.extra).get("circles", "")
    return [tuple(int(v) for v in part.split(",")) for part in text.split(";") if part]


def circle_mask(shape: tuple[int, int], found: list[tuple[int, int, int]]) -> np.ndarray:
    """(H, W) bool: True inside any (col, row, radius) circle — a coarse lesion region."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for col, row, radius in found:
        mask |= (rows - row) ** 2 + (cols - col) ** 2 <= radius**2
    return mask
