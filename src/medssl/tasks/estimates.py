"""How long a run takes: one estimate, epochs × items per epoch ÷ measured items per second.

The benchmark's plan and progress bar estimate every planned run with :func:`estimate_run`;
``medssl bench``'s thesis-protocol duration (``bench.estimate``) sums :func:`run_seconds` over
the protocol's runs. Rates come from ``medssl bench`` (its ``throughput``, saved in
:func:`cache_file`) or, on a machine without one, from :data:`CPU_THROUGHPUT`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medssl.artifacts import read_json
from medssl.runfiles import BENCH_RESULT

# Training throughput (views or images per second, fp32, run overheads folded in) measured
# on the project's 2-core AMD EPYC (AVX2) development machine running the demo preset with
# two workers of one thread each: the duration estimate's fallback when this machine has no
# `medssl bench` figures of its own (cache_file()).
CPU_THROUGHPUT = {
    "simclr": 45.0,
    "moco": 50.0,
    "byol": 34.0,
    "classification": 44.0,
    "segmentation": 25.0,
}
UNKNOWN_METHOD_VIEWS_PER_S = 250.0  # a method neither measured nor in CPU_THROUGHPUT
VIEWS = 2  # pretraining views per image

# A benchmark run beyond its training steps: epoch-end work (validation, kNN monitor,
# checkpoints) as a share of the steps, and process start-up.
EPOCH_END_FACTOR = 1.3
START_S = 3.0

# A probe: the embedding of the finetuning images (once per encoder, then cached) and the
# grid of small scikit-learn / kNN fits; rough figures for a 2-core CPU.
PROBE_SECONDS = 3.0
PROBE_IMAGES_PER_S = 150.0


def run_seconds(
    epochs: int, items: int, rate: float, *, epoch_end: float = 1.0, start_s: float = 0.0
) -> float:
    """Seconds of one run: ``epochs`` × ``items`` per epoch (views or images) ÷ ``rate`` items
    per second of training steps, × ``epoch_end`` for the work after each epoch, + ``start_s``.
    The defaults count the training steps alone."""
    return epochs * items / float(rate) * epoch_end + start_s


def cache_file() -> Path:
    """``~/.cache/medssl/bench.json``: where ``medssl bench`` saves what it measured."""
    return Path.home() / ".cache" / "medssl" / BENCH_RESULT


def throughput(path: Path | None = None) -> dict[str, float]:
    """Items per second by method and task: :data:`CPU_THROUGHPUT`, updated by the
    ``throughput`` of this machine's ``medssl bench`` result (``path``, default
    :func:`cache_file`) when there is a readable one."""
    speed = dict(CPU_THROUGHPUT)
    path = path or cache_file()
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            speed.update(read_json(path).get("throughput", {}))
    return speed


def pretrain_steps(cfg: Any, db: Any, split: Any = None) -> tuple[int, int]:
    """(optimizer steps, pool images) of a pretraining run of ``cfg`` (a resolved
    PretrainConfig) on ``db``: whole epochs of full batches over the pool, ``steps`` rounded up
    to whole epochs or ``trainer.epochs`` epochs (``tasks.pretrain_config.budget``)."""
    from medssl.data.pool import pool_size
    from medssl.tasks.pretrain_config import budget  # torch: imported when estimating

    n = pool_size(db, cfg.pretrain_pool, split)
    if n < cfg.batch_size:
        return 0, n
    epochs, per_epoch = budget(cfg, n)
    return epochs * per_epoch, n


def estimate_run(run: Any, db: Any, speed: Mapping[str, float]) -> float:
    """Seconds of one planned benchmark run (a ``tasks.matrix.Run``) on database ``db``: a
    pretraining run's steps over two views of each batch image, a fine-tune's epochs over every
    finetuning image, each with epoch-end work and start-up; a probe a fixed cost plus one
    embedding of the finetuning images."""
    n_finetune = len(db.rows("finetune"))
    if run.kind == "probe":  # one embedding per encoder (cached), then a few small fits
        return PROBE_SECONDS + n_finetune / PROBE_IMAGES_PER_S
    if run.kind == "pretrain":
        steps, _ = pretrain_steps(run.obj, db)
        items = run.obj.batch_size * VIEWS
        rate = speed.get(run.config["method"], UNKNOWN_METHOD_VIEWS_PER_S)
        return run_seconds(steps, items, rate, epoch_end=EPOCH_END_FACTOR, start_s=START_S)
    epochs = int(run.config["trainer"]["epochs"])
    return run_seconds(
        epochs, n_finetune, speed[run.task], epoch_end=EPOCH_END_FACTOR, start_s=START_S
    )
