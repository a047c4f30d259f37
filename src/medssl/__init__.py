"""medssl: does self-supervised contrastive pretraining help the clinical task, and by how much?

From a notebook (each name has its own help, e.g. ``help(medssl.embed)``)::

    import medssl
    db = medssl.load_database("data/US1")        # a built, verified database; print(db)
    encoder = medssl.load_encoder("runs/simclr")  # encoder.pt or a run folder -> ResNet-18
    z = medssl.embed(encoder, db, split="test")   # float32 (N, 512) features

The API:

- ``load_database(path)``, ``Database`` (``Database.from_arrays`` for an in-memory one)
- ``load_encoder(path)``: an ``encoder.pt``, a pretraining or a fine-tuning run folder
- ``embed(encoder, images_or_db, *, role="finetune", split=None)``: features as numpy
- ``build_database``, ``build_preset``, ``write_phantoms``, ``open_source``: the data layer
- ``run_pretraining``, ``run_finetune``, ``run_benchmark``, ``resolve_benchmark``,
  ``build_report``: the stages of the ``medssl`` command, e.g.
  ``medssl.run_benchmark(medssl.resolve_benchmark("demo", [], None, None), "runs/demo")``

Each name is imported on first use, so ``import medssl`` stays fast (``help(medssl)``
imports them all, torch included, to show their documentation).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "load_database": ("medssl.api", "load_database"),
    "load_encoder": ("medssl.api", "load_encoder"),
    "embed": ("medssl.api", "embed"),
    "Database": ("medssl.data.database", "Database"),
    "build_database": ("medssl.data.build", "build_database"),
    "write_phantoms": ("medssl.data.phantoms", "write_phantoms"),
    "open_source": ("medssl.data.sources", "open_source"),
    "build_preset": ("medssl.data.build_preset", "build_preset"),
    "run_pretraining": ("medssl.tasks.pretrain", "run_pretraining"),
    "run_finetune": ("medssl.tasks.finetune", "run_finetune"),
    "run_benchmark": ("medssl.tasks.benchmark", "run_benchmark"),
    "resolve_benchmark": ("medssl.tasks.benchmark", "resolve_benchmark"),
    "build_report": ("medssl.reporting.report", "build_report"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """The API's names, imported on first use (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module 'medssl' has no attribute {name!r}")
    import importlib

    module, attr = _API[name]
    return getattr(importlib.import_module(module), attr)


def __dir__() -> list[str]:
    """The API and the subpackages, so that ``dir(medssl)``, completion and ``help(medssl)``
    list the lazily imported names (without the module's own ``__getattr__``/``__dir__``)."""
    hidden = {"__getattr__", "__dir__", "annotations", "Any"}
    return sorted((set(globals()) - hidden) | set(_API))
