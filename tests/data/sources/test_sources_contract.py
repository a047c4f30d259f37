"""Contract test over every registered source: a phantom miniature written in the source's real
on-disk layout (``medssl.data.phantoms.write_source``) reads back into valid, loadable records.

A new source is covered by registering it with its phantom writer (``Source.write_phantoms``).
"""

from __future__ import annotations

import pytest

from contracts import check_source_accepts_parent_folder, check_source_contract
from medssl.data.phantoms import write_source
from medssl.data.sources import SOURCES, _import_all

_import_all()


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
    base = tmp_path_factory.mktemp("sources")
    return {
        name: write_source(name, base / name / "download", _counts(name), seed=0, scale=0.25)
        for name in SOURCES.names()
    }


@pytest.mark.parametrize("name", SOURCES.names())
def test_source_contract(miniatures, name):
    spacing = (0.07 / 0.25, 0.07 / 0.25) if name in SPACING_IN_PHANTOMS else None
    check_source_contract(
        name, miniatures[name], _counts(name), patients=name in PUBLISHED_PATIENTS, spacing=spacing
    )


@pytest.mark.parametrize("name", SOURCES.names())
def test_source_accepts_parent_folder(miniatures, name):
    check_source_accepts_parent_folder(name, miniatures[name])
