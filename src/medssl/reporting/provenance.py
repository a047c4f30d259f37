"""Provenance of a benchmark: package versions, device, seeds, data checksums.

``collect_provenance()`` is called by the benchmark when it starts and the result is written to
``RUN_DIR/provenance.json``; the report shows it as saved (it never re-collects, so a report
rebuilt elsewhere still describes the machine that trained the models).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medssl.artifacts import read_json, write_json
from medssl.data.database import META_FILE

PACKAGES = {
    # label in the report -> distribution name on PyPI
    "medssl": "medssl",
    "torch": "torch",
    "torchvision": "torchvision",
    "lightly": "lightly",
    "smp": "segmentation-models-pytorch",
    "lightning_fabric": "lightning-fabric",
    "numpy": "numpy",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
}


def package_versions() -> dict[str, str]:
    """label -> installed version (``not installed`` when absent)."""
    out = {}
    for label, dist in PACKAGES.items():
        try:
            out[label] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[label] = "not installed"
    return out


def device_name() -> str:
    """Name of the first CUDA device, else ``cpu (<processor>)``."""
    try:
        import torch

        if torch.cuda.is_available():
            n = torch.cuda.device_count()
            return (
                f"{torch.cuda.get_device_name(0)} x{n}" if n > 1 else torch.cuda.get_device_name(0)
            )
    except ImportError:
        pass
    return f"cpu ({platform.processor() or platform.machine()})"


def database_checksums(databases: Mapping[str, str | Path]) -> dict[str, str]:
    """name -> checksum recorded in ``<folder>/database.json`` (``missing`` when unreadable)."""
    out = {}
    for name, folder in databases.items():
        meta = Path(folder) / META_FILE
        out[name] = str(read_json(meta).get("checksum", "missing")) if meta.is_file() else "missing"
    return out


def collect_provenance(
    *,
    seeds: Sequence[int] = (),
    databases: Mapping[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Gather versions, platform, device (:func:`device_name`), seeds and data checksums as a
    JSON-ready dict.

    databases: name -> database folder (checksums are read from its database.json).
    """
    return {
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "device": device_name(),
        "seeds": list(seeds),
        "data_checksums": database_checksums(databases or {}),
    }


def write_provenance(path: str | Path, provenance: Mapping[str, Any]) -> Path:
    """Write ``provenance`` as JSON atomically."""
    return write_json(path, dict(provenance))
