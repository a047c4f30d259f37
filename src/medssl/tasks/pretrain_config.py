"""Pretraining's settings: the typed config, its resolution (defaults < preset < ``--set`` <
explicit arguments) and the budget it states.

**The budget.** ``steps`` states it in optimizer steps (the self-supervised literature's unit:
an "epoch" of a few hundred images is a handful of steps); the epochs are derived from the
pool's size and the batch (:func:`budget`), rounded up to whole epochs. ``steps: null`` leaves
the budget to ``trainer.epochs`` (the thesis's 100 epochs). Giving ``trainer.epochs`` (``--set``
or ``--epochs``) without ``steps`` means epochs; giving both is an error, so a run has one
budget, the one asked for.

**The health read** (``health``) runs every ``health.every`` optimizer steps, at the end of the
epoch that crosses each multiple (:func:`read_epochs`), and after the last epoch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from medssl import presets
from medssl.config import apply_overrides, from_dict, merge, to_dict, to_plain
from medssl.data.augment import AUGMENTATIONS, AugmentConfig
from medssl.data.pool import check_pool
from medssl.engine.optim import OptimizerConfig, check_optimizer
from medssl.engine.trainer import TrainerConfig
from medssl.errors import ConfigError
from medssl.models.weights import weights_file
from medssl.ssl import get_method, method_config


@dataclass
class HealthConfig:
    """The health read (``engine.health_read``): its cadence and its two readings."""

    every: int = 100  # optimizer steps between reads (see read_epochs); the last epoch always
    knn_k: int = 20  # neighbours of the kNN reading (InstDisc uses 200 on ImageNet's bank)
    temperature: float = 0.07  # of the kNN votes (InstDisc §3.4)
    probe_c: float = 0.1  # inverse L2 regularisation of the linear reading
    probe_folds: int = 5  # patient-grouped stratified folds of the linear reading


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
    # What pretraining sees (data.pool): pretrain (thesis §5.1: the pretraining role alone) or
    # pretrain+train (also the finetuning train split's images, labels unused)
    pretrain_pool: str = "pretrain"
    # The budget in optimizer steps (epochs derived from the pool and the batch); None: the
    # trainer's epochs (thesis §5.2: 100)
    steps: int | None = None
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=100))  # thesis §5.2
    seed: int = 0  # seeds model init, views and shuffling (copied to trainer.seed)
    health: HealthConfig = field(default_factory=HealthConfig)
    collapse_threshold: float = (
        0.01  # collapse guard on std * sqrt(D); random init gives ~0.1, healthy ~0.3-1
    )
    # The encoder's initial weights: "random" (torchvision's Kaiming init) or weights you
    # bring (models.weights: a torchvision or timm ResNet-18, an encoder.pt, a run folder),
    # SSL pretraining from e.g. ImageNet weights. The health read then compares the encoder
    # with those starting weights (its "random init" reading is theirs).
    init: str = "random"


def preset_names() -> list[str]:
    return presets.preset_names("pretrain")


def load_preset(name: str) -> dict[str, Any]:
    """The YAML preset ``name`` (``medssl/presets/pretrain_<name>.yaml``) or a YAML file path."""
    return presets.load_preset("pretrain", name)


def budget_patch(patch: Mapping[str, Any], where: str = "--set") -> dict[str, Any]:
    """``patch`` (nested overrides of a PretrainConfig) with ``steps: None`` added when it gives
    ``trainer.epochs`` and not ``steps``: an epochs budget asked for replaces a preset's steps.
    Both given (steps not None) is a ConfigError."""
    out = dict(patch)
    epochs = isinstance(out.get("trainer"), Mapping) and "epochs" in out["trainer"]
    if epochs and out.get("steps") is not None:
        raise ConfigError(
            f"{where}: both steps ({out['steps']}) and trainer.epochs "
            f"({out['trainer']['epochs']}) give the pretraining budget; set one of them "
            "(steps=null to give epochs)"
        )
    if epochs and "steps" not in out:
        out["steps"] = None
    return out


def _override_patch(overrides: Sequence[str]) -> dict[str, Any]:
    """What ``--set`` says of the budget, in :func:`budget_patch`'s form: ``trainer.epochs``
    given or not, ``steps`` given as null or as a number."""
    given = {k.strip(): v.strip() for k, _, v in (o.partition("=") for o in overrides)}
    patch: dict[str, Any] = {}
    if "trainer.epochs" in given:
        patch["trainer"] = {"epochs": given["trainer.epochs"]}
    if "steps" in given:
        patch["steps"] = None if given["steps"] in ("null", "~", "") else given["steps"]
    return patch


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
    given = budget_patch(_override_patch(overrides))
    cfg = apply_overrides(cfg, overrides)
    if "steps" in given and given["steps"] is None:
        cfg = dataclasses.replace(cfg, steps=None)
    if method is not None:
        cfg = dataclasses.replace(cfg, method=method)
    trainer = cfg.trainer
    if epochs is not None:
        trainer = dataclasses.replace(trainer, epochs=epochs)
        cfg = dataclasses.replace(cfg, steps=None)
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
    check_config(cfg)
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


def check_config(cfg: PretrainConfig) -> None:
    """The checks that need no data: optimizer, batch, pool, budget, health read."""
    check_optimizer(cfg.optimizer)
    check_pool(cfg.pretrain_pool)
    if cfg.batch_size < 2:
        raise ConfigError(
            f"batch_size: expected >= 2 (contrastive losses need pairs), got {cfg.batch_size}"
        )
    if cfg.steps is not None and cfg.steps < 1:
        raise ConfigError(f"steps: expected >= 1 optimizer steps (or null), got {cfg.steps}")
    h = cfg.health
    if h.every < 1 or h.knn_k < 1 or h.probe_folds < 2 or not h.probe_c > 0:
        raise ConfigError(
            "health: expected every >= 1, knn_k >= 1, probe_folds >= 2 and probe_c > 0; got "
            f"every={h.every}, knn_k={h.knn_k}, probe_folds={h.probe_folds}, probe_c={h.probe_c}"
        )
    if not h.temperature > 0:
        raise ConfigError(f"health.temperature: expected > 0, got {h.temperature}")


def _fields(options: Any) -> dict[str, Any]:
    """Options as a mapping of fields, whether given as one or already resolved (typed)."""
    return to_dict(options) if dataclasses.is_dataclass(options) else dict(options)


def saved_config(cfg: PretrainConfig) -> dict[str, Any]:
    """The resolved config as a run saves it (config.yaml) and the benchmark hashes it: typed
    options become their mappings, tuples lists (YAML safe_dump)."""
    return to_plain(to_dict(cfg))


def fit_to_data(cfg: PretrainConfig, n_train: int) -> PretrainConfig:
    """``cfg`` with the method's options adapted to ``n_train`` pool images
    (:meth:`medssl.ssl.SSLMethod.fit_to_data`, e.g. MoCo's queue bound) and its budget in
    epochs of that pool (:func:`budget`)."""
    options = get_method(cfg.method).fit_to_data(
        method_config(cfg.method, cfg.method_options), n_train=n_train, batch_size=cfg.batch_size
    )
    epochs, _ = budget(cfg, n_train)
    trainer = dataclasses.replace(cfg.trainer, epochs=epochs)
    return dataclasses.replace(cfg, method_options=options, trainer=trainer)


def budget(cfg: PretrainConfig, n_pool: int) -> tuple[int, int]:
    """(epochs, steps per epoch) on a pool of ``n_pool`` images: full batches only (the
    pretraining stream drops a partial last batch), ``ceil(steps / steps per epoch)`` epochs
    with ``steps``, else ``trainer.epochs``."""
    per_epoch = n_pool // cfg.batch_size
    if per_epoch < 1:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is larger than the {n_pool} images of the pretraining "
            "pool; lower it with --set batch_size=N"
        )
    if cfg.steps is None:
        return cfg.trainer.epochs, per_epoch
    return max(1, math.ceil(cfg.steps / per_epoch)), per_epoch


def read_epochs(steps_per_epoch: int, epochs: int, every: int) -> frozenset[int]:
    """The epochs after which the health read runs: each epoch whose steps cross a multiple of
    ``every`` (epoch e covers steps e*S+1 .. (e+1)*S), and the last epoch."""
    out = {
        e
        for e in range(epochs)
        if (e + 1) * steps_per_epoch // every > e * steps_per_epoch // every
    }
    return frozenset(out | {epochs - 1})


def augment_config(cfg: PretrainConfig) -> AugmentConfig:
    if isinstance(cfg.augmentation_options, AugmentConfig):
        return cfg.augmentation_options
    return from_dict(AugmentConfig, cfg.augmentation_options, where="augmentation_options")
