"""Writers of phantoms in each public source's real on-disk layout (see ``docs/datasets.md``).

One writer per source, registered in :data:`LAYOUTS` under the reader's name, so that each
reader is exercised exactly as real data would exercise it. ``counts`` gives the number of
*usable* images per class; corner cases a reader must drop (CBIS-DDSM images whose rows
disagree, INbreast BI-RADS 0) come on top. Files are written plainly
(:func:`~medssl.artifacts.write_staged`): the atomic unit is the whole tree, which
:func:`~medssl.data.build.write_phantom_tree` builds in a temporary folder, syncs once and
moves into place with its marker. Every byte follows from the seed: each source draws from
its own stream ``(seed, crc32(name), item)``, so adding a source or changing another
source's counts leaves a source's files unchanged.
"""

from __future__ import annotations

import io
import os
import plistlib
import re
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medssl.artifacts import csv_text, write_staged
from medssl.data.records import CLASSES
from medssl.data.synth.dicom import Pixels, uid, write_dicom
from medssl.data.synth.mammography import Mammogram, render_mammogram
from medssl.data.synth.png import png_bytes
from medssl.data.synth.ultrasound import render_ultrasound
from medssl.errors import ConfigError
from medssl.registry import Registry

Writer = Callable[..., Path]
LAYOUTS: Registry[Writer] = Registry("phantom layout")
"""name -> writer(root, counts, stream, **opts) -> the folder a user passes as ``--root NAME=DIR``."""

SOURCE_CLASSES: dict[str, tuple[str, ...]] = {}
"""name -> the classes the source publishes (keys allowed in its ``counts``)."""

SOURCE_MODALITY: dict[str, str] = {}
"""name -> ``us`` | ``mg``, as the source's reader labels its records."""

Scale = float | Mapping[str, float]
"""Phantom image-size factor: one for every source, or one per modality (``{us: .., mg: ..}``)."""

REAL_COUNTS: dict[str, dict[str, int]] = {
    # BUSI: Al-Dhabyani et al., Data in Brief 28:104863 (2020)
    "busi": {"normal": 133, "benign": 437, "malignant": 210},
    # BrEaST-Lesions_USG: Pawłowska et al., Sci Data (2024), 256 cases
    "breast_lesions_usg": {"normal": 4, "benign": 154, "malignant": 98},
    # QAMEBI, TBUD: the counts the thesis used (docs/datasets.md, table US1); QAMEBI's normals unused
    "qamebi": {"normal": 0, "benign": 109, "malignant": 123},
    "tbud": {"benign": 45, "malignant": 77},
    # MBUD (Mendeley, Rodrigues): 250 images
    "mbud": {"benign": 100, "malignant": 150},
    # CBIS-DDSM: Lee et al., Sci Data 4:170177 (2017); ~3,100 full mammograms, split by pathology
    # approximately (benign includes BENIGN_WITHOUT_CALLBACK)
    "cbis_ddsm": {"benign": 1700, "malignant": 1400},
    # INbreast: Moreira et al. (2012); 410 images by BI-RADS: 1 -> 67, 2/3 -> 243, 4-6 -> 100
    "inbreast": {"normal": 67, "benign": 243, "malignant": 100},
    # mini-MIAS: Suckling et al. (1994); 322 images (abnormal split approximate)
    "mini_mias": {"normal": 207, "benign": 64, "malignant": 51},
}
"""Per-class image counts of the real sources (documented sources above; approximate where noted)."""

DEFAULT_COUNTS: dict[str, dict[str, int]] = {
    # ultrasound: about a quarter of the real counts
    "busi": {"normal": 33, "benign": 109, "malignant": 52},
    "breast_lesions_usg": {"normal": 2, "benign": 38, "malignant": 25},
    "qamebi": {"normal": 4, "benign": 27, "malignant": 31},
    "tbud": {"benign": 11, "malignant": 19},
    "mbud": {"benign": 25, "malignant": 38},
    # mammography: smaller, to keep the demo's disk use modest (full-size DICOMs)
    "cbis_ddsm": {"benign": 60, "malignant": 50},
    "inbreast": {"normal": 17, "benign": 60, "malignant": 25},
    "mini_mias": {"normal": 20, "benign": 10, "malignant": 10},
}
"""Demo sizes written by ``medssl data synth`` when no counts are given."""


class Stream:
    """The seeded random stream of one source: ``stream(i)`` is item ``i``'s own generator."""

    def __init__(self, seed: int, name: str) -> None:
        self.key = (int(seed), zlib.crc32(name.encode()))

    def __call__(self, *item: int) -> np.random.Generator:
        return np.random.default_rng([*self.key, *item])


def layout(name: str, classes: tuple[str, ...], modality: str) -> Callable[[Writer], Writer]:
    """Register a writer for source ``name`` of ``modality`` publishing ``classes``."""

    def decorator(fn: Writer) -> Writer:
        SOURCE_CLASSES[name] = classes
        SOURCE_MODALITY[name] = modality
        return LAYOUTS.register(name)(fn)

    return decorator


def check_scale(value: Any, where: str) -> Scale:
    """A valid :data:`Scale` from config ``value`` (a number, or a mapping with exactly the
    keys ``us`` and ``mg``), each in (0, 1]; a :class:`ConfigError` naming ``where`` otherwise."""
    modalities = sorted(set(SOURCE_MODALITY.values()))
    if isinstance(value, Mapping):
        if sorted(value) != modalities:
            raise ConfigError(
                f"{where}: a per-modality phantom scale needs exactly the keys {modalities}, "
                f"not {sorted(value)}"
            )
        return {m: _one_scale(value[m], f"{where}: {m}") for m in modalities}
    return _one_scale(value, where)


def _one_scale(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ConfigError(f"{where}: the phantom scale must be a number in (0, 1], not {value!r}")
    return float(value)


def source_scale(scale: Scale, name: str) -> float:
    """The size factor of source ``name`` under ``scale``."""
    return float(scale[SOURCE_MODALITY[name]]) if isinstance(scale, Mapping) else float(scale)


def describe_scale(scale: Scale) -> str:
    """``0.4`` or ``us 0.4, mg 0.3``."""
    if isinstance(scale, Mapping):
        return ", ".join(f"{m} {v:g}" for m, v in sorted(scale.items(), reverse=True))
    return f"{scale:g}"


def write_source(
    name: str, root: Path, counts: dict[str, int], *, seed: int = 0, **opts: Any
) -> Path:
    """Write phantoms of source ``name`` under ``root`` in its real layout.

    counts: class -> number of usable images (only the classes the source has).
    Returns the folder to pass as ``--root NAME=DIR``.
    """
    writer = LAYOUTS.get(name)
    allowed = SOURCE_CLASSES[name]
    for cls, n in counts.items():
        if cls not in allowed:
            raise ConfigError(
                f"phantom counts for {name!r}: unknown class {cls!r}; valid: {', '.join(allowed)}"
            )
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(
                f"phantom counts for {name!r}: {cls} must be a whole number >= 0, not {n!r}"
            )
    counts = {c: int(counts.get(c, 0)) for c in allowed}
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return writer(root, counts, Stream(seed, name), **opts)


def write_phantoms(
    out: Path,
    counts: dict[str, dict[str, int]] | None = None,
    *,
    seed: int = 0,
    scale: Scale = 1.0,
    workers: int | None = None,
) -> dict[str, Path]:
    """Write every source (or those in ``counts``) under ``out/<name>/``.

    counts: name -> class -> usable images (default :data:`DEFAULT_COUNTS`). ``scale``
    shrinks ultrasound and mammography image sizes, alike or per modality (:data:`Scale`;
    mini-MIAS stays 1024 x 1024, as published).
    ``workers`` processes write sources in parallel (default: one per CPU core).
    Files are written plainly: write into a fresh folder that only becomes trusted whole
    (:func:`~medssl.data.build.write_phantom_tree` does this).
    Returns {name: folder to pass as ``--root NAME=DIR``}.
    """
    counts = DEFAULT_COUNTS if counts is None else counts
    unknown = set(counts) - set(LAYOUTS.names())
    if unknown:
        raise ConfigError(
            f"phantom counts name unknown source(s) {sorted(unknown)}; valid: {LAYOUTS.names()}"
        )
    out = Path(out)
    names = [n for n in LAYOUTS.names() if n in counts]
    # one job per source: write_source's arguments, the scale resolved for its modality
    jobs = {
        n: ((n, out / n, counts[n]), {"seed": seed, "scale": source_scale(scale, n)}) for n in names
    }
    workers = min(workers or os.cpu_count() or 1, len(names))
    if workers <= 1:
        written = {n: write_source(*args, **kw) for n, (args, kw) in jobs.items()}
    else:
        written = _write_in_parallel(jobs, counts, workers)
    os.sync()  # files skip their own fsync; one sync makes the whole tree durable
    return written


def _write_in_parallel(jobs: dict[str, tuple], counts: dict, workers: int) -> dict[str, Path]:
    """Sources are independent (one seed stream each), so they are written in parallel with
    the same bytes as one by one; the largest first keeps the workers evenly loaded."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    order = sorted(jobs, key=lambda n: -sum(counts[n].values()))
    with ProcessPoolExecutor(workers, mp_context=mp.get_context(start_method())) as pool:
        futures = {n: pool.submit(write_source, *jobs[n][0], **jobs[n][1]) for n in order}
        return {n: futures[n].result() for n in jobs}


def start_method() -> str:
    """How phantom worker processes start: ``fork`` where the parent holds no threads and no
    torch (the ``medssl data synth`` command): the workers inherit the imported numpy, scipy
    and pydicom instead of importing them again (~1 s each, 7% of the demo's phantoms);
    ``spawn`` otherwise, since forking a process whose thread pools (torch's OpenMP, other
    Python threads) are running can deadlock the child. Either way the files are the same."""
    import multiprocessing as mp
    import sys
    import threading

    single = threading.active_count() == 1 and "torch" not in sys.modules
    return "fork" if single and "fork" in mp.get_all_start_methods() else "spawn"


# ----------------------------------------------------------------------------- helpers


def _labels(counts: dict[str, int]) -> list[str]:
    """Class of each image, in CLASSES order (deterministic)."""
    return [c for c in CLASSES for _ in range(counts.get(c, 0))]


def _png(path: Path, array: np.ndarray) -> None:
    write_staged(path, png_bytes(array))


def _save(path: Path, array: np.ndarray, fmt: str) -> None:
    if fmt == "PNG":
        return _png(path, array)
    buf = io.BytesIO()
    img = Image.fromarray(array)
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=92)
    else:
        img.save(buf, format=fmt)
    write_staged(path, buf.getvalue())


def _mask_png(path: Path, mask: np.ndarray) -> None:
    """A mask as published: mode L, 0 background / 255 lesion."""
    _png(path, mask.astype(bool))


def _us_size(rng: np.random.Generator, scale: float) -> tuple[int, int] | None:
    if scale == 1.0:
        return None
    h = max(48, int(rng.integers(310, 720) * scale))
    return h, max(48, int(h * rng.uniform(0.85, 1.6)))


# ----------------------------------------------------------------------------- ultrasound


@layout("busi", ("normal", "benign", "malignant"), "us")
def write_busi(
    root: Path,
    counts: dict[str, int],
    stream: Stream,
    *,
    scale: float = 1.0,
    multi_mask: float = 0.03,
) -> Path:
    """``Dataset_BUSI_with_GT/<class>/<class> (i).png`` + ``<class> (i)_mask.png`` (and ``_mask_1`` ...).

    ``multi_mask``: share of lesion images with several lesions, one mask file each.
    """
    base = root / "Dataset_BUSI_with_GT"
    for ci, cls in enumerate(("benign", "malignant", "normal")):
        folder = base / cls
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(1, counts[cls] + 1):
            rng = stream(ci, i)
            n = 1 + int(rng.integers(1, 3)) if cls != "normal" and rng.random() < multi_mask else 1
            rgb, masks = render_ultrasound(rng, cls, size=_us_size(rng, scale), n_lesions=n)
            _png(folder / f"{cls} ({i}).png", rgb)
            for k, m in enumerate(masks or [np.zeros(rgb.shape[:2], dtype=bool)]):
                suffix = "_mask" if k == 0 else f"_mask_{k}"
                _mask_png(folder / f"{cls} ({i}){suffix}.png", m)
    return base


BREAST_COLUMNS = (
    "CaseID", "Image_filename", "Mask_tumor_filename", "Mask_other_filename", "Pixel_size", "Age",
    "Tissue_composition", "Shape", "Margin", "Echogenicity", "Posterior_features", "BIRADS",
    "Verification", "Classification",
)  # fmt: skip


@layout("breast_lesions_usg", ("normal", "benign", "malignant"), "us")
def write_breast_lesions_usg(
    root: Path, counts: dict[str, int], stream: Stream, *, scale: float = 1.0
) -> Path:
    """``BrEaST-Lesions_USG-images_and_masks/caseNNN.png`` + ``caseNNN_tumor.png`` (+ ``_other1``) and the clinical xlsx."""
    folder = root / "BrEaST-Lesions_USG-images_and_masks"
    folder.mkdir(parents=True, exist_ok=True)
    labels = _labels(counts)
    order = stream(0).permutation(len(labels))
    rows = []
    for case, j in enumerate(order, start=1):
        cls = labels[j]
        rng = stream(1, case)
        rgb, masks = render_ultrasound(rng, cls, size=_us_size(rng, scale))
        name = f"case{case:03d}"
        grey = rgb.mean(axis=2).astype(np.uint8) if rng.random() < 0.5 else rgb
        _png(folder / f"{name}.png", grey)
        tumor = ""
        if masks:
            tumor = f"{name}_tumor.png"
            _mask_png(folder / tumor, masks[0])
        elif rng.random() < 0.5:  # some normal cases ship an empty tumour mask
            tumor = f"{name}_tumor.png"
            _mask_png(folder / tumor, np.zeros(rgb.shape[:2], dtype=bool))
        other = ""
        if rng.random() < 0.1:  # a mask of another finding, not a lesion of interest
            other = f"{name}_other1.png"
            o = np.zeros(rgb.shape[:2], dtype=bool)
            h, w = o.shape
            o[h // 10 : h // 6, w // 10 : w // 5] = True
            _mask_png(folder / other, o)
        rows.append(
            {
                "CaseID": case,
                "Image_filename": f"{name}.png",
                "Mask_tumor_filename": tumor,
                "Mask_other_filename": other,
                "Pixel_size": round(float(rng.uniform(0.005, 0.012)), 4),
                "Age": int(rng.integers(18, 85)),
                "Tissue_composition": str(
                    rng.choice(["homogeneous: fat", "homogeneous: fibroglandular", "heterogeneous"])
                ),
                "Shape": "not applicable"
                if cls == "normal"
                else ("oval" if cls == "benign" else "irregular"),
                "Margin": "not applicable"
                if cls == "normal"
                else ("circumscribed" if cls == "benign" else "not circumscribed"),
                "Echogenicity": "not applicable" if cls == "normal" else "hypoechoic",
                "Posterior_features": "not applicable" if cls == "normal" else "no",
                "BIRADS": {"normal": "1", "benign": "3", "malignant": "4c"}[cls],
                "Verification": "confirmed by biopsy"
                if cls != "normal"
                else "confirmed by follow-up care",
                "Classification": cls,
            }
        )
    write_staged(
        folder / "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx", _xlsx(BREAST_COLUMNS, rows)
    )
    return folder


def _xlsx(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> bytes:
    """An xlsx workbook (one sheet) with fixed timestamps, so the same rows give the same bytes."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "BrEaST-Lesions-USG"
    ws.append(list(columns))
    for row in rows:
        ws.append([row.get(c, "") for c in columns])
    buf = io.BytesIO()
    wb.save(buf)
    # openpyxl stamps the current time into docProps/core.xml and the zip entries: normalise both
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2023-12-15T00:00:00Z", data)
            dst.writestr(
                zipfile.ZipInfo(info.filename, date_time=(2023, 12, 15, 0, 0, 0)),
                data,
                zipfile.ZIP_DEFLATED,
            )
    return out.getvalue()


def _class_folder(
    root: Path,
    counts: dict[str, int],
    stream: Stream,
    *,
    stem: Callable[[str, int], str],
    masks: bool,
    scale: float,
) -> Path:
    """Class folders ``Benign/``, ``Malignant/`` (``Normal/``) of PNG/JPG/BMP images, masks ``<stem>_mask.png``."""
    for ci, cls in enumerate(CLASSES):
        if counts.get(cls, 0) == 0:
            continue
        folder = root / cls.capitalize()
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(1, counts[cls] + 1):
            rng = stream(ci, i)
            rgb, lesion_masks = render_ultrasound(rng, cls, size=_us_size(rng, scale))
            ext, fmt = [("png", "PNG"), ("jpg", "JPEG"), ("bmp", "BMP")][
                int(rng.choice(3, p=[0.5, 0.3, 0.2]))
            ]
            name = stem(cls, i)
            _save(folder / f"{name}.{ext}", rgb, fmt)
            if masks:
                m = lesion_masks[0] if lesion_masks else np.zeros(rgb.shape[:2], dtype=bool)
                _mask_png(folder / f"{name}_mask.png", m)
    return root


@layout("qamebi", ("normal", "benign", "malignant"), "us")
def write_qamebi(root: Path, counts: dict[str, int], stream: Stream, *, scale: float = 1.0) -> Path:
    """QAMEBI: ``Benign/``, ``Malignant/``, ``Normal/`` with ``<stem>_mask.png`` beside each image."""
    return _class_folder(
        root, counts, stream, stem=lambda c, i: f"{c} ({i})", masks=True, scale=scale
    )


@layout("tbud", ("benign", "malignant"), "us")
def write_tbud(root: Path, counts: dict[str, int], stream: Stream, *, scale: float = 1.0) -> Path:
    """TBUD: ``Benign/``, ``Malignant/`` with ``<stem>_mask.png`` beside each image."""
    return _class_folder(
        root, counts, stream, stem=lambda c, i: f"{c[0].upper()}{i:03d}", masks=True, scale=scale
    )


@layout("mbud", ("benign", "malignant"), "us")
def write_mbud(root: Path, counts: dict[str, int], stream: Stream, *, scale: float = 1.0) -> Path:
    """MBUD: ``Benign/``, ``Malignant/`` images only (no masks)."""
    return _class_folder(
        root, counts, stream, stem=lambda c, i: f"{c}_{i:04d}", masks=False, scale=scale
    )


# ----------------------------------------------------------------------------- mammography


def _pixels(
    rng: np.random.Generator,
    image: np.ndarray,
    bits: int,
    *,
    mono1: float,
    rescale: float,
    window: float,
) -> Pixels:
    """Storage options: MONOCHROME1 / rescale / VOI window on the given shares of images."""
    top = 2**bits - 1
    resc = None
    if rng.random() < rescale:
        resc = (1.0, 0.0) if rng.random() < 0.5 else (2.0, 0.0)
    win = None
    if rng.random() < window:
        tissue = image[image > 0.05 * top]
        lo, hi = np.percentile(tissue, [1, 99.5]) if tissue.size else (0, top)
        win = ((lo + hi) / 2, max(1.0, hi - lo))
    return Pixels(bits, monochrome1=rng.random() < mono1, rescale=resc, window=win)


CBIS_MASS_COLUMNS = (
    "patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
    "abnormality type", "mass shape", "mass margins", "assessment", "pathology", "subtlety",
    "image file path", "cropped image file path", "ROI mask file path",
)  # fmt: skip
CBIS_CALC_COLUMNS = (
    "patient_id", "breast density", "left or right breast", "image view", "abnormality id",
    "abnormality type", "calc type", "calc distribution", "assessment", "pathology", "subtlety",
    "image file path", "cropped image file path", "ROI mask file path",
)  # fmt: skip


@layout("cbis_ddsm", ("benign", "malignant"), "mg")
def write_cbis_ddsm(
    root: Path,
    counts: dict[str, int],
    stream: Stream,
    *,
    scale: float = 1.0,
    disagree: int = 2,
    without_callback: float = 0.3,
    cropped: float = 0.5,
) -> Path:
    """The four case-description CSVs in ``root`` and the TCIA tree ``root/CBIS-DDSM/``.

    ``disagree`` extra images carry rows that disagree in pathology (readers drop them);
    ``without_callback`` of benign images are ``BENIGN_WITHOUT_CALLBACK``; ``cropped``: share
    of ROIs shipped with a cropped-image DICOM. Disk paths differ from the CSV after the first
    component (``1-1.dcm`` for ``000000.dcm``; dated study/series folder names on some); where a
    ROI's mask and cropped image share a folder their order is random (the mask is full size).
    """
    tree = root / "CBIS-DDSM"
    items = [(c, False) for c in _labels(counts)] + [("malignant", True)] * disagree
    order = stream(0).permutation(len(items))
    # patients: one or two images (CC and MLO of one side) of the same class
    patients: list[list[int]] = []
    rng0 = stream(1)
    by_class: dict[str, list[int]] = {}
    for j in order:
        by_class.setdefault(f"{items[j][0]}{items[j][1]}", []).append(int(j))
    for group in by_class.values():
        k = 0
        while k < len(group):
            size = 2 if rng0.random() < 0.6 else 1
            patients.append(group[k : k + size])
            k += size
    patients = [patients[i] for i in rng0.permutation(len(patients))]
    rows: dict[str, list[dict[str, Any]]] = {}
    pid = 0
    for p, members in enumerate(patients):
        pid += 1 + int(rng0.integers(0, 3))  # real ids have gaps
        patient = f"P_{pid:05d}"
        side = "LEFT" if rng0.random() < 0.5 else "RIGHT"
        test = rng0.random() < 0.2
        for v, j in enumerate(members):
            cls, disagreeing = items[j]
            rng = stream(2, p, v)
            view = ("CC", "MLO")[v] if len(members) == 2 else ("CC", "MLO")[int(rng.integers(2))]
            kind = "mass" if rng.random() < 0.55 else "calcification"
            n = 2 if disagreeing else 1 + int(rng.random() < 0.25) + int(rng.random() < 0.05)
            bits = int(rng.choice([8, 12, 16], p=[0.15, 0.35, 0.5]))
            m = render_mammogram(
                rng,
                cls,
                scale=scale,
                bits=bits,
                laterality=side[0],
                view=view,
                n_lesions=n,
                kinds=(kind,) * n,
            )
            prefix = f"{'Mass' if kind == 'mass' else 'Calc'}-{'Test' if test else 'Training'}_{patient}_{side}_{view}"
            paths = _cbis_tcia(tree, prefix, m, rng, stream.key, cropped)
            if cls == "malignant":
                pathology = ["MALIGNANT"] * n
            else:
                bwc = rng.random() < without_callback
                pathology = ["BENIGN_WITHOUT_CALLBACK" if bwc else "BENIGN"] * n
            if disagreeing:
                pathology = ["BENIGN", "MALIGNANT"]
            csv_name = f"{'mass' if kind == 'mass' else 'calc'}_case_description_{'test' if test else 'train'}_set.csv"
            for a in range(n):
                roi_path = paths["roi"][a]
                if (
                    rng.random() < 0.3
                ):  # the real CSVs carry a stray newline at the end of some paths
                    roi_path += "\n"
                row = {
                    "patient_id": patient,
                    "left or right breast": side,
                    "image view": view,
                    "abnormality id": a + 1,
                    "abnormality type": kind,
                    "assessment": int(
                        rng.integers(2, 4) if pathology[a] != "MALIGNANT" else rng.integers(4, 6)
                    ),
                    "pathology": pathology[a],
                    "subtlety": int(rng.integers(1, 6)),
                    "image file path": paths["image"],
                    "cropped image file path": paths["cropped"][a],
                    "ROI mask file path": roi_path,
                }
                if kind == "mass":
                    row["breast_density"] = m.density
                    row["mass shape"] = "OVAL" if pathology[a] != "MALIGNANT" else "IRREGULAR"
                    row["mass margins"] = (
                        "CIRCUMSCRIBED" if pathology[a] != "MALIGNANT" else "SPICULATED"
                    )
                else:
                    row["breast density"] = m.density
                    row["calc type"] = "PUNCTATE" if pathology[a] != "MALIGNANT" else "PLEOMORPHIC"
                    row["calc distribution"] = "CLUSTERED"
                rows.setdefault(csv_name, []).append(row)
    for kind, columns in (("mass", CBIS_MASS_COLUMNS), ("calc", CBIS_CALC_COLUMNS)):
        for split in ("train", "test"):
            name = f"{kind}_case_description_{split}_set.csv"
            write_staged(root / name, csv_text(rows.get(name, []), columns).encode())
    return root


def _cbis_tcia(
    tree: Path,
    prefix: str,
    m: Mammogram,
    rng: np.random.Generator,
    key: tuple[int, int],
    cropped: float,
) -> dict[str, Any]:
    """Write one full mammogram, its ROI masks (and cropped images) as TCIA folders.

    Returns the CSV paths: {"image": str, "roi": [str per lesion], "cropped": [str per lesion]}.
    """
    dated = rng.random() < 0.5  # newer TCIA downloads name folders by date and series description
    number = int(rng.integers(10000, 99999))

    def folders(name: str, series: str) -> tuple[str, str, Path, str]:
        """(study uid, series uid, folder on disk, folder as the CSV names it)."""
        study, ser = uid(*key, name, "study"), uid(*key, name, series)
        csv_dir = f"{name}/{study}/{ser}"
        if dated:
            disk = (
                tree
                / name
                / f"07-20-2016-DDSM-{number % 100000:05d}"
                / f"1.000000-{series}-{number % 97:05d}"
            )
        else:
            disk = tree / name / study / ser
        return study, ser, disk, csv_dir

    study, ser, disk, csv_dir = folders(prefix, "full mammogram images")
    pixels = _pixels(rng, m.image, m.bits, mono1=0.15, rescale=0.4, window=0.3)
    write_dicom(
        disk / "1-1.dcm", m.image, pixels, patient_id=prefix, study_uid=study, series_uid=ser,
        instance_uid=uid(*key, prefix, "image"), series_description="full mammogram images",
        laterality=m.laterality, view=m.view,
    )  # fmt: skip
    out: dict[str, Any] = {"image": f"{csv_dir}/000000.dcm", "roi": [], "cropped": []}
    for a, lesion in enumerate(m.lesions, start=1):
        name = f"{prefix}_{a}"
        mask = lesion.mask(m.image.shape)
        study, ser, disk, csv_dir = folders(name, "ROI mask images")
        with_crop = rng.random() < cropped
        together = with_crop and rng.random() < 0.5
        mask_file, crop_file = (
            ("1-1.dcm", "1-2.dcm") if rng.random() < 0.5 else ("1-2.dcm", "1-1.dcm")
        )
        if not together:
            mask_file = "1-1.dcm"
        write_dicom(
            disk / mask_file, mask.astype(np.uint8) * 255, Pixels(8), patient_id=name, study_uid=study,
            series_uid=ser, instance_uid=uid(*key, name, "roi"), series_description="ROI mask images",
            sop_class="1.2.840.10008.5.1.4.1.1.7", modality="OT",
        )  # fmt: skip
        out["roi"].append(f"{csv_dir}/000001.dcm" if with_crop else f"{csv_dir}/000000.dcm")
        if with_crop:
            rows, cols = np.nonzero(mask)
            crop = m.image[
                max(0, rows.min() - 8) : rows.max() + 9, max(0, cols.min() - 8) : cols.max() + 9
            ]
            _, c_ser, c_disk, c_csv = folders(name, "cropped images")
            target = disk / crop_file if together else c_disk / "1-1.dcm"
            write_dicom(
                target, crop, Pixels(m.bits), patient_id=name, study_uid=study,
                series_uid=ser if together else c_ser, instance_uid=uid(*key, name, "crop"),
                series_description="cropped images", sop_class="1.2.840.10008.5.1.4.1.1.7", modality="OT",
            )  # fmt: skip
            out["cropped"].append(f"{csv_dir}/000000.dcm" if together else f"{c_csv}/000000.dcm")
        else:
            out["cropped"].append(f"{csv_dir}/000001.dcm")
    return out


INBREAST_SPACING_MM = 0.07
"""INbreast's pixel spacing, 70 µm (Moreira et al. 2012); a phantom at scale s has s times
fewer pixels per side, so its pixels span 0.07 / s mm."""

INBREAST_BIRADS = {
    "normal": ("1",),
    "benign": ("2", "3"),
    "malignant": ("4a", "4b", "4c", "5", "6"),
}
INBREAST_WEIGHTS = {
    "normal": (1.0,),
    "benign": (0.9, 0.1),
    "malignant": (0.15, 0.1, 0.2, 0.45, 0.1),
}


@layout("inbreast", ("normal", "benign", "malignant"), "mg")
def write_inbreast(
    root: Path, counts: dict[str, int], stream: Stream, *, scale: float = 1.0, birads0: int = 2
) -> Path:
    """``INbreast Release 1.0/`` with ``INbreast.csv`` (``;``), ``AllDICOMs/`` (14-bit), ``AllXML/`` plists.

    ``birads0`` extra images have BI-RADS 0 (readers drop them). ``Patient ID`` holds the
    patient's hash, the same as in the DICOM file names (the real sheet says "removed").
    The DICOMs carry ``PixelSpacing`` :data:`INBREAST_SPACING_MM` / ``scale``.
    """
    spacing = INBREAST_SPACING_MM / scale
    base = root / "INbreast Release 1.0"
    (base / "AllDICOMs").mkdir(parents=True, exist_ok=True)
    (base / "AllXML").mkdir(parents=True, exist_ok=True)
    items = _labels(counts) + ["zero"] * birads0
    order = [int(j) for j in stream(0).permutation(len(items))]
    rng0 = stream(1)
    names = 20_000_000 + rng0.choice(34_000_000, size=len(items), replace=False)
    rows = []
    k = 0
    p = 0
    while k < len(order):
        members = order[k : k + int(rng0.integers(1, 5))]
        k += len(members)
        p += 1
        hash_ = f"{int(rng0.integers(0, 2**63)):016x}"
        age = str(int(rng0.integers(35, 85)))
        for v, j in enumerate(members):
            cls = items[j]
            rng = stream(2, j)
            laterality, view = ("L", "R")[v // 2 % 2], ("CC", "MLO")[v % 2]
            render_cls = "benign" if cls == "zero" else cls
            m = render_mammogram(
                rng, render_cls, scale=scale, bits=14, laterality=laterality, view=view
            )
            birads = (
                "0"
                if cls == "zero"
                else str(rng.choice(INBREAST_BIRADS[cls], p=INBREAST_WEIGHTS[cls]))
            )
            file_name = str(names[j])
            dcm = (
                base
                / "AllDICOMs"
                / f"{file_name}_{hash_}_MG_{laterality}_{'CC' if view == 'CC' else 'ML'}_ANON.dcm"
            )
            write_dicom(
                dcm, m.image, _pixels(rng, m.image, 14, mono1=0.2, rescale=0.3, window=0.4),
                patient_id=hash_, study_uid=uid(*stream.key, hash_), series_uid=uid(*stream.key, file_name, "s"),
                instance_uid=uid(*stream.key, file_name), laterality=laterality, view=view,
                spacing=(spacing, spacing),
            )  # fmt: skip
            if m.lesions:
                write_staged(base / "AllXML" / f"{file_name}.xml", _inbreast_xml(m, spacing))
            rows.append(
                f"{hash_};{age};{laterality};{view};{2008 + int(rng.integers(0, 3))}{int(rng.integers(1, 13)):02d};"
                f"{file_name};{m.density};{birads}"
            )
    header = "Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"
    write_staged(base / "INbreast.csv", ("\n".join([header, *rows]) + "\n").encode())
    return base


def _inbreast_xml(m: Mammogram, spacing: float) -> bytes:
    """The lesions as an INbreast XML plist: masses as ``Mass`` polygons, calcifications as
    one-point ``Calcification`` ROIs plus a ``Cluster`` polygon (``Point_mm`` at ``spacing``
    mm per pixel)."""

    def pt(x: float, y: float) -> str:
        return f"({x:.4f}, {y:.4f})"

    rois = []

    def roi(name: str, points: np.ndarray) -> None:
        rois.append(
            {
                "Area": float(len(points)),
                "Center": pt(*points.mean(axis=0)),
                "Dev": 0.0,
                "IndexInImage": len(rois),
                "Max": 0.0,
                "Mean": 0.0,
                "Min": 0.0,
                "Name": name,
                "NumberOfPoints": len(points),
                "Point_mm": [pt(x * spacing, y * spacing) for x, y in points],
                "Point_px": [pt(x, y) for x, y in points],
                "Total": 0.0,
                "Type": 19 if len(points) > 1 else 0,
            }
        )

    for lesion in m.lesions:
        if lesion.kind == "mass":
            roi("Mass", lesion.outline.polygon(48))
        else:
            for p in lesion.points:
                roi("Calcification", p[None, :])
            roi("Cluster", lesion.outline.polygon(24))
    doc = {"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": rois}]}
    return plistlib.dumps(doc, fmt=plistlib.FMT_XML)


MIAS_SIZE = 1024


@layout("mini_mias", ("normal", "benign", "malignant"), "mg")
def write_mini_mias(
    root: Path, counts: dict[str, int], stream: Stream, *, scale: float = 1.0
) -> Path:
    """``mdbNNN.pgm`` (1024 x 1024, 8-bit) and ``Info.txt`` (bottom-left origin, as published).

    Images ``2k-1`` and ``2k`` are the left and right breasts of patient ``k``. Some abnormal
    images have several rows (a malignant image may carry a benign row), some rows no
    coordinates. ``scale`` is ignored: mini-MIAS is always 1024 x 1024.
    """
    labels = _labels(counts)
    order = stream(0).permutation(len(labels))
    lines = [
        "MIAS database (mini), phantom written by medssl",
        "reference | tissue | class | severity | x | y | radius (origin bottom-left)",
    ]
    for n, j in enumerate(order, start=1):
        cls = labels[j]
        rng = stream(1, n)
        m = render_mammogram(
            rng, cls, shape=(MIAS_SIZE, MIAS_SIZE), bits=8, laterality="L" if n % 2 else "R"
        )
        ref = f"mdb{n:03d}"
        write_staged(
            root / f"{ref}.pgm",
            b"P5\n1024 1024\n255\n" + m.image.astype(np.uint8).tobytes(),
        )
        tissue = "FGGD"[m.density - 1]
        if not m.lesions:
            lines.append(f"{ref} {tissue} NORM")
            continue
        for a, lesion in enumerate(m.lesions):
            severity = "M" if cls == "malignant" else "B"
            if a > 0 and cls == "malignant" and rng.random() < 0.5:
                severity = "B"
            if lesion.kind == "calcification":
                abn = "CALC"
            elif cls == "benign":
                abn = "CIRC" if rng.random() < 0.8 else "MISC"
            else:
                abn = str(rng.choice(["SPIC", "MISC", "ARCH"], p=[0.7, 0.2, 0.1]))
            o = lesion.outline
            if rng.random() < 0.08:
                lines.append(f"{ref} {tissue} {abn} {severity}")
            else:
                radius = int(round(max(o.rx, o.ry) * 1.2))
                lines.append(
                    f"{ref} {tissue} {abn} {severity} {int(round(o.cx))} {MIAS_SIZE - int(round(o.cy))} {radius}"
                )
    write_staged(root / "Info.txt", ("\n".join(lines) + "\n").encode())
    return root
