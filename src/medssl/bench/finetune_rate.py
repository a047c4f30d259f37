"""Fine-tuning step rates for the thesis estimate: classification and U-Net segmentation.

The real fine-tuning pieces (``tasks.finetune``: thesis preset, ``finetune_splits``, the task
module, its optimizer and its shuffled, flipped batch stream of device tensors) driven by the
trainer's step through ``measure.train_timed``, and again in a hand-written loop
(``measure.plain_timed``: the same model, batches, optimizer and steps) for the ratio of the
two. Epoch-end work (BN recalibration, validation metrics) is not timed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from medssl.bench.measure import bench_trainer, plain_timed, train_timed
from medssl.bench.timing import TimedStream, count_images
from medssl.data.batches import TrainBatches
from medssl.data.database import Database
from medssl.data.labelled import finetune_splits
from medssl.engine.optim import build_optimizer
from medssl.engine.trainer import TrainerConfig
from medssl.tasks.finetune import resolve_config, supervised_augment_config
from medssl.tasks.task import get_task, task_names


def finetune_rates(
    db: Database,
    trainer_config: TrainerConfig,
    *,
    batch_size: int | None,
    warmup: int,
    steps: int,
    compile: bool = False,
    rounds: int = 1,
) -> dict[str, dict[str, Any]]:
    """{task: train_timed result with ``rate`` in images/s} for every fine-tuning task.

    Each task is timed ``rounds`` times through the trainer and as many times in the plain
    loop, alternately; each figure is the round with the median rate (``rounds``: every
    round's rate), ``ratio_to_plain_loop`` the ratio of the medians and ``ratio_rounds`` each
    round's ratio (medssl to the plain loop timed right after it).
    """
    out: dict[str, dict[str, Any]] = {}
    for task in task_names():
        cfg = resolve_config(None, task=task, preset="thesis", seed=trainer_config.seed)
        if batch_size is not None:
            cfg = dataclasses.replace(cfg, batch_size=batch_size)
        kind = get_task(task)(cfg)
        trainer = bench_trainer(dataclasses.replace(trainer_config, channels_last=False))
        splits, _ = finetune_splits(db, needs_masks=kind.needs_masks, task=task)
        data = kind.tensors(splits["train"], trainer.device)

        def timed_run(cfg=cfg, kind=kind, data=data, splits=splits, trainer=trainer):
            trainer.seed_everything(cfg.seed)
            module = kind.build("random", splits["train"])
            params = [p for p in module.parameters() if p.requires_grad]
            optimizer = build_optimizer(params, cfg.optimizer, batch_size=cfg.batch_size)
            stream = TimedStream(
                lambda epoch: TrainBatches(
                    data,
                    cfg.batch_size,
                    seed=cfg.seed,
                    epoch=epoch,
                    augment=supervised_augment_config(cfg),
                ),  # fmt: skip
                warmup=warmup,
                steps=steps,
                device=trainer.device,
                count=count_images,
            )
            return module, optimizer, stream

        # The same model, data, optimizer and steps through the trainer and in a hand-written
        # loop, alternately, round after round: a load change on a shared machine hits both
        # alike (timed one after the other, a drifting load biases the ratio).
        runs: dict[str, list[dict[str, Any]]] = {"medssl": [], "plain": []}
        for _ in range(rounds):
            r = train_timed(trainer, *timed_run(), compile=compile)
            runs["medssl"].append(r)
            module, optimizer, stream = timed_run()
            runs["plain"].append(
                plain_timed(
                    module, optimizer, stream, device=trainer.device, precision=trainer.precision
                )
            )
        medssl, plain = (_median(runs[p]) for p in ("medssl", "plain"))
        out[task] = {**medssl, "batch_size": cfg.batch_size, "plain_loop": plain}
        out[task]["ratio_to_plain_loop"] = round(medssl["rate"] / max(plain["rate"], 1e-9), 3)
        out[task]["ratio_rounds"] = [
            round(a["rate"] / max(b["rate"], 1e-9), 3)
            for a, b in zip(runs["medssl"], runs["plain"], strict=True)
        ]
    return out


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate (lower median for an even count), with every round's rate."""
    ordered = sorted(runs, key=lambda r: r["rate"])
    return {**ordered[(len(ordered) - 1) // 2], "rounds": [r["rate"] for r in runs]}
