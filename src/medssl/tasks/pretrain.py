# Over 400 lines: the pretraining stage (config, resolution, run, run_health), as finetune.py.
"""Self-supervised pretraining of the encoder on a database's pretraining images.

``run_pretraining(database, out_dir, method=...)`` resolves the config (preset, then
``--set`` overrides, then explicit arguments), holds the pretraining images in memory as a
uint8 tensor on the training device, and lets ``engine.Trainer`` run the method on two
augmented views per image (augmented on the device, ``data.augment``). Per epoch it logs
train/val loss, learning rate, the kNN monitor (bank: finetuning-train images, queries:
finetuning-val images), the collapse guard, and alignment and uniformity on a fixed set of
view pairs of up to ``HEALTH_PAIRS`` pretraining-val images (train images when val has fewer
than 2). Before the first step the same monitor reads the run's own random-init encoder.

A run folder holds ``config.yaml`` (resolved), ``random_init.json`` (that first reading,
written before training), ``metrics.csv``, ``checkpoint.pt``, ``encoder.pt`` (torchvision
ResNet-18 state dict without ``fc``), ``loss_curve.png`` (thesis fig. A.1), ``tsne.png``
(fig. A.2), ``health.png`` (kNN against random init, std, alignment, uniformity; also drawn
when a run stops on a TrainingError) and ``done.json``, written last, with the random-init
reading (``random_init``) and ``engine.health.pretraining_health`` of the run (``health``).
``run_health(run)`` gives that health for any run folder, finished or stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from medssl import presets
from medssl.artifacts import read_csv, read_json, save_torch, write_json, write_text
from medssl.config import apply_overrides, from_dict, merge, to_dict, to_plain, without
from medssl.data.augment import AUGMENTATIONS, AugmentConfig, views
from medssl.data.batches import ViewBatches
from medssl.data.database import Database
from medssl.engine.health import Health, plot_health, pretraining_health
from medssl.engine.monitor import KNNMonitor, check_collapse, embed_images, precise_bn
from medssl.engine.optim import OptimizerConfig, build_optimizer, build_schedule, check_optimizer
from medssl.engine.tensorboard import run_loggers
from medssl.engine.trainer import Trainer, TrainerConfig
from medssl.errors import ConfigError, DataError, TrainingError
from medssl.models.encoder import build_encoder, encoder_state_dict
from medssl.models.weights import load_weights, weights_file
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
from medssl.ssl import SSLMethod, build_method, get_method, method_config

HEALTH_PAIRS = 256  # view pairs for alignment / uniformity: a few hundred images per epoch


@dataclass
class PretrainConfig:
    method: str = "simclr"  # a name in medssl.ssl.METHODS
    # The method's options: a mapping of some of its Config's fields as a preset or --set gives
    # them, and after resolve_config the method's typed Config itself (every field), until
    # the config is saved (to_dict). Its type follows ``method``, so from_dict cannot build it.
    method_options: Any = field(default_factory=dict)
    # A preset's options per method ({moco: {momentum_end: 1.0}, ...}), laid under
    # method_options when that method runs; the resolved config keeps only the run's own
    # (so a change for one method leaves the other methods' runs, and their ids, alone).
    method_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    augmentation: str = "thesis"  # a name in medssl.data.augment.AUGMENTATIONS
    # Fields of AugmentConfig laid over the ``augmentation`` preset: a mapping as given, the
    # resolved AugmentConfig after resolve_config (a merge turns it back into its mapping).
    augmentation_options: dict[str, Any] | AugmentConfig = field(default_factory=dict)
    # thesis §5.2: Adam, lr 0.014, weight decay 1e-6, no schedule
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adam", lr=0.014, weight_decay=1e-6)
    )
    batch_size: int = 64  # thesis §5.2
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=100))  # thesis §5.2
    seed: int = 0  # seeds model init, views and shuffling (copied to trainer.seed)
    knn_k: int = (
        20  # neighbours of the kNN monitor (InstDisc uses 200 on ImageNet; our bank is ~1000)
    )
    collapse_threshold: float = (
        0.01  # collapse guard on std * sqrt(D); random init gives ~0.1, healthy ~0.3-1
    )
    # The encoder's initial weights: "random" (torchvision's Kaiming init) or weights you
    # bring (models.weights: a torchvision or timm ResNet-18, an encoder.pt, a run folder),
    # SSL pretraining from e.g. ImageNet weights. Saved only when set (run ids stay).
    init: str = "random"


def preset_names() -> list[str]:
    return presets.preset_names("pretrain")


def load_preset(name: str) -> dict[str, Any]:
    """The YAML preset ``name`` (``medssl/presets/pretrain_<name>.yaml``) or a YAML file path."""
    return presets.load_preset("pretrain", name)


def resolve_config(
    method: str | None = None,
    *,
    cfg: PretrainConfig | None = None,
    preset: str | None = presets.DEFAULT,
    overrides: Sequence[str] = (),
    epochs: int | None = None,
    device: str | None = None,
) -> PretrainConfig:
    """Defaults < preset < ``overrides`` (``key=value``) < explicit arguments; method and
    augmentation options are expanded to every field, so the saved config is complete."""
    if cfg is None:
        cfg = PretrainConfig()
        if preset:
            cfg = merge(cfg, load_preset(preset), where=f"preset {preset}")
    cfg = apply_overrides(cfg, overrides)
    if method is not None:
        cfg = dataclasses.replace(cfg, method=method)
    trainer = cfg.trainer
    if epochs is not None:
        trainer = dataclasses.replace(trainer, epochs=epochs)
    if device is not None:
        trainer = dataclasses.replace(trainer, accelerator=device)
    trainer = dataclasses.replace(trainer, seed=cfg.seed)
    get_method(cfg.method)  # unknown method: lists the valid ones
    if cfg.init != "random":  # the file, absolute: a resume elsewhere finds it
        cfg = dataclasses.replace(cfg, init=str(weights_file(cfg.init, flag="init").resolve()))
    for name, opts in cfg.method_overrides.items():
        method_config(name, opts)  # an unknown method or option of a preset fails here
    aug = merge(
        AUGMENTATIONS.get(cfg.augmentation),
        _fields(cfg.augmentation_options),
        where="augmentation_options",
    )
    check_optimizer(cfg.optimizer)
    if cfg.batch_size < 2:
        raise ConfigError(
            f"batch_size: expected >= 2 (contrastive losses need pairs), got {cfg.batch_size}"
        )
    return dataclasses.replace(
        cfg,
        trainer=trainer,
        method_options=method_config(
            cfg.method,
            {**cfg.method_overrides.get(cfg.method, {}), **_fields(cfg.method_options)},
        ),
        method_overrides={},
        augmentation_options=aug,
    )


def _fields(options: Any) -> dict[str, Any]:
    """Options as a mapping of fields, whether given as one or already resolved (typed)."""
    return to_dict(options) if dataclasses.is_dataclass(options) else dict(options)


def saved_config(cfg: PretrainConfig) -> dict[str, Any]:
    """The resolved config as a run saves it (config.yaml) and the benchmark hashes it: typed
    options become their mappings, tuples lists (YAML safe_dump)."""
    saved = to_dict(cfg)
    if cfg.init == "random":  # the field came after the run ids: left out at its default
        del saved["init"]
    return to_plain(saved)


def fit_to_data(cfg: PretrainConfig, n_train: int) -> PretrainConfig:
    """``cfg`` with the method's options adapted to ``n_train`` pretraining images
    (:meth:`medssl.ssl.SSLMethod.fit_to_data`, e.g. MoCo's queue bound)."""
    options = get_method(cfg.method).fit_to_data(
        method_config(cfg.method, cfg.method_options), n_train=n_train, batch_size=cfg.batch_size
    )
    return dataclasses.replace(cfg, method_options=options)


def augment_config(cfg: PretrainConfig) -> AugmentConfig:
    if isinstance(cfg.augmentation_options, AugmentConfig):
        return cfg.augmentation_options
    return from_dict(AugmentConfig, cfg.augmentation_options, where="augmentation_options")


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
    log_name: str | None = None,
) -> Path:
    """Pretrain an encoder; return ``out_dir`` (see the module docstring for its files).

    ``log_name``: the run's name in TensorBoard (``engine.tensorboard``; default: database,
    method and seed)."""
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

    n_pre = {s: len(db.indices("pretrain", s)) for s in ("train", "val")}
    if n_pre["train"] == 0:
        raise DataError(
            "the database has no pretraining (train split) images; rebuild it with a recipe that "
            "has pretraining quotas",
            file=str(db.path or db.name),
        )
    if cfg.batch_size > n_pre["train"]:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is larger than the {n_pre['train']} pretraining train images "
            f"of database {db.name}; lower it with --set batch_size=N"
        )
    cfg = fit_to_data(cfg, n_pre["train"])
    init_weights = None if cfg.init == "random" else load_weights(cfg.init, build_encoder())

    name = log_name or f"{db.name} {cfg.method} pretraining seed {cfg.seed}"
    trainer = Trainer(cfg.trainer, loggers=run_loggers(out, name))
    dev = trainer.device
    rank, world = trainer.fabric.global_rank, trainer.fabric.world_size
    aug = augment_config(cfg)
    cl = cfg.trainer.channels_last
    pre_train = torch.from_numpy(db.images("pretrain", "train")).to(dev)  # uint8 (N, 110, 110)
    pre_val = torch.from_numpy(db.images("pretrain", "val")).to(dev)
    ft = {
        s: torch.from_numpy(db.images("finetune", s)).to(dev) for s in ("train", "val")
    }  # uint8 (M, 64, 64)
    ft_y = {s: torch.from_numpy(db.labels("finetune", s)).to(dev) for s in ("train", "val")}
    held_out = pre_val if len(pre_val) > 1 else pre_train
    # Fixed for the run, from a generator stream no training epoch uses (epoch -1).
    g_pairs = torch.Generator(device=dev).manual_seed(_seed(cfg.seed, -1, 0))
    monitor = KNNMonitor(
        ft["train"],
        ft_y["train"],
        ft["val"],
        ft_y["val"],
        k=cfg.knn_k,
        collapse_images=held_out,
        size=aug.size,
        pairs=views(held_out[:HEALTH_PAIRS], aug, g_pairs) if len(held_out) > 1 else None,
    )

    trainer.seed_everything()
    method_, optimizer = build_training(cfg, dev)

    def train_batches(epoch: int) -> Iterable[Any]:
        return train_views(pre_train, cfg, epoch, rank=rank, world_size=world)

    val_batches = None
    if len(pre_val) >= 2:

        def val_batches(epoch: int) -> Iterable[Any]:
            # The same views every epoch, so val loss is comparable across epochs.
            return ViewBatches(
                pre_val,
                min(cfg.batch_size, len(pre_val)),
                aug,
                _seed(cfg.seed, 0, 1),
                shuffle=False,
                drop_last=False,
                channels_last=cl,
            )

    def epoch_end(epoch: int, logs: dict[str, Any]) -> dict[str, Any]:
        extra_logs = monitor(method_.encoder)
        if "collapse_std" in extra_logs:
            check_collapse(extra_logs["collapse_std"], cfg.collapse_threshold, epoch=epoch)
        return extra_logs

    resolved = saved_config(cfg)
    lead = trainer.fabric.is_global_zero  # under DDP, rank 0 alone writes files
    if lead and not (resume and (out / CONFIG).is_file()):
        out.mkdir(parents=True, exist_ok=True)
        if (out / CHECKPOINT).is_file() and not resume:
            raise TrainingError(
                f"{out / CHECKPOINT} exists: pass --resume to continue that run, or choose another --out"
            )
        write_text(out / CONFIG, yaml.safe_dump(resolved, sort_keys=False))
    random_init: dict[str, Any] = {}
    if lead:
        # The weights built above are the run's initial weights, also when resuming (the
        # same seed builds them): read once, before training, kept for the whole run. A copy
        # on the training device: the method itself is moved there by the trainer.
        if (out / RANDOM_INIT).is_file():
            random_init = read_json(out / RANDOM_INIT)
        else:
            random_init = monitor(copy.deepcopy(method_.encoder).to(dev))
            write_json(out / RANDOM_INIT, random_init)
    config = without(resolved, "trainer.progress_bar", "trainer.checkpoint_every_s")
    fingerprint = {"config": config, "database": db.checksum}
    if init_weights is not None:  # the file's content, not only its path
        fingerprint["init_sha256"] = init_weights.sha256
    title = f"{cfg.method} pretraining health ({db.name})"
    schedule = build_schedule(
        optimizer, cfg.optimizer, steps_per_epoch=len(train_batches(0)), epochs=cfg.trainer.epochs
    )
    try:
        history = trainer.fit(
            method_,
            optimizer,
            train_batches,
            val_batches,
            out_dir=out,
            scheduler=schedule,
            epoch_end=epoch_end,
            resume=resume,
            fingerprint=fingerprint,
        )
    except TrainingError:
        if lead and (out / METRICS).is_file():  # a stopped run: its health, up to the stop
            plot_health(read_csv(out / METRICS), random_init, out / HEALTH, title)
        raise
    if not lead:
        return out

    save_torch(out / ENCODER, encoder_state_dict(method_.encoder))
    from medssl.reporting.curves import plot_curves
    from medssl.reporting.tsne import plot_tsne

    plot_curves(
        history,
        ["train_loss", "val_loss"],
        out / LOSS_CURVE,
        f"{cfg.method} pretraining loss ({db.name})",
        ylabel="loss",
    )
    ft_all = torch.from_numpy(db.images("finetune")).to(dev)
    if len(ft_all) > 0:
        # read as the kNN monitor reads: BN statistics re-estimated on these images
        with precise_bn(method_.encoder, ft_all, size=aug.size):
            emb = embed_images(method_.encoder, ft_all, size=aug.size).cpu().numpy()
        plot_tsne(
            emb,
            db.labels("finetune"),
            out / TSNE,
            f"{cfg.method} encoder: t-SNE of finetuning images",
            seed=cfg.seed,
        )
    health = pretraining_health(history, random_init.get("knn_acc"))
    plot_health(history, random_init, out / HEALTH, title)
    last = history[-1] if history else {}
    write_json(
        out / DONE,
        {
            "method": cfg.method,
            "database": db.name,
            "database_checksum": db.checksum,
            "epochs_run": len(history),
            "final": last,
            "device": str(dev),
            "precision": trainer.precision,
            "seconds": round(time.perf_counter() - t_start, 2),
            "encoder": ENCODER,
            "random_init": random_init,
            "health": dataclasses.asdict(health),
            "database_path": str(db.path) if db.path else None,
            "init_weights": None if init_weights is None else init_weights.record(),
        },
    )
    return out


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
    return pretraining_health(read_csv(out / METRICS), random_init.get("knn_acc"))


def _seed(seed: int, epoch: int, stream: int) -> int:
    return (seed * 1_000_003 + epoch * 2 + stream) % (2**63)
