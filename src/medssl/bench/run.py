"""``run_bench``: the three pretraining paths per method, the fine-tuning step rates, and the result.

Per method, in one process and one run (``measure.train_timed`` for each path, so all share
the trainer's step and differ only in their batch stream):

(a) ``ceiling``: one batch of views made once on the device, fed again at every step — the
    model's speed with no data pipeline;
(b) ``medssl``: ``tasks.pretrain``'s own training stream (``train_views``: uint8 database on
    the device, batched augmentation there) and its own method and optimizer
    (``build_training``), as ``medssl pretrain`` drives them;
(c) ``reference``: lightly's PIL transforms in a DataLoader with worker processes
    (``bench.reference``).

The result is a :class:`medssl.bench.result.BenchResult`; ``save_result`` writes its JSON to
``~/.cache/medssl/bench.json``, whose ``throughput`` the benchmark stage reads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import itertools
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from medssl import __version__
from medssl.artifacts import read_json, write_json
from medssl.bench.estimate import thesis_estimate
from medssl.bench.finetune_epochs import finetune_epochs
from medssl.bench.finetune_rate import finetune_rates
from medssl.bench.measure import bench_trainer, train_timed
from medssl.bench.memory import peak_rss_children_mb, peak_rss_mb
from medssl.bench.reference import default_workers, reference_loader, to_device
from medssl.bench.result import SCHEMA, BenchDatabase, BenchResult, MethodBench
from medssl.bench.synthetic import FINETUNE_TRAIN_IMAGES, PRETRAIN_IMAGES, synthetic_database
from medssl.bench.timing import TimedStream, count_views
from medssl.bench.useful import USEFUL_EVERY, USEFUL_STEPS, phantom_database, time_to_useful
from medssl.bench.variants import VARIANTS, variant_ratios
from medssl.data.database import Database
from medssl.engine.trainer import cpu_has_bf16_units
from medssl.errors import ConfigError
from medssl.ssl import method_names
from medssl.tasks.estimates import cache_file
from medssl.tasks.pretrain import build_training, open_database, train_views
from medssl.tasks.pretrain_config import PretrainConfig, augment_config, resolve_config

PATHS = ("ceiling", "medssl", "reference")
# Issue 6 targets: (b)/(a) and (b)/(c) per device type.
TARGETS = {
    "cpu": {"ratio_medssl_to_ceiling": 0.90, "ratio_medssl_to_reference": 1.0},
    "cuda": {"ratio_medssl_to_ceiling": 0.80, "ratio_medssl_to_reference": 3.0},
}


@dataclass
class BenchConfig:
    methods: list[str] = field(default_factory=lambda: ["simclr"])  # registered SSL methods
    device: str = "auto"  # auto | cpu | cuda
    precision: str | None = None  # 32-true | bf16-mixed; None: the trainer's default
    channels_last: bool = False
    compile: bool = False  # torch.compile the task's modules (opt-in)
    batch_size: int | None = None  # None: the thesis presets (64)
    warmup: int = 5  # untimed steps per path (allocator, autotuning, worker start)
    steps: int = 20  # timed steps per path and round
    # Paths are timed in rounds (a, b, c, a, b, c, ...) and each figure is the median over
    # rounds, so a load change on a shared machine hits every path alike.
    rounds: int = 3
    num_workers: int | None = None  # reference DataLoader workers; None: one per CPU
    database: str | None = None  # a built database folder; None: synthetic, in memory
    images: int = PRETRAIN_IMAGES  # synthetic pretraining images
    finetune_images: int = FINETUNE_TRAIN_IMAGES  # synthetic finetuning train images (+ 1/4 val)
    finetune: bool = True  # also time the fine-tuning steps (needed for the thesis estimate)
    finetune_epochs: int = 3  # epochs per round of the fine-tuning comparison with a plain loop
    # channels_last / compile against the default step (bench.variants); () skips them
    variants: tuple[str, ...] = VARIANTS
    # time to a useful encoder (bench.useful): pretraining steps, 0 skips it; reads every N
    useful_steps: int = USEFUL_STEPS
    useful_every: int = USEFUL_EVERY
    seed: int = 0


def resolve_methods(method: str) -> list[str]:
    """``"all"`` -> every registered method; else the one name (unknown names list the valid ones)."""
    names = method_names()
    if method == "all":
        return names
    if method not in names:
        raise ConfigError(
            f"--method: unknown SSL method {method!r}; valid: all, {', '.join(names)}"
        )
    return [method]


def pretrain_config(method: str, cfg: BenchConfig) -> PretrainConfig:
    """The thesis pretraining config of ``method`` with the bench's device settings."""
    pcfg = resolve_config(method, preset="thesis", device=cfg.device)
    pcfg = dataclasses.replace(
        pcfg,
        seed=cfg.seed,
        batch_size=cfg.batch_size or pcfg.batch_size,
        trainer=dataclasses.replace(
            pcfg.trainer,
            seed=cfg.seed,
            precision=cfg.precision or pcfg.trainer.precision,
            channels_last=cfg.channels_last or pcfg.trainer.channels_last,
            progress_bar=False,
        ),
    )
    return resolve_config(cfg=pcfg, preset=None)


def bench_method(
    db: Database, method: str, cfg: BenchConfig, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """The three paths of one method: the fields of :class:`MethodBench` but ``meets_targets``."""
    pcfg = pretrain_config(method, cfg)
    host_images = db.images("pretrain", "train")  # uint8 (N, S, S)
    if pcfg.batch_size > len(host_images):
        raise ConfigError(
            f"--batch-size {pcfg.batch_size} is larger than the {len(host_images)} pretraining "
            f"train images of database {db.name}; lower it"
        )
    if cfg.rounds < 1:
        raise ConfigError(f"bench: expected --rounds >= 1, got {cfg.rounds}")
    n = cfg.warmup + cfg.steps
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PATHS}

    def run(path: str, trainer, epoch_batches, **stream_options: Any) -> None:
        progress(
            f"{method} {path} (round {len(runs[path]) + 1}/{cfg.rounds}): "
            f"{cfg.warmup} warm-up + {cfg.steps} timed steps"
        )
        trainer.seed_everything()
        method_, optimizer = build_training(pcfg, trainer.device)
        stream = TimedStream(
            epoch_batches,
            warmup=cfg.warmup,
            steps=cfg.steps,
            device=trainer.device,
            count=count_views,
            **stream_options,
        )
        r = train_timed(trainer, method_, optimizer, stream, compile=cfg.compile)
        runs[path].append({"views_per_s": r.pop("rate"), **r})

    trainer = bench_trainer(pcfg.trainer)
    images = torch.from_numpy(host_images).to(trainer.device)
    # (a) ceiling: the same views at every step, made once on the device.
    fixed = next(iter(train_views(images, pcfg, 0)))
    # (c) reference: lightly transforms in a DataLoader with (persistent) workers.
    workers = default_workers() if cfg.num_workers is None else cfg.num_workers
    loader = reference_loader(
        host_images,
        method,
        augment_config(pcfg),
        batch_size=pcfg.batch_size,
        num_workers=workers,
        seed=cfg.seed,
        pin_memory=trainer.device.type == "cuda",
    )
    transform = type(loader.dataset.transform).__name__
    for _ in range(cfg.rounds):
        run("ceiling", bench_trainer(pcfg.trainer), lambda epoch: itertools.repeat(fixed, n))
        # (b) medssl: pretraining's own stream, epoch after epoch.
        run(
            "medssl",
            bench_trainer(pcfg.trainer),
            lambda epoch: train_views(images, pcfg, epoch),
        )
        run(
            "reference",
            bench_trainer(pcfg.trainer),
            lambda epoch: loader,
            to_device=to_device(trainer.device, channels_last=pcfg.trainer.channels_last),
        )
    out = {p: median_run(runs[p]) for p in PATHS}
    out["reference"].update(num_workers=workers, transform=f"lightly.transforms.{transform}")

    a, b, c = (out[p]["views_per_s"] for p in PATHS)
    fps = [r["fingerprint"] for p in PATHS for r in runs[p]]
    out["ratio_medssl_to_ceiling"] = round(b / a, 3)
    out["ratio_medssl_to_reference"] = round(b / c, 3)
    out["same_model_and_step"] = all(fp == fps[0] for fp in fps)
    out["batch_size"] = pcfg.batch_size
    out["augmentation"] = pcfg.augmentation
    return out


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median rate (lower median for an even count), with every round's rate."""
    ordered = sorted(runs, key=lambda r: r["views_per_s"])
    return {**ordered[(len(ordered) - 1) // 2], "rounds": [r["views_per_s"] for r in runs]}


def run_bench(cfg: BenchConfig, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Measure every path of ``cfg.methods`` (and the fine-tuning steps); return the result.

    ``progress`` receives one line per path as it starts (silent when None).
    """
    progress = progress or (lambda line: None)
    if cfg.useful_steps < 0 or cfg.useful_every < 1:
        raise ConfigError(
            f"bench: expected --useful-steps >= 0 and --useful-every >= 1, got "
            f"{cfg.useful_steps} and {cfg.useful_every}"
        )
    unknown = sorted(set(cfg.variants) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"bench: unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
    load_start = _load()
    db = (
        open_database(cfg.database)
        if cfg.database
        else synthetic_database(cfg.images, cfg.finetune_images, seed=cfg.seed)
    )
    measured = {}
    for m in cfg.methods:
        measured[m] = bench_method(db, m, cfg, progress)
        gc.collect()  # the reference DataLoader's persistent workers end here (peak RSS counted)
    trainer_cfg = pretrain_config(cfg.methods[0], cfg).trainer
    probe = bench_trainer(trainer_cfg)
    device, precision = probe.device, probe.precision
    if cfg.finetune:
        progress(f"fine-tuning steps: {cfg.warmup} warm-up + {cfg.steps} timed steps per task")
    finetune = (
        finetune_rates(
            db,
            trainer_cfg,
            batch_size=cfg.batch_size,
            warmup=cfg.warmup,
            steps=cfg.steps,
            compile=cfg.compile,
            rounds=cfg.rounds,
        )
        if cfg.finetune
        else {}
    )
    for r in finetune.values():
        r["images_per_s"] = r.pop("rate")
    if cfg.finetune:
        progress(
            f"fine-tuning epochs: {cfg.finetune_epochs} per round, medssl and a plain loop "
            "doing the same job"
        )
        epochs = finetune_epochs(
            db,
            dataclasses.replace(trainer_cfg, precision=precision),
            epochs=cfg.finetune_epochs,
            rounds=cfg.rounds,
            batch_size=cfg.batch_size,
        )
        for task, r in finetune.items():
            r["epochs"] = epochs[task]
    variants = None
    if cfg.variants:
        variants = variant_ratios(
            db,
            pretrain_config(cfg.methods[0], cfg),
            variants=tuple(cfg.variants),
            warmup=max(cfg.warmup, 1),  # compilation happens in an untimed step
            steps=cfg.steps,
            rounds=cfg.rounds,
            batch_size=cfg.batch_size,
            progress=progress,
        )
    useful = None
    if cfg.useful_steps > 0:
        progress(
            f"time to a useful encoder: {cfg.methods[0]} pretraining, medssl preset, "
            f"{cfg.useful_steps} steps, a health read every {cfg.useful_every}"
        )
        phantoms = lambda: phantom_database(  # noqa: E731
            min(cfg.images, 300), min(cfg.finetune_images, 180),
            max(2, min(cfg.finetune_images, 180) // 3), seed=cfg.seed,
        )  # fmt: skip
        useful = time_to_useful(
            open_database(cfg.database) if cfg.database else phantoms(),
            cfg.methods[0],
            steps=cfg.useful_steps,
            every=cfg.useful_every,
            batch_size=cfg.batch_size,
            device=cfg.device,
            seed=cfg.seed,
        )
    targets = TARGETS["cuda" if device.type == "cuda" else "cpu"]
    methods = {
        m: MethodBench(**r, meets_targets=all(r[k] >= v for k, v in targets.items()))
        for m, r in measured.items()
    }
    throughput = {m: r.medssl["views_per_s"] for m, r in methods.items()}
    throughput.update({t: r["images_per_s"] for t, r in finetune.items()})
    estimate = (
        thesis_estimate(
            {m: r.medssl["views_per_s"] for m, r in methods.items()},
            {t: r["images_per_s"] for t, r in finetune.items()},
        )
        if finetune
        else None
    )
    cuda_peaks = [
        p["cuda_max_allocated_mb"]
        for r in methods.values()
        for p in (r.ceiling, r.medssl, r.reference)
    ] + [r["cuda_max_allocated_mb"] for r in finetune.values()]
    return BenchResult(
        schema=SCHEMA,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        medssl=__version__,
        torch=torch.__version__,
        device=str(device),
        device_name=device_name(device),
        precision=precision,
        precision_note=precision_note(device, precision),
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        threads=torch.get_num_threads(),
        cpus=_cpus(),
        load_average={"start": load_start, "end": _load()},
        batch_size=next(iter(methods.values())).batch_size,
        warmup_steps=cfg.warmup,
        steps=cfg.steps,
        rounds=cfg.rounds,
        database=BenchDatabase(
            name=db.name,
            synthetic=cfg.database is None,
            pretrain_train_images=len(db.indices("pretrain", "train")),
            finetune_train_images=len(db.indices("finetune", "train")),
        ),
        methods=methods,
        finetune=finetune,
        targets=targets,
        thesis_estimate_s=estimate.seconds if estimate else None,
        thesis_estimate=estimate,
        peak_rss_mb=peak_rss_mb(),
        peak_rss_workers_mb=peak_rss_children_mb(),
        cuda_max_allocated_mb=max((p for p in cuda_peaks if p is not None), default=None),
        model_fingerprint={m: r.medssl["fingerprint"] for m, r in methods.items()},
        throughput=throughput,
        variants=variants,
        time_to_useful=useful,
    )


def save_result(result: BenchResult, path: Path | None = None) -> Path:
    """Write ``result``'s JSON atomically to ``path`` (default ``cache_file()``).

    ``throughput`` keeps the figures of an earlier bench on the same device and precision for
    what this one did not measure (e.g. ``--method moco`` after ``--method all``).
    """
    path = path or cache_file()
    merged = result.to_json()
    if path.is_file():
        try:
            old = read_json(path)
        except (OSError, ValueError):
            old = {}
        same = all(old.get(k) == merged[k] for k in ("device_name", "precision"))
        if same and isinstance(old.get("throughput"), dict):
            merged["throughput"] = {**old["throughput"], **result.throughput}
    return write_json(path, merged)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def precision_note(device: torch.device, precision: str) -> str:
    if device.type == "cuda":
        if precision == "bf16-mixed":
            return "bf16 autocast (default on GPUs with bf16 units), TF32 matmuls"
        return "fp32 with TF32 matmuls"
    units = cpu_has_bf16_units()
    if precision == "32-true":
        if units:
            return "fp32 asked for on a CPU with bf16 units (bf16 autocast is the default there)"
        return "fp32, the default on CPUs without bf16 units (bf16 would only be emulated)"
    if units:
        return "bf16 autocast, the default on CPUs with bf16 units (parity with fp32 tested)"
    return "bf16 autocast asked for on a CPU without bf16 units: emulated, slower than fp32"


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
