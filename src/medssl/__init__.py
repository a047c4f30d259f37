"""medssl: does self-supervised contrastive pretraining help the clinical task, and by how much?

Notebook API (imports are lazy so ``import medssl`` stays fast)::

    import medssl
    db = medssl.load_database("runs/demo/databases/US1")
    run = medssl.run_pretraining(db, "runs/simclr", method="simclr", epochs=5)
    ft = medssl.run_finetune(db, "runs/cls", task="classification", init=run / "encoder.pt")
    medssl.run_benchmark(medssl.resolve_benchmark("demo", [], None, None), "runs/demo")
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
    "build_preset": ("medssl.data.build", "build_preset"),
    "run_pretraining": ("medssl.tasks.pretrain", "run_pretraining"),
    "run_finetune": ("medssl.tasks.finetune", "run_finetune"),
    "run_benchmark": ("medssl.tasks.benchmark", "run_benchmark"),
    "resolve_benchmark": ("medssl.tasks.benchmark", "resolve_benchmark"),
    "build_report": ("medssl.reporting.report", "build_report"),
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
