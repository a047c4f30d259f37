"""medssl: does self-supervised contrastive pretraining help the clinical task, and by how much?

Notebook API (imports are lazy so ``import medssl`` stays fast)::

    import medssl
    db = medssl.load_database("demo/us1")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "load_database": ("medssl.data.database", "Database.load"),
    "Database": ("medssl.data.database", "Database"),
    "build_database": ("medssl.data.build", "build_database"),
    "write_phantoms": ("medssl.data.synth", "write_phantoms"),
    "open_source": ("medssl.data.sources", "open_source"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'medssl' has no attribute {name!r}")
    import importlib

    module, attr = _API[name]
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
