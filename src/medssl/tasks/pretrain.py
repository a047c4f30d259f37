"""Self-supervised pretraining of the encoder on a database's pretraining images.

``run_pretraining(database, out_dir, method=...)`` resolves the config (preset, then
``--set`` overrides, then explicit arguments), holds the pretraining images in memory as a
uint8 tensor on the training device, and lets ``engine.Trainer`` run the method on two
augmented views per image (augmented on the device, ``data.augment``). Per epoch it logs
train/val loss, learning rate, the kNN monitor (bank: finetuning-train images, queries:
finetuning-val images) and the collapse guard.

A run folder holds ``config.yaml`` (resolved), ``metrics.csv``, ``checkpoint.pt``,
``encoder.pt`` (torchvision ResNet-18 state dict without ``fc``), ``loss_curve.png``
(thesis fig. A.1), ``tsne.png`` (fig. A.2) and ``done.json``, written last.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml

from medssl.artifacts import save_torch, write_json, write_text
from medssl.config import apply_overrides, from_dict, load_yaml, merge, to_dict
from medssl.data.augment import AUGMENTATIONS, AugmentConfig, views
from medssl.data.database import Database
from medssl.engine.monitor import KNNMonitor, check_collapse, embed_images, precise_bn
from medssl.engine.trainer import Trainer, TrainerConfig
from medssl.errors import ConfigError, DataError, TrainingError
from medssl.models.encoder import build_encoder, encoder_state_dict
from medssl.ssl import SSLMethod, build_method, get_method, method_config

DONE = "done.json"


@dataclass
class OptimizerConfig:
    name: str = "adam"  # thesis §5.2 (adam | adamw)
    lr: float = 0.014  # thesis §5.2
    weight_decay: float = 1e-6  # thesis §5.2


@dataclass
class PretrainConfig:
    method: str = "simclr"  # a name in medssl.ssl.METHODS
    method_options: dict[str, Any] = field(default_factory=dict)  # fields of the method's Config
    augmentation: str = "thesis"  # a name in medssl.data.augment.AUGMENTATIONS
    augmentation_options: dict[str, Any] = field(default_factory=dict)  # fields of AugmentConfig
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    batch_size: int = 64  # thesis §5.2
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=100))  # thesis §5.2
    seed: int = 0  # seeds model init, views and shuffling (copied to trainer.seed)
    knn_k: int = (
        20  # neighbours of the kNN monitor (InstDisc uses 200 on ImageNet; our bank is ~1000)
    )
    collapse_threshold: float = (
        0.01  # collapse guard on std * sqrt(D); random init gives ~0.1, healthy ~0.3-1
    )


def preset_names() -> list[str]:
    folder = resources.files("medssl") / "presets"
    return sorted(
        p.name[len("pretrain_") : -len(".yaml")]
        for p in folder.iterdir()
        if p.name.startswith("pretrain_") and p.name.endswith(".yaml")
    )


def load_preset(name: str) -> dict[str, Any]:
    """The YAML preset ``name`` (from ``medssl/presets/pretrain_<name>.yaml``) or a YAML file path."""
    if name.endswith((".yaml", ".yml")):
        return load_yaml(name)
    res = resources.files("medssl") / "presets" / f"pretrain_{name}.yaml"
    if not res.is_file():
        raise ConfigError(
            f"unknown pretraining preset {name!r}; valid names: {', '.join(preset_names())} (or a path to a .yaml file)"
        )
    with resources.as_file(res) as path:
        return load_yaml(path)


def resolve_config(
    method: str | None = None,
    *,
    cfg: PretrainConfig | None = None,
    preset: str | None = "thesis",
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
    aug = merge(
        AUGMENTATIONS.get(cfg.augmentation), cfg.augmentation_options, where="augmentation_options"
    )
    if cfg.optimizer.name not in ("adam", "adamw"):
        raise ConfigError(f"optimizer.name: {cfg.optimizer.name!r} is not one of adam, adamw")
    if cfg.batch_size < 2:
        raise ConfigError(
            f"batch_size: expected >= 2 (contrastive losses need pairs), got {cfg.batch_size}"
        )
    return dataclasses.replace(
        cfg,
        trainer=trainer,
        method_options=to_dict(method_config(cfg.method, cfg.method_options)),
        augmentation_options=_plain(to_dict(aug)),
    )


def augment_config(cfg: PretrainConfig) -> AugmentConfig:
    return from_dict(AugmentConfig, cfg.augmentation_options, where="augmentation_options")


def open_database(database: str | Path | Database) -> Database:
    """A Database as is, or loaded from a folder (a missing one lists its siblings that are databases)."""
    if isinstance(database, Database):
        return database
    path = Path(database)
    if not (path / "database.json").is_file():
        parent = path.parent if str(path.parent) else Path(".")
        valid = (
            sorted(str(p) for p in parent.glob("*") if (p / "database.json").is_file())
            if parent.is_dir()
            else []
        )
        raise DataError(
            f"unknown database; valid databases in {parent}: {', '.join(valid) or '(none)'}; "
            "build one with `medssl data build`",
            file=str(path),
        )
    return Database.load(path)


class ViewBatches:
    """Sized, re-iterable stream of (view0, view1) batches from uint8 images on the device.

    images: uint8 (N, S, S) on the training device. Order and views come from a generator on
    that device seeded with ``seed``: the stream is a pure function of (images, seed), which
    is what makes ``--resume`` land on the same weights. The last batch is dropped when it
    is partial (``drop_last``) or smaller than 2 (batch norm and pairs need two).

    Under DDP (``world_size`` > 1) ``batch_size`` is the global batch. Every rank draws the
    same order and the views of the whole global batch from the same generator, and keeps
    its contiguous block of rows (rank 0 the first ``batch_size / world_size``): the ranks'
    views together are, row for row, the one-device batch, so N devices train on what one
    would. Each rank pays for augmenting the whole batch (25 ms per 64 images against a
    ~2 s training step on a 2-core CPU, README "Performance"); contiguous blocks make a
    rank's rows one group of the one-device batch (MoCo's shuffled BN, ``ssl.moco``).
    """

    def __init__(
        self,
        images: torch.Tensor,
        batch_size: int,
        aug: AugmentConfig,
        seed: int,
        *,
        shuffle: bool,
        drop_last: bool,
        channels_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if world_size > 1 and batch_size % world_size:
            raise ConfigError(
                f"batch_size {batch_size} must be a multiple of the {world_size} devices "
                "(it is the global batch, split evenly across them)"
            )
        self.images, self.batch_size, self.aug, self.seed = images, batch_size, aug, seed
        self.shuffle, self.channels_last = shuffle, channels_last
        self.rank, self.world_size = rank, world_size
        n = images.shape[0]
        full, rest = divmod(n, batch_size)
        partial = rest >= 2 and not drop_last
        if partial and rest % world_size:
            raise ConfigError(
                f"the last batch of {rest} images cannot be split evenly across the "
                f"{world_size} devices; choose a batch_size that divides the {n} images"
            )
        self.n_batches = full + (1 if partial else 0)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        dev = self.images.device
        g = torch.Generator(device=dev).manual_seed(self.seed)
        n = self.images.shape[0]
        order = (
            torch.randperm(n, generator=g, device=dev)
            if self.shuffle
            else torch.arange(n, device=dev)
        )
        for i in range(self.n_batches):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            pair = views(self.images[idx], self.aug, g, channels_last=self.channels_last)
            if self.world_size > 1:
                share = len(idx) // self.world_size
                rows = slice(self.rank * share, (self.rank + 1) * share)
                pair = tuple(v[rows] for v in pair)
            yield pair


def build_training(
    cfg: PretrainConfig, device: torch.device
) -> tuple[SSLMethod, torch.optim.Optimizer]:
    """The method around a fresh encoder and its optimizer, as a run builds them.

    Seed first (``Trainer.seed_everything``): the initial weights come from the global RNG.
    The optimizer is fused (one kernel over all parameters) on CUDA and on the CPU, where
    fused Adam steps a ResNet-18 about 4x faster than the default per-tensor loop.
    """
    method_ = build_method(cfg.method, build_encoder(), cfg.method_options)
    params = [p for p in method_.parameters() if p.requires_grad]
    opt_cls = torch.optim.Adam if cfg.optimizer.name == "adam" else torch.optim.AdamW
    extra = {"fused": True} if device.type in ("cuda", "cpu") else {}
    optimizer = opt_cls(
        params, lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay, **extra
    )
    return method_, optimizer


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
    preset: str | None = "thesis",
    overrides: Sequence[str] = (),
    epochs: int | None = None,
    device: str | None = None,
    resume: bool = False,
) -> Path:
    """Pretrain an encoder; return ``out_dir`` (see the module docstring for its files)."""
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

    trainer = Trainer(cfg.trainer)
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
    monitor = KNNMonitor(
        ft["train"],
        ft_y["train"],
        ft["val"],
        ft_y["val"],
        k=cfg.knn_k,
        collapse_images=pre_val if len(pre_val) > 1 else pre_train,
        size=aug.size,
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

    resolved = to_dict(cfg)
    lead = trainer.fabric.is_global_zero  # under DDP, rank 0 alone writes files
    if lead and not (resume and (out / "config.yaml").is_file()):
        out.mkdir(parents=True, exist_ok=True)
        if (out / "checkpoint.pt").is_file() and not resume:
            raise TrainingError(
                f"{out / 'checkpoint.pt'} exists: pass --resume to continue that run, or choose another --out"
            )
        write_text(out / "config.yaml", yaml.safe_dump(_plain(resolved), sort_keys=False))
    fingerprint = {"config": _without(resolved, "trainer.progress_bar"), "database": db.checksum}
    history = trainer.fit(
        method_,
        optimizer,
        train_batches,
        val_batches,
        out_dir=out,
        epoch_end=epoch_end,
        resume=resume,
        fingerprint=fingerprint,
    )
    if not lead:
        return out

    save_torch(out / "encoder.pt", encoder_state_dict(method_.encoder))
    from medssl.reporting.curves import plot_curves
    from medssl.reporting.tsne import plot_tsne

    plot_curves(
        history,
        ["train_loss", "val_loss"],
        out / "loss_curve.png",
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
            out / "tsne.png",
            f"{cfg.method} encoder: t-SNE of finetuning images",
            seed=cfg.seed,
        )
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
            "encoder": "encoder.pt",
        },
    )
    return out


def _seed(seed: int, epoch: int, stream: int) -> int:
    return (seed * 1_000_003 + epoch * 2 + stream) % (2**63)


def _plain(x: Any) -> Any:
    """Tuples to lists (YAML safe_dump and CSV friendliness), recursively."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _without(d: dict[str, Any], dotted: str) -> dict[str, Any]:
    head, _, rest = dotted.partition(".")
    out = dict(d)
    if rest and isinstance(out.get(head), dict):
        out[head] = _without(out[head], rest)
    else:
        out.pop(head, None)
    return out
