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
) -> dict[str, dict[str, Any]]:
    """{task: train_timed result with ``rate`` in images/s} for every fine-tuning task."""
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

        out[task] = train_timed(trainer, *timed_run(), compile=compile)
        out[task]["batch_size"] = cfg.batch_size
        # the same model, data, optimizer and steps in a hand-written loop
        module, optimizer, stream = timed_run()
        plain = plain_timed(
            module, optimizer, stream, device=trainer.device, precision=trainer.precision
        )
        out[task]["plain_loop"] = plain
        out[task]["ratio_to_plain_loop"] = round(out[task]["rate"] / max(plain["rate"], 1e-9), 3)
    return out
