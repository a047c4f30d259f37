"""Time to a useful encoder: the step, and the training seconds, at which a pretraining run's
health read first beats the run's own random-init encoder by 2 SE (issue 23).

A short ``medssl pretrain`` run (the medssl preset, ``steps`` optimizer steps, a health read
every ``every`` steps, written to a temporary folder that is deleted) on the bench's database
— a built one with ``--database`` (the figure a user wants: their own images), else
:func:`phantom_database`: in-memory ultrasound phantoms, whose classes differ in what the
images show (the speed benchmark's grey fields carry no class signal, so no encoder could beat
random init on them). The figures are :class:`medssl.engine.health.Health`'s ``useful_step`` /
``useful_s`` (and their linear-probe twins), read as every pretraining run reads them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medssl.artifacts import read_csv
from medssl.data.database import Database
from medssl.data.records import CLASSES
from medssl.data.synth.ultrasound import generate_ultrasound
from medssl.tasks.pretrain import METRICS, run_health, run_pretraining
from medssl.tasks.pretrain_config import resolve_config

USEFUL_STEPS = 1000  # demo US1: SimCLR's kNN gain passed 2 SE by step ~300-500 (issue 23 note)
USEFUL_EVERY = 100  # the medssl preset's health.every


def phantom_database(
    n_pretrain: int = 300,
    n_train: int = 180,
    n_val: int = 60,
    *,
    pretrain_size: int = 110,
    finetune_size: int = 64,
    seed: int = 0,
) -> Database:
    """Ultrasound phantoms in memory (:func:`medssl.data.synth.ultrasound.generate_ultrasound`,
    drawn at their natural size and resized with PIL's bilinear filter): ``n_pretrain``
    pretraining images, ``n_train`` + ``n_val`` finetuning images whose classes cycle normal /
    benign / malignant, each with its lesion mask."""
    rng = np.random.default_rng(seed)
    n_ft = n_train + n_val

    def draw(label: str, size: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, mask = generate_ultrasound(rng, label)
        grey = Image.fromarray(rgb.mean(axis=2).astype(np.uint8), mode="L")
        image = np.asarray(grey.resize((size, size), Image.Resampling.BILINEAR))
        m = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
        return image, (np.asarray(m.resize((size, size), Image.Resampling.NEAREST)) > 127)

    pretrain = np.stack([draw(CLASSES[i % 3], pretrain_size)[0] for i in range(n_pretrain)])
    drawn = [draw(CLASSES[i % 3], finetune_size) for i in range(n_ft)]
    return Database.from_arrays(
        pretrain=pretrain,
        pretrain_split=["train"] * n_pretrain,
        finetune=np.stack([d[0] for d in drawn]),
        finetune_masks=np.stack([d[1] for d in drawn]).astype(np.uint8),
        finetune_labels=[i % 3 for i in range(n_ft)],
        finetune_split=["train"] * n_train + ["val"] * n_val,
        name="ultrasound phantoms",
    )


def time_to_useful(
    db: Database,
    method: str,
    *,
    steps: int = USEFUL_STEPS,
    every: int = USEFUL_EVERY,
    batch_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Pretrain ``method`` on ``db`` for ``steps`` steps (medssl preset, its pool) and return
    when the health read first beat random init by 2 SE: ``{method, database, steps, every,
    batch_size, reads, useful_step, useful_s, useful_step_linear, useful_s_linear,
    final_knn_gain, final_knn_gain_se, final_linear_gain, final_linear_gain_se,
    seconds_per_step, read_fraction}``; a ``useful_*`` None means "not within ``steps``"."""
    overrides = [f"steps={steps}", f"health.every={every}", f"seed={seed}"]
    overrides += ["trainer.progress_bar=false"]
    if batch_size is not None:
        overrides.append(f"batch_size={batch_size}")
    cfg = resolve_config(method, overrides=overrides, device=device)
    with tempfile.TemporaryDirectory(prefix="medssl-bench-useful-") as tmp:
        run_pretraining(db, tmp, cfg=cfg)
        h = run_health(tmp)
        rows = read_csv(Path(tmp) / METRICS)
    trained = sum(float(r["epoch_time_s"]) for r in rows if r.get("epoch_time_s"))
    return {
        "method": method,
        "database": db.name,
        "steps": h.steps,
        "every": every,
        "batch_size": cfg.batch_size,
        "reads": h.reads,
        "useful_step": h.useful_step,
        "useful_s": _round(h.useful_s),
        "useful_step_linear": h.useful_step_linear,
        "useful_s_linear": _round(h.useful_s_linear),
        "final_knn_gain": _round(h.final_knn_gain, 4),
        "final_knn_gain_se": _round(h.final_knn_gain_se, 4),
        "final_linear_gain": _round(h.final_linear_gain, 4),
        "final_linear_gain_se": _round(h.final_linear_gain_se, 4),
        "seconds_per_step": _round(trained / h.steps if trained and h.steps else None, 4),
        "read_fraction": _round(h.read_fraction, 4),
    }


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)
