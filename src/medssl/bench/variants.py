"""``channels_last`` and ``torch.compile`` against the default step, for pretraining and
fine-tuning (issue 23: faster steps where they are free).

For the first method's pretraining path (b) (``tasks.pretrain``'s own stream and step) and for
the classification fine-tuning step, the default (the bench's settings), ``channels_last``
(model weights and batches in NHWC) and ``compile`` (``torch.compile`` of the task's modules,
its compilation inside the untimed warm-up steps) are timed in alternating rounds
(default, channels_last, compile, default, ...), each through ``measure.train_timed`` on the
same trainer step; a variant's ratio is the ratio of its median rate to the default's
(> 1: faster). A variant that cannot run here (``torch.compile`` without a C++ compiler) is
recorded with its error instead of a rate, never dropped. ``startup_s`` is the wall time of
a run outside its timed steps (warm-up steps, and compilation for ``compile``): the steps a
variant must save before it pays for itself. ``update_cosine`` is the cosine between the
variant's parameter update over its run and the default's, from the same initial weights and
batches: the same arithmetic up to kernel order and rounding gives ~1 after one step, and less
after several (bf16 rounding differences grow, most under Adam, which scales small gradients
up), so it flags a variant that computes something else; whether a variant gives the same
training curve is a full run's health read, which the bench does not make.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from medssl.bench.measure import bench_trainer, train_timed
from medssl.bench.timing import TimedStream, count_images, count_views
from medssl.data.batches import TrainBatches
from medssl.data.database import Database
from medssl.data.labelled import finetune_splits
from medssl.engine.optim import build_optimizer
from medssl.tasks.finetune import resolve_config as finetune_config
from medssl.tasks.finetune import supervised_augment_config
from medssl.tasks.pretrain import build_training, train_views
from medssl.tasks.pretrain_config import PretrainConfig
from medssl.tasks.task import get_task

VARIANTS = ("channels_last", "compile")


def variant_ratios(
    db: Database,
    pcfg: PretrainConfig,
    *,
    variants: tuple[str, ...] = VARIANTS,
    warmup: int,
    steps: int,
    rounds: int,
    batch_size: int | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, dict[str, Any]]:
    """``{"pretrain": {...}, "finetune": {...}}``, each ``{"default": {...}, "<variant>":
    {rate, ratio, rounds, update_cosine, startup_s} | {error}}`` (the default ``{rate, rounds,
    startup_s}``) (views/s for pretraining, images/s for
    fine-tuning), timed as the module docstring says."""
    images = torch.from_numpy(db.images("pretrain", "train"))
    jobs = {
        "pretrain": lambda cfg, dev: _pretrain_job(cfg, images.to(dev), warmup, steps),
        "finetune": lambda cfg, dev: _finetune_job(
            db, cfg.trainer.seed, dev, warmup, steps, batch_size
        ),
    }
    out: dict[str, dict[str, Any]] = {}
    for stage, job in jobs.items():
        rates: dict[str, list[float]] = {v: [] for v in ("default", *variants)}
        params: dict[str, torch.Tensor] = {}
        errors: dict[str, str] = {}
        startup: dict[str, list[float]] = {v: [] for v in rates}
        for r in range(rounds):
            for v in rates:
                if v in errors:
                    continue
                progress(f"{stage} step, {v} (round {r + 1}/{rounds})")
                layout = pcfg.trainer.channels_last or v == "channels_last"
                cfg = dataclasses.replace(
                    pcfg, trainer=dataclasses.replace(pcfg.trainer, channels_last=layout)
                )
                trainer = bench_trainer(cfg.trainer)
                trainer.seed_everything()
                task, optimizer, stream = job(cfg, trainer.device)
                start = _flat(task)
                t0 = time.perf_counter()
                try:
                    result = train_timed(trainer, task, optimizer, stream, compile=v == "compile")
                except Exception as e:  # noqa: BLE001 - recorded, the bench goes on
                    if v == "default":
                        raise
                    errors[v] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                    continue
                rates[v].append(result["rate"])
                startup[v].append(time.perf_counter() - t0 - result["seconds"])
                params.setdefault(v, _flat(task) - start)
        out[stage] = {
            "default": {
                "rate": round(statistics.median(rates["default"]), 2),
                "rounds": rates["default"],
                "startup_s": round(statistics.median(startup["default"]), 2),
            }
        }
        for v in variants:
            out[stage][v] = (
                {"error": errors[v]}
                if v in errors
                else {
                    **_ratio(rates[v], rates["default"], params[v], params["default"]),
                    "startup_s": round(statistics.median(startup[v]), 2),
                }
            )
    return out


def _ratio(
    rates: list[float], default: list[float], update: torch.Tensor, reference: torch.Tensor
) -> dict[str, Any]:
    rate = statistics.median(rates)
    cosine = torch.nn.functional.cosine_similarity(update, reference, dim=0, eps=1e-12)
    return {
        "rate": round(rate, 2),
        "ratio": round(rate / max(statistics.median(default), 1e-9), 3),
        "rounds": rates,
        "update_cosine": round(float(cosine), 4),
    }


def _flat(task: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().float().flatten().cpu() for p in task.parameters()])


def _pretrain_job(pcfg: PretrainConfig, images: torch.Tensor, warmup: int, steps: int):
    method, optimizer = build_training(pcfg, images.device)
    stream = TimedStream(
        lambda epoch: train_views(images, pcfg, epoch),
        warmup=warmup,
        steps=steps,
        device=images.device,
        count=count_views,
    )
    return method, optimizer, stream


def _finetune_job(
    db: Database,
    seed: int,
    device: torch.device,
    warmup: int,
    steps: int,
    batch_size: int | None,
):
    cfg = finetune_config(None, task="classification", preset="thesis", seed=seed)
    if batch_size is not None:
        cfg = dataclasses.replace(cfg, batch_size=batch_size)
    kind = get_task("classification")(cfg)
    splits, _ = finetune_splits(db, needs_masks=kind.needs_masks, task="classification")
    data = kind.tensors(splits["train"], device)
    module = kind.build("random", splits["train"])
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, cfg.optimizer, batch_size=cfg.batch_size)
    stream = TimedStream(
        lambda epoch: TrainBatches(
            data, cfg.batch_size, seed=cfg.seed, epoch=epoch, augment=supervised_augment_config(cfg)
        ),
        warmup=warmup,
        steps=steps,
        device=device,
        count=count_images,
    )
    return module, optimizer, stream
