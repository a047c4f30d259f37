"""Self-supervised pretraining of the encoder on a database's pretraining pool.

``run_pretraining(database, out_dir, method=...)`` resolves the config
(:mod:`medssl.tasks.pretrain_config`), gathers the pool (``data.pool``: the pretraining role,
or with ``pretrain_pool: pretrain+train`` also the finetuning train split's images, labels
unused) as a uint8 tensor on the training device, and lets ``engine.Trainer`` run the method on
two augmented views per image (augmented on the device, ``data.augment``) for the budget
(``steps`` optimizer steps, or ``trainer.epochs`` epochs). Every ``health.every`` steps, and
after the last epoch, it reads the encoder's health (``engine.monitor.HealthMonitor``: the
kNN and linear readings on the labelled finetuning train + val images with their standard
errors, their paired gains over the run's own random-init encoder, the collapse guard,
alignment and uniformity on a fixed set of view pairs of up to ``HEALTH_PAIRS``
pretraining-val images) and the validation loss. Before the first step the same monitor reads
the run's random-init encoder.

A run folder holds ``config.yaml`` (resolved, with the epochs the budget gave),
``random_init.json`` (that first reading, with every read image's correctness, written
before training), ``metrics.csv`` (one row per epoch; the read's columns on read epochs),
``checkpoint.pt``, ``encoder.pt`` (torchvision ResNet-18 state dict without ``fc``),
``loss_curve.png`` (thesis fig. A.1), ``tsne.png`` (fig. A.2), ``health.png`` (the readings
against the step; also drawn when a run stops on a TrainingError) and ``done.json``, written
last, with the pool (``pool``), the random-init reading and ``engine.health.pretraining_health``
of the run (``health``). ``run_health(run)`` gives that health for any run folder.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from medssl import presets
from medssl.artifacts import read_csv, read_json, save_torch, write_json, write_text
from medssl.config import without
from medssl.data.augment import views
from medssl.data.batches import ViewBatches
from medssl.data.database import Database
from medssl.data.pool import Pool, pretraining_pool, read_images
from medssl.engine.health import Health, plot_health, pretraining_health
from medssl.engine.health_read import HealthRead, Reading
from medssl.engine.monitor import HealthMonitor, check_collapse, embed_images, precise_bn
from medssl.engine.optim import build_optimizer, build_schedule
from medssl.engine.tensorboard import run_loggers
from medssl.engine.trainer import Trainer
from medssl.errors import DataError, TrainingError
from medssl.models.encoder import build_encoder, encoder_state_dict
from medssl.models.weights import Weights, load_weights
from medssl.runfiles import (
    CHECKPOINT,
    CONFIG,
    DONE,
    ENCODER,
    HEALTH,
    LOSS_CURVE,
    METRICS,
    RANDOM_INIT,
    TSNE,
)
from medssl.ssl import SSLMethod, build_method
from medssl.tasks.pretrain_config import (
    PretrainConfig,
    augment_config,
    budget,
    fit_to_data,
    read_epochs,
    resolve_config,
    saved_config,
)

HEALTH_PAIRS = 256  # view pairs for alignment / uniformity: a few hundred images per read


def open_database(database: str | Path | Database) -> Database:
    """A Database as is, or loaded from a folder (:meth:`Database.load` says what a folder
    that is not a database is instead)."""
    if isinstance(database, Database):
        return database
    return Database.load(database)


def build_training(
    cfg: PretrainConfig, device: torch.device
) -> tuple[SSLMethod, torch.optim.Optimizer]:
    """The method around a fresh encoder and its optimizer, as a run builds them.

    Seed first (``Trainer.seed_everything``): the initial weights come from the global RNG.
    The rate is ``cfg.optimizer``'s, scaled to ``cfg.batch_size`` (``engine.optim``).
    """
    encoder = build_encoder()
    if cfg.init != "random":
        load_weights(cfg.init, encoder)  # before the method copies it (momentum encoders)
    method_ = build_method(cfg.method, encoder, cfg.method_options)
    params = [p for p in method_.parameters() if p.requires_grad]
    return method_, build_optimizer(params, cfg.optimizer, batch_size=cfg.batch_size, device=device)


def train_views(
    images: torch.Tensor, cfg: PretrainConfig, epoch: int, *, rank: int = 0, world_size: int = 1
) -> ViewBatches:
    """The training stream of epoch ``epoch``: shuffled, augmented view pairs of ``images``
    (uint8 (N, S, S) on the training device), a pure function of (images, cfg.seed, epoch);
    under DDP, this rank's share of each global batch."""
    return ViewBatches(
        images,
        cfg.batch_size,
        augment_config(cfg),
        _seed(cfg.seed, epoch, 0),
        shuffle=True,
        drop_last=True,
        channels_last=cfg.trainer.channels_last,
        rank=rank,
        world_size=world_size,
    )


def gather_pool(db: Database, cfg: PretrainConfig, split: Sequence[str] | None) -> Pool:
    """The run's pool, checked: pretraining images exist and a batch fits in it."""
    if len(db.indices("pretrain", "train")) == 0:
        raise DataError(
            "the database has no pretraining (train split) images; rebuild it with a recipe that "
            "has pretraining quotas",
            file=str(db.path or db.name),
        )
    pool = pretraining_pool(db, cfg.pretrain_pool, split)
    budget(cfg, len(pool.images))  # a batch larger than the pool: a ConfigError naming both
    return pool


def build_monitor(
    db: Database, cfg: PretrainConfig, split: Sequence[str] | None, dev: torch.device
) -> tuple[HealthMonitor, np.ndarray]:
    """The run's health monitor on the device, and the finetuning rows it reads."""
    aug = augment_config(cfg)
    rows, images, labels, groups = read_images(db, split)
    pre_val = torch.from_numpy(db.images("pretrain", "val")).to(dev)
    held_out = pre_val if len(pre_val) > 1 else torch.from_numpy(db.images("pretrain", "train"))
    held_out = held_out.to(dev)
    # Fixed for the run, from a generator stream no training epoch uses (epoch -1).
    g_pairs = torch.Generator(device=dev).manual_seed(_seed(cfg.seed, -1, 0))
    h = cfg.health
    monitor = HealthMonitor(
        torch.from_numpy(images).to(dev), labels, groups, k=h.knn_k, temperature=h.temperature,
        probe_c=h.probe_c, probe_folds=h.probe_folds, seed=cfg.seed, collapse_images=held_out,
        size=aug.size,
        pairs=views(held_out[:HEALTH_PAIRS], aug, g_pairs) if len(held_out) > 1 else None,
    )  # fmt: skip
    return monitor, rows


def run_pretraining(
    database: str | Path | Database,
    out_dir: str | Path,
    *,
    method: str | None = None,
    cfg: PretrainConfig | None = None,
    preset: str | None = presets.DEFAULT,
    overrides: Sequence[str] = (),
    epochs: int | None = None,
    device: str | None = None,
    resume: bool = False,
    split: Sequence[str] | None = None,
    log_name: str | None = None,
) -> Path:
    """Pretrain an encoder; return ``out_dir`` (see the module docstring for its files).

    ``split``: one finetuning split name per finetuning row (a fold of K-fold CV), for the pool
    (``pretrain+train``) and the health read; None: the database's split column.
    ``log_name``: the run's name in TensorBoard (``engine.tensorboard``; default: database,
    method and seed).
    """
    t_start = time.perf_counter()
    cfg = resolve_config(
        method, cfg=cfg, preset=preset, overrides=overrides, epochs=epochs, device=device
    )
    db = open_database(database)
    out = Path(out_dir)
    if (out / DONE).is_file():
        if resume:
            return out
        raise TrainingError(f"{out / DONE} exists: this run is finished; choose another --out")
    pool = gather_pool(db, cfg, split)
    cfg = fit_to_data(cfg, len(pool.images))
    init_weights = None if cfg.init == "random" else load_weights(cfg.init, build_encoder())
    name = log_name or f"{db.name} {cfg.method} pretraining seed {cfg.seed}"
    trainer = Trainer(cfg.trainer, loggers=run_loggers(out, name))
    run = _Run(cfg, db, out, trainer, pool, *build_monitor(db, cfg, split, trainer.device))
    run.init_weights = init_weights
    history = run.fit(resume)
    if trainer.fabric.is_global_zero:  # under DDP, rank 0 alone writes files
        run.write_outputs(history, time.perf_counter() - t_start)
    return out


@dataclasses.dataclass
class _Run:
    """One pretraining run between its setup and its outputs."""

    cfg: PretrainConfig
    db: Database
    out: Path
    trainer: Trainer
    pool: Pool
    monitor: HealthMonitor
    read_rows: np.ndarray  # the finetuning rows of the health read
    random_init: dict[str, Any] = dataclasses.field(default_factory=dict)
    random_read: HealthRead | None = None
    encoder: torch.nn.Module | None = None  # the trained encoder, once fit returns
    init_weights: Weights | None = None  # the weights pretraining started from (pretrain.init)

    def fit(self, resume: bool) -> list[dict[str, Any]]:
        cfg, trainer, out = self.cfg, self.trainer, self.out
        dev = trainer.device
        rank, world = trainer.fabric.global_rank, trainer.fabric.world_size
        pool = torch.from_numpy(self.pool.images).to(dev)  # uint8 (N, 110, 110)
        pre_val = torch.from_numpy(self.db.images("pretrain", "val")).to(dev)
        trainer.seed_everything()
        method_, optimizer = build_training(cfg, dev)
        lead = trainer.fabric.is_global_zero
        resolved = saved_config(cfg)
        if lead:
            self._start(resolved, resume, method_.encoder)
        per_epoch = len(train_views(pool, cfg, 0))
        reads = read_epochs(per_epoch, cfg.trainer.epochs, cfg.health.every)

        def train_batches(epoch: int) -> Iterable[Any]:
            return train_views(pool, cfg, epoch, rank=rank, world_size=world)

        def val_batches(epoch: int) -> Iterable[Any] | None:
            if len(pre_val) < 2 or epoch not in reads:
                return None
            # The same views at every read, so val loss is comparable across the run.
            return ViewBatches(
                pre_val, min(cfg.batch_size, len(pre_val)), augment_config(cfg),
                _seed(cfg.seed, 0, 1), shuffle=False, drop_last=False,
                channels_last=cfg.trainer.channels_last,
            )  # fmt: skip

        def epoch_end(epoch: int, logs: dict[str, Any]) -> dict[str, Any]:
            return self.read(method_.encoder, epoch) if epoch in reads else {}

        config = without(resolved, "trainer.progress_bar", "trainer.checkpoint_every_s")
        fingerprint = {"config": config, "database": self.db.checksum}
        if self.init_weights is not None:  # the file's content, not only its path
            fingerprint["init_sha256"] = self.init_weights.sha256
        schedule = build_schedule(
            optimizer, cfg.optimizer, steps_per_epoch=per_epoch, epochs=cfg.trainer.epochs
        )
        try:
            history = trainer.fit(
                method_, optimizer, train_batches, val_batches, out_dir=out, scheduler=schedule,
                epoch_end=epoch_end, resume=resume,
                fingerprint=fingerprint,
            )  # fmt: skip
        except TrainingError:
            if lead and (out / METRICS).is_file():  # a stopped run: its health, up to the stop
                plot_health(read_csv(out / METRICS), self.random_init, out / HEALTH, self._title())
            raise
        self.encoder = method_.encoder
        return history

    def _start(self, resolved: dict[str, Any], resume: bool, encoder: torch.nn.Module) -> None:
        """config.yaml (a fresh run), and the random-init reading: the weights built by
        ``build_training`` are the run's initial weights, also when resuming (the same seed
        builds them), read once before training and kept for the whole run."""
        out = self.out
        if not (resume and (out / CONFIG).is_file()):
            out.mkdir(parents=True, exist_ok=True)
            if (out / CHECKPOINT).is_file() and not resume:
                raise TrainingError(
                    f"{out / CHECKPOINT} exists: pass --resume to continue that run, or choose "
                    "another --out"
                )
            write_text(out / CONFIG, yaml.safe_dump(resolved, sort_keys=False))
        if (out / RANDOM_INIT).is_file():
            saved = read_json(out / RANDOM_INIT)
            self.random_init = {k: v for k, v in saved.items() if k != "per_image"}
            self.random_read = _read_from_json(saved.get("per_image"))
            return
        # a copy on the training device: the method itself is moved there by the trainer
        logs, read = self.monitor(copy.deepcopy(encoder).to(self.trainer.device))
        self.random_init, self.random_read = logs, read
        write_json(out / RANDOM_INIT, {**logs, "per_image": _read_to_json(read, self.read_rows)})

    def read(self, encoder: torch.nn.Module, epoch: int) -> dict[str, Any]:
        """The health read of ``encoder`` after ``epoch``, its gains over random init, the
        collapse guard; ``health_s`` its seconds."""
        t0 = time.perf_counter()
        logs, read = self.monitor(encoder)
        if read is not None and self.random_read is not None:
            knn, lin = read.gains(self.random_read, self.monitor.labels)
            logs |= {"knn_gain": knn.gain, "knn_gain_se": knn.se}
            logs |= {"linear_gain": lin.gain, "linear_gain_se": lin.se}
        logs["health_s"] = round(time.perf_counter() - t0, 3)
        if "collapse_std" in logs:
            check_collapse(logs["collapse_std"], self.cfg.collapse_threshold, epoch=epoch)
        return logs

    def _title(self) -> str:
        return f"{self.cfg.method} pretraining health ({self.db.name})"

    def write_outputs(self, history: list[dict[str, Any]], seconds: float) -> None:
        """encoder.pt, the figures and done.json (last)."""
        cfg, out, db = self.cfg, self.out, self.db
        save_torch(out / ENCODER, encoder_state_dict(self.encoder))
        from medssl.reporting.curves import plot_curves  # matplotlib: imported when drawing
        from medssl.reporting.tsne import plot_tsne

        plot_curves(
            history, ["train_loss", "val_loss"], out / LOSS_CURVE,
            f"{cfg.method} pretraining loss ({db.name})", ylabel="loss",
        )  # fmt: skip
        size = augment_config(cfg).size
        ft_all = torch.from_numpy(db.images("finetune")).to(self.trainer.device)
        if len(ft_all) > 0:
            # read as the health monitor reads: BN statistics re-estimated on these images
            with precise_bn(self.encoder, ft_all, size=size):
                emb = embed_images(self.encoder, ft_all, size=size).cpu().numpy()
            plot_tsne(
                emb, db.labels("finetune"), out / TSNE,
                f"{cfg.method} encoder: t-SNE of finetuning images", seed=cfg.seed,
            )  # fmt: skip
        health = pretraining_health(history, self.random_init)
        plot_health(history, self.random_init, out / HEALTH, self._title())
        write_json(
            out / DONE,
            {
                "method": cfg.method,
                "database": db.name,
                "database_checksum": db.checksum,
                "pool": self.pool.describe(),
                "steps": int(history[-1]["step"]) if history else 0,
                "epochs_run": len(history),
                "final": history[-1] if history else {},
                "device": str(self.trainer.device),
                "precision": self.trainer.precision,
                "seconds": round(seconds, 2),
                "encoder": ENCODER,
                "random_init": self.random_init,
                "health": dataclasses.asdict(health),
                "database_path": str(db.path) if db.path else None,
                "init_weights": None if self.init_weights is None else self.init_weights.record(),
            },
        )


def _read_to_json(read: HealthRead | None, rows: np.ndarray) -> dict[str, Any] | None:
    """A read's per-image correctness as random_init.json keeps it (finetuning rows in the
    read's order), so a resumed run compares with the same random-init reading."""
    if read is None:
        return None
    return {
        "rows": [int(r) for r in rows],
        **{
            f"{name}_correct": [int(c) for c in r.correct]
            for name, r in (("knn", read.knn), ("linear", read.linear))
        },
        **{f"{name}_bacc": r.bacc for name, r in (("knn", read.knn), ("linear", read.linear))},
        **{f"{name}_se": r.se for name, r in (("knn", read.knn), ("linear", read.linear))},
    }


def _read_from_json(saved: dict[str, Any] | None) -> HealthRead | None:
    if not saved:
        return None

    def one(name: str) -> Reading:
        correct = np.asarray(saved[f"{name}_correct"], dtype=bool)
        return Reading(float(saved[f"{name}_bacc"]), float(saved[f"{name}_se"]), correct)

    return HealthRead(one("knn"), one("linear"))


def run_health(run: str | Path) -> Health:
    """The health of the pretraining run in folder ``run``, finished or stopped: its
    ``metrics.csv`` and its random-init reading (``done.json``, else ``random_init.json``;
    a run without either reading gets never_beat_random None)."""
    out = Path(run)
    if not (out / METRICS).is_file():
        raise DataError(
            "no metrics.csv: not a pretraining run folder, or one stopped before its first "
            "epoch; pass the --out folder of `medssl pretrain`",
            file=str(out),
        )
    random_init: dict[str, Any] = {}
    if (out / DONE).is_file():
        random_init = read_json(out / DONE).get("random_init") or {}
    elif (out / RANDOM_INIT).is_file():
        random_init = read_json(out / RANDOM_INIT)
    return pretraining_health(read_csv(out / METRICS), random_init)


def _seed(seed: int, epoch: int, stream: int) -> int:
    return (seed * 1_000_003 + epoch * 2 + stream) % (2**63)
