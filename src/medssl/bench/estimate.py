"""The thesis protocol's duration at measured step rates (model steps only).

Protocol (thesis §5, issue 6): 9 pretraining runs (3 methods x 3 databases) of 100 epochs over
~1,240 images x 2 views, and 24 fine-tuning runs of 100 epochs over ~240 train images, half
classification and half U-Net segmentation (4 initialisations x 3 databases per task).
Epoch-end work (validation, kNN monitor, checkpoints) and process start-up are not included:
each run is :func:`medssl.tasks.estimates.run_seconds` with its defaults, the benchmark plan's
per-run estimate without those two terms.
"""

from __future__ import annotations

from collections.abc import Mapping

from medssl.bench.result import ThesisEstimate
from medssl.tasks.estimates import VIEWS, run_seconds

PRETRAIN_RUNS_PER_METHOD = 3  # 3 databases
FINETUNE_RUNS_PER_TASK = 12  # 4 initialisations (random + 3 methods) x 3 databases
EPOCHS = 100  # thesis §5.2, §5.3
PRETRAIN_IMAGES = 1240  # thesis §5.1
FINETUNE_TRAIN_IMAGES = 240  # thesis §5.3
THESIS_METHODS = ("simclr", "moco", "byol")
FINETUNE_TASKS = ("classification", "segmentation")


def thesis_estimate(
    pretrain_views_per_s: Mapping[str, float], finetune_images_per_s: Mapping[str, float]
) -> ThesisEstimate:
    """Seconds of the protocol (total, pretraining, fine-tuning), its run counts, and what it
    assumed.

    pretrain_views_per_s: measured rates of path (b) per method; a thesis method not measured
    is assumed to run at the mean of the measured ones (and named in ``assumed``).
    finetune_images_per_s: measured rates for "classification" and "segmentation".
    """
    measured = {m: float(r) for m, r in pretrain_views_per_s.items() if r and r > 0}
    if not measured:
        raise ValueError("thesis_estimate: no pretraining rate was measured")
    mean = sum(measured.values()) / len(measured)
    assumed = [m for m in THESIS_METHODS if m not in measured]
    pre = sum(
        PRETRAIN_RUNS_PER_METHOD
        * run_seconds(EPOCHS, PRETRAIN_IMAGES * VIEWS, measured.get(m, mean))
        for m in THESIS_METHODS
    )
    ft = sum(
        FINETUNE_RUNS_PER_TASK
        * run_seconds(EPOCHS, FINETUNE_TRAIN_IMAGES, finetune_images_per_s[t])
        for t in FINETUNE_TASKS
    )
    return ThesisEstimate(
        seconds=round(pre + ft, 1),
        pretrain_s=round(pre, 1),
        finetune_s=round(ft, 1),
        pretrain_runs=PRETRAIN_RUNS_PER_METHOD * len(THESIS_METHODS),
        finetune_runs=FINETUNE_RUNS_PER_TASK * len(FINETUNE_TASKS),
        epochs=EPOCHS,
        assumed=(
            f"methods {', '.join(assumed)} not measured: taken at the mean measured rate"
            if assumed
            else None
        ),
        excludes="epoch-end validation, kNN monitor, checkpoints and process start-up",
    )
