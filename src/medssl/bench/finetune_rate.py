"""Fine-tuning step rates for the thesis estimate: classification and U-Net segmentation.

The real fine-tuning pieces (``tasks.finetune``: thesis preset, ``finetune_splits``, the task
module, its optimizer and its shuffled, flipped batch stream of device tensors) driven by the
trainer's step through ``measure.train_timed``. Epoch-end work (BN recalibration, validation
metrics) is not timed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from medssl.bench.measure import bench_trainer, train_timed
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
        trainer.seed_everything(cfg.seed)
        module = kind.build("random", splits["train"])
        params = [p for p in module.parameters() if p.requires_grad]
        optimizer = build_optimizer(params, cfg.optimizer, batch_size=cfg.batch_size)
        stream = TimedStream(
            lambda epoch, cfg=cfg, data=data: TrainBatches(
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
        out[task] = train_timed(trainer, module, optimizer, stream, compile=compile)
        out[task]["batch_size"] = cfg.batch_size
    return out
