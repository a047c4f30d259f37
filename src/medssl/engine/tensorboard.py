"""TensorBoard event files of a run, through Lightning Fabric's ``TensorBoardLogger``.

``run_loggers(out_dir, name)`` gives the loggers a run hands to ``engine.Trainer``: a
``lightning_fabric.loggers.TensorBoardLogger`` writing into ``out_dir/tensorboard/<name>/``
when the ``tensorboard`` package can be imported (the optional extra
``pip install 'medssl[tensorboard]'``), none otherwise: a run proceeds the same either way,
and nothing of the logging enters a run's configuration, id or resume fingerprint.

The trainer logs each ``metrics.csv`` row's numeric columns (losses, learning rate, the
health read and kNN columns, validation metrics) at the row's global step. ``name`` is made
readable for ``tensorboard --logdir``: a benchmark passes its run's label (database, method or
init, task, seed), so that ``tensorboard --logdir OUT/runs`` lists runs as
``<id>/tensorboard/US1_classification_from_simclr_seed_0``, not as hashes alone. A resumed
run writes a second event file beside the first; the epochs it trains again after its last
checkpoint appear twice at their steps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from medssl.runfiles import TENSORBOARD

FLUSH_SECS = 10  # how stale a watched run's curves may be (SummaryWriter's default: 120 s)


def tensorboard_available() -> bool:
    """Whether the ``tensorboard`` package imports (Fabric's logger writes through it)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def readable_name(text: str) -> str:
    """``text`` as one folder name: runs of characters other than letters, digits and
    ``. = + -`` become ``_`` (``"US1 simclr pretraining seed 0"`` -> ``US1_simclr_pretraining_seed_0``)."""
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_") or "run"


def run_loggers(out_dir: str | Path, name: str) -> list[Any]:
    """``[TensorBoardLogger]`` writing to ``out_dir/tensorboard/<readable name>/``, or ``[]``
    without the ``tensorboard`` package."""
    if not tensorboard_available():
        return []
    from lightning_fabric.loggers import TensorBoardLogger

    return [
        TensorBoardLogger(
            Path(out_dir) / TENSORBOARD,
            name=readable_name(name),
            version="",  # no version_N subfolder: one run, one folder
            default_hp_metric=False,
            flush_secs=FLUSH_SECS,
        )
    ]
