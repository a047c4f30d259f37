"""Contract test over every registered source: a phantom miniature written in the source's real
on-disk layout (``medssl.data.synth.write_source``) reads back into valid, loadable records.

A new source is covered by registering it with its phantom writer (``Source.write_phantoms``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from medssl.data.records import CLASSES, MODALITIES
from medssl.data.sources import SOURCES, _import_all, open_source

_import_all()

synth = pytest.importorskip("medssl.data.synth")
write_source = getattr(synth, "write_source", None)

# Sources whose publishers give patient ids (docs/datasets.md); the others give none.
PUBLISHED_PATIENTS = {"breast_lesions_usg", "cbis_ddsm", "csv", "inbreast", "mini_mias"}

# Sources whose phantoms carry a pixel spacing in their DICOM headers (INbreast's 70 µm,
# scaled); the others' phantoms carry none (real CBIS-DDSM headers are not known here).
SPACING_IN_PHANTOMS = {"inbreast"}


def _counts(name: str) -> dict[str, int]:
    """One normal (where the source has normals) and two of each lesion class."""
    classes = SOURCES.get(name).published_classes
    return {c: (1 if c == "normal" else 2) for c in classes}


@pytest.fixture(scope="module")
def miniatures(tmp_path_factory):
    if write_source is None:
        pytest.skip("medssl.data.synth.write_source is not available yet")
    base = tmp_path_factory.mktemp("sources")
    return {
        name: write_source(name, base / name / "download", _counts(name), seed=0, scale=0.25)
        for name in SOURCES.names()
    }


@pytest.mark.parametrize("name", SOURCES.names())
def test_source_contract(miniatures, name):
    root = miniatures[name]
    source = open_source(name, root)
    records = source.records()
    assert records, f"{name}: no records from {root}"
    assert [r.file for r in records] == sorted(r.file for r in records)
    assert len({r.file for r in records}) == len(records)
    assert Counter(r.label for r in records) == Counter(_counts(name))
    again = open_source(name, root).records()
    assert [(r.file, r.label, r.patient, r.mask_files) for r in again] == [
        (r.file, r.label, r.patient, r.mask_files) for r in records
    ]
    for r in records:
        assert r.source == name and r.label in CLASSES and r.modality in MODALITIES
        assert r.modality == type(source).modality
        assert (r.patient is not None) == (name in PUBLISHED_PATIENTS), r
        assert (
            (root / r.file).is_file()
            or (root.parent / r.file).is_file()
            or (source.root / r.file).is_file()
        )
    for r in records:
        loaded = r.load()
        assert loaded.image.dtype == np.float32 and loaded.image.ndim == 2
        assert 0.0 <= float(loaded.image.min()) <= float(loaded.image.max()) <= 1.0
        assert float(loaded.image.std()) > 0, f"{r.file} is flat"
        assert (loaded.spacing is not None) == (name in SPACING_IN_PHANTOMS), r.file
        if loaded.spacing is not None:
            assert loaded.spacing == pytest.approx((0.07 / 0.25, 0.07 / 0.25), rel=1e-5)
        if r.has_mask:
            assert loaded.mask is not None and loaded.mask.dtype == bool
            assert loaded.mask.shape == loaded.image.shape
            if r.label == "normal":
                assert not loaded.mask.any()
        else:
            assert loaded.mask is None


@pytest.mark.parametrize("name", SOURCES.names())
def test_source_accepts_parent_folder(miniatures, name):
    root = miniatures[name]
    parent = root.parent
    if [p for p in parent.iterdir() if p.is_dir()] != [root]:
        pytest.skip("the phantom writer put more than the top folder in the parent")
    files = [r.file for r in open_source(name, root).records()]
    from_parent = [r.file for r in open_source(name, parent).records()]
    assert from_parent == [f"{root.name}/{f}" for f in files]
