"""Fine-tuning runs: configuration, the loop every task shares, evaluation, the run's artifacts.

``run_finetune(database, out_dir, task="classification"|"segmentation", init="random"|PATH)``
trains on the database's finetuning *train* split, selects ``best.pt`` by the task's
validation monitor (computed on the whole validation split at each epoch end), then evaluates
``best.pt`` on train, validation and test. What is task-specific — the network, tensors,
metrics, predictions and figures — comes from the registered task (``tasks/task.py``,
``tasks/classify.py``, ``tasks/segment.py``): this module knows none. A run folder holds::

    config.yaml               the resolved configuration (run facts + FinetuneConfig)
    metrics.csv               one row per epoch (trainer), train_* and val_* columns
    best.pt                   the weights of the best validation epoch
    last.pt                   the last epoch's weights (only with keep_last)
    predictions_<split>.npz   the task's predictions (and per_image_<split>.csv for masks)
    results.csv               flat records: run_id, task, database, init, seed, fold, split,
                              metric, value (one row per scalar metric per split; nan = undefined)
    *.png                     the task's figures
    tensorboard/<name>/       the metrics.csv rows as TensorBoard events (with tensorboard)
    done.json                 written last: the run finished (its resume state is then dropped)

Images are normalised to [-1, 1] as in pretraining (``data.augment.to_float``); training
images are augmented by the config's ``augmentation`` (thesis: none; medssl: light flips,
affine and intensity, the same geometry for image and mask).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from medssl import presets
from medssl.artifacts import read_csv, read_json, write_csv, write_json, write_text
from medssl.config import apply_overrides, load_yaml, merge, to_dict, to_plain, without
from medssl.data.augment import SUPERVISED_AUGMENTATIONS, SupervisedAugmentConfig
from medssl.data.batches import TrainBatches, eval_batches
from medssl.data.database import Database
from medssl.data.labelled import FINETUNE_SPLITS, SplitData, finetune_splits
from medssl.data.records import CLASSES
from medssl.engine.batchnorm import BN_STATISTICS, average_epoch_bn, recompute_bn
from medssl.engine.checkpoint import clear_resume_state, load_best
from medssl.engine.optim import OptimizerConfig, build_optimizer, build_schedule, check_optimizer
from medssl.engine.tensorboard import run_loggers
from medssl.engine.trainer import Trainer, TrainerConfig
from medssl.errors import ConfigError, DataError
from medssl.metrics.classification import DEFAULT_COST_MATRIX
from medssl.metrics.segmentation import MISS_POLICIES
from medssl.models.encoder import build_encoder
from medssl.models.weights import load_weights, weights_file
from medssl.runfiles import CONFIG, DONE, METRICS, RESULT_COLUMNS, RESULTS
from medssl.tasks.task import FinetuneTask, get_task, task_names


@dataclass
class FinetuneConfig:
    task: str = "classification"  # a name in tasks.task.TASKS
    seed: int = 0  # seeds model init, batch order and augmentation (copied to trainer.seed)
    batch_size: int = 64  # thesis §5.3
    # thesis §5.3: Adam with weight decay 1e-6 at a rate below pretraining's (the value 1e-4
    # is medssl's assumption: the thesis does not state it; docs/thesis.md lists it)
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adam", lr=1e-4, weight_decay=1e-6)
    )
    # epochs (thesis §5.3: 100), device, precision, progress; monitor is the task's. Early
    # stopping (trainer.patience) is off: best.pt is chosen by validation either way.
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(epochs=100))
    freeze_encoder: bool = False  # linear probe (classification) / frozen encoder (U-Net)
    class_weighting: bool = False  # inverse-frequency cross-entropy weights (classification)
    # augmentation of training images (and masks): a name in
    # data.augment.SUPERVISED_AUGMENTATIONS (thesis §5.3: none, images used unaltered), with
    # fields of SupervisedAugmentConfig laid over it: a mapping as given, the resolved
    # SupervisedAugmentConfig after resolve_config (a merge turns it back into a mapping of
    # every field). Saved as the fields that differ from the named preset (saved_config).
    augmentation: str = "none"
    augmentation_options: dict[str, Any] | SupervisedAugmentConfig = field(default_factory=dict)
    # The BatchNorm statistics that validation and test read (engine.batchnorm.BN_STATISTICS):
    # "epoch" (each epoch's training batches averaged with equal weights: no extra pass),
    # "precise" (recomputed on the unaugmented training split before each validation, Wu &
    # Johnson 2021; a forward pass over the training split, about a third of an epoch's steps)
    # or "running" (PyTorch's exponential averages, the thesis's). With few steps an epoch the
    # running averages lag the weights and eval-mode outputs collapse (thesis preset, 4 steps:
    # validation MCC 0.01 where precise BN reads 0.21); the epoch average reads within 0.04-0.05
    # of precise BN there. A frozen encoder keeps its pretrained statistics (part of the probe).
    bn_statistics: str = "epoch"
    eval_batch_size: int = 256
    threshold: float = 0.5  # segmentation: lesion where probability >= threshold
    # segmentation: what a lesion image with an empty prediction scores on precision, HD and
    # HD95 (metrics.segmentation.MISS_POLICIES): "worst" (precision 0, distances = the image
    # diagonal) or "undefined" (NaN, counted as <metric>_undefined)
    miss_policy: str = "worst"
    cost_matrix: list[list[float]] = field(
        default_factory=lambda: [list(r) for r in DEFAULT_COST_MATRIX]
    )
    examples_per_group: int = 3  # segmentation panels: images per best/middle/worst group
    # Splits whose figures are drawn (classification: ROC/PR and confusion matrix;
    # segmentation: example panels, test split only). Metrics and predictions: every split.
    figure_splits: list[str] = field(default_factory=lambda: ["train", "val", "test"])


# ----------------------------------------------------------------------------- configuration


def preset_names() -> list[str]:
    return presets.preset_names("finetune")


def load_preset(name: str) -> FinetuneConfig:
    """The named preset (``presets/finetune_<name>.yaml``, or a YAML path) over the defaults."""
    path = presets.preset_path("finetune", name)
    return merge(FinetuneConfig(), load_yaml(path), where=str(path))


def resolve_config(
    config: FinetuneConfig | Mapping[str, Any] | None = None,
    *,
    task: str | None = None,
    preset: str | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    seed: int | None = None,
) -> FinetuneConfig:
    """The resolved configuration of one run.

    ``config`` (a FinetuneConfig, or a partial dict laid over the preset) or else the preset
    (default :data:`medssl.presets.DEFAULT`); then ``overrides`` (``--set`` strings ``"optimizer.lr=1e-3"`` or a
    nested dict); then ``task`` and ``seed`` when given. The trainer's seed and monitor are
    the run's; ``augmentation_options`` becomes the resolved SupervisedAugmentConfig.
    """
    if isinstance(config, FinetuneConfig):
        # the options as the fields set over the preset, so that an override of
        # ``augmentation`` lays them over the new preset, as before they were resolved
        cfg = dataclasses.replace(config, augmentation_options=_augmentation_fields(config))
    else:
        cfg = merge(
            load_preset(preset or presets.DEFAULT), dict(config or {}), where="finetune config"
        )
    if isinstance(overrides, Mapping):
        cfg = merge(cfg, dict(overrides), where="finetune overrides")
    else:
        cfg = apply_overrides(cfg, overrides)
    if task is not None:
        cfg = merge(cfg, {"task": task})
    if seed is not None:
        cfg = merge(cfg, {"seed": seed})
    if cfg.task not in task_names():
        raise ConfigError(f"task: {cfg.task!r} is not one of {', '.join(task_names())}")
    monitor = get_task(cfg.task).monitor
    cfg = merge(cfg, {"trainer": {"seed": cfg.seed, "monitor": monitor, "monitor_mode": "max"}})
    check_optimizer(cfg.optimizer)
    augment = supervised_augment_config(cfg)  # an unknown name or field fails now, not mid-run
    if cfg.trainer.epochs < 1 or cfg.batch_size < 1:
        raise ConfigError(
            f"trainer.epochs and batch_size must be >= 1; got {cfg.trainer.epochs}, {cfg.batch_size}"
        )
    if cfg.bn_statistics not in BN_STATISTICS:
        raise ConfigError(
            f"bn_statistics: {cfg.bn_statistics!r} is not one of {', '.join(BN_STATISTICS)}"
        )
    if cfg.miss_policy not in MISS_POLICIES:
        raise ConfigError(
            f"miss_policy: {cfg.miss_policy!r} is not one of {', '.join(MISS_POLICIES)}"
        )
    unknown = sorted(set(cfg.figure_splits) - set(FINETUNE_SPLITS))
    if unknown:
        raise ConfigError(f"figure_splits: unknown split(s) {unknown}; valid: train, val, test")
    cost = np.asarray(cfg.cost_matrix, dtype=np.float64)
    if cost.shape != (len(CLASSES), len(CLASSES)):
        raise ConfigError(
            f"cost_matrix: expected {len(CLASSES)}x{len(CLASSES)} (rows true, cols pred), got shape {cost.shape}"
        )
    return dataclasses.replace(cfg, augmentation_options=augment)


def supervised_augment_config(cfg: FinetuneConfig) -> SupervisedAugmentConfig:
    """The named augmentation of ``cfg`` with its options laid over it (once resolved, the
    options are that config)."""
    if isinstance(cfg.augmentation_options, SupervisedAugmentConfig):
        return cfg.augmentation_options
    return merge(
        SUPERVISED_AUGMENTATIONS.get(cfg.augmentation),
        dict(cfg.augmentation_options),
        where="augmentation_options",
    )


def _augmentation_fields(cfg: FinetuneConfig) -> dict[str, Any]:
    """The augmentation options as the fields that differ from the ``augmentation`` preset,
    in field order, tuples as lists: the mapping the options were given as (a field given at
    its preset's value is left out)."""
    preset = to_dict(SUPERVISED_AUGMENTATIONS.get(cfg.augmentation))
    resolved = to_dict(supervised_augment_config(cfg))
    return to_plain({k: v for k, v in resolved.items() if v != preset[k]})


def saved_config(cfg: FinetuneConfig) -> dict[str, Any]:
    """The resolved config as a run saves it (config.yaml, the resume fingerprint) and the
    benchmark hashes it: the augmentation options as the fields set over the named preset, the
    mapping they were held as before resolve_config typed them (so run ids stay as they were)."""
    return to_plain({**to_dict(cfg), "augmentation_options": _augmentation_fields(cfg)})


def resolve_init(init: str | os.PathLike) -> str:
    """``"random"``, or the weights file ``init`` names (a run folder's, see
    :func:`medssl.models.weights.weights_file`)."""
    if str(init) == "random":
        return "random"
    return str(weights_file(init, flag="--init"))


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict(
    network: torch.nn.Module, data: dict[str, torch.Tensor], batch_size: int
) -> tuple[np.ndarray, float]:
    """Evaluation-mode probabilities of a split (float32, CPU) and the loss averaged over its
    images, from the network's ``predict_step``."""
    was_training = network.training
    network.eval()
    probs, loss_sum, n = [], 0.0, 0
    for batch in eval_batches(data, batch_size):
        out = network.predict_step(batch)
        probs.append(out["probs"].float().cpu())
        loss_sum += float(out["loss_sum"])
        n += len(out["probs"])
    network.train(was_training)
    return torch.cat(probs).numpy(), loss_sum / max(n, 1)


# ----------------------------------------------------------------------------- the run


def run_finetune(
    database: Database | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    task: str | None = None,
    init: str | os.PathLike = "random",
    config: FinetuneConfig | Mapping[str, Any] | None = None,
    preset: str | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    seed: int | None = None,
    fold: int | None = None,
    split_override: Mapping[str, Sequence[int]] | Sequence[str] | None = None,
    run_id: str | None = None,
    init_name: str | None = None,
    resume: bool = False,
    device: str | None = None,
    progress: bool | None = None,
    keep_last: bool = False,
    log_name: str | None = None,
) -> Path:
    """Fine-tune, select by validation, evaluate on train/val/test; return the run folder.

    ``init``: ``"random"`` or weights you bring (:mod:`medssl.models.weights`: an
    ``encoder.pt``, a torchvision or timm ResNet-18 state dict, .pt or .safetensors, a run
    folder); done.json's ``init_weights`` records the file read (SHA-256, format, layout).
    ``init_name`` labels it in results.csv and the run id (default: ``"random"`` or the path).
    ``config`` / ``preset`` / ``overrides`` / ``task`` / ``seed``: see :func:`resolve_config`.
    ``fold`` is recorded in the results; ``split_override`` assigns finetuning rows to
    train/val/test explicitly (see :func:`medssl.data.labelled.finetune_splits`). ``device``
    (auto|cpu|cuda) and ``progress`` override the trainer's accelerator and progress bar.
    ``keep_last``: once done, keep the last epoch's weights as ``last.pt`` beside ``best.pt``
    (the benchmark's ``keep_checkpoints: last``); the resume state is removed either way.
    ``log_name``: the run's name in TensorBoard (``engine.tensorboard``; default: the run id).
    """
    cfg = resolve_config(config, task=task, preset=preset, overrides=overrides, seed=seed)
    display = {"accelerator": device, "progress_bar": None if progress is None else bool(progress)}
    display = {k: v for k, v in display.items() if v is not None}
    cfg = dataclasses.replace(cfg, trainer=merge(cfg.trainer, display, where="trainer"))
    kind: FinetuneTask = get_task(cfg.task)(cfg)
    db = database if isinstance(database, Database) else Database.load(database)
    init = resolve_init(init)
    # read and checked before anything is written: a wrong file fails at once
    init_weights = None if init == "random" else load_weights(init, build_encoder()).record()
    out = Path(out_dir)
    if (out / DONE).is_file():
        raise ConfigError(
            f"{out} already holds a finished fine-tuning run ({DONE}); choose another --out"
        )
    splits, excluded = finetune_splits(
        db, needs_masks=kind.needs_masks, split_override=split_override, task=cfg.task
    )
    if len(splits["train"]) < 2:
        raise DataError(
            f"the train split of database {db.name!r} holds {len(splits['train'])} image(s) for "
            f"{cfg.task}; batch norm needs at least 2 training images",
            file=str(db.path) if db.path else None,
        )
    facts = _run_facts(cfg, db, init, init_name, run_id, fold, splits, excluded)
    resolved = {"run": facts, "finetune": saved_config(cfg)}
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / CONFIG, yaml.safe_dump(resolved, sort_keys=False))
    network, data, history, best = train_network(
        kind, cfg, init, splits, out, resolved, resume, log_name=log_name or facts["run_id"]
    )
    _evaluate(kind, cfg, network, data, splits, facts, out, history)
    write_json(
        out / DONE,
        {
            "run_id": facts["run_id"], "task": cfg.task, "epochs_run": len(history),
            "best_epoch": best.get("epoch"), "monitor": kind.monitor,
            "monitor_value": best.get("value"), "split_sizes": facts["split_sizes"],
            "excluded_no_mask": excluded, "init_weights": init_weights,
        },
    )  # fmt: skip
    # weights + optimizer moments, ~3x the model: dead weight once done
    clear_resume_state(out, keep_last=keep_last)
    return out


def _run_facts(cfg, db, init, init_name, run_id, fold, splits, excluded) -> dict[str, Any]:
    """What identifies the run, saved in config.yaml and the results' first columns."""
    if run_id is None:
        tag = init_name or ("random" if init == "random" else Path(init).parent.name or "encoder")
        run_id = f"{cfg.task}-{db.name}-{tag}-s{cfg.seed}" + ("" if fold is None else f"-f{fold}")
    return {
        "run_id": run_id, "task": cfg.task, "database": db.name,
        "database_path": str(db.path) if db.path else None,
        "database_checksum": db.checksum, "init": init,
        "init_name": init_name or init, "seed": cfg.seed, "fold": fold,
        "split_sizes": {s: len(d) for s, d in splits.items()}, "excluded_no_mask": excluded,
        "monitor": cfg.trainer.monitor,
    }  # fmt: skip


def train_network(
    kind: FinetuneTask,
    cfg: FinetuneConfig,
    init: str,
    splits: dict[str, SplitData],
    out: Path,
    resolved: dict[str, Any],
    resume: bool,
    *,
    log_name: str = "finetune",
) -> tuple[torch.nn.Module, dict[str, dict[str, torch.Tensor]], list[dict[str, Any]], dict]:
    """A run's training phase: build the network from ``init``, train it with the trainer into
    ``out`` (``resolved``, the saved config, is the resume fingerprint), validate every epoch
    and load best.pt: (network, the splits' device tensors, history, best's epoch and value).
    Each epoch's row also goes to TensorBoard as ``log_name`` (``engine.tensorboard``)."""
    trainer = Trainer(cfg.trainer, loggers=run_loggers(out, log_name))
    trainer.seed_everything()  # model initialisation is part of the seeded run
    network = kind.build(init, splits["train"])
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, cfg.optimizer, batch_size=cfg.batch_size)
    data = {s: kind.tensors(d, trainer.device) for s, d in splits.items() if len(d)}
    augment = supervised_augment_config(cfg)

    def train_batches(epoch: int) -> TrainBatches:
        return TrainBatches(
            data["train"], cfg.batch_size, seed=cfg.seed, epoch=epoch, augment=augment
        )

    def epoch_start(epoch: int) -> None:
        if cfg.bn_statistics == "epoch":
            average_epoch_bn(network)  # the layers that train (a frozen encoder's do not)

    def epoch_end(epoch: int, row: dict[str, Any]) -> dict[str, float]:
        if cfg.bn_statistics == "precise" and not cfg.freeze_encoder:
            # in chunks of the training batch: statistics at the granularity they were trained
            recompute_bn(network, [b["x"] for b in eval_batches(data["train"], cfg.batch_size)])
        probs, loss = predict(network, data["val"], cfg.eval_batch_size)
        return kind.epoch_logs(kind.metrics(splits["val"], probs, loss, distances=False), row)

    schedule = build_schedule(
        optimizer, cfg.optimizer, steps_per_epoch=len(train_batches(0)), epochs=cfg.trainer.epochs
    )
    # display settings and the write interval are not part of a run's identity: a resume may
    # change them
    kept = without(resolved, "finetune.trainer.checkpoint_every_s")
    fingerprint = {**kept, "finetune": {**kept["finetune"], "trainer": {
        **kept["finetune"]["trainer"], "progress_bar": None, "epoch_log": None}}}  # fmt: skip
    history = trainer.fit(
        network, optimizer, train_batches, None, out_dir=out, scheduler=schedule,
        epoch_start=epoch_start, epoch_end=epoch_end, resume=resume, fingerprint=fingerprint,
    )  # fmt: skip
    best = load_best(network, out)
    return network, data, history or read_csv(out / METRICS), best


def _evaluate(kind, cfg, network, data, splits, facts, out, history) -> None:
    """Every split's metrics (results.csv), predictions and figures; the history figures."""
    keys = {k: facts[k] for k in ("run_id", "task", "database", "seed")}
    keys.update(init=facts["init_name"], fold="" if facts["fold"] is None else facts["fold"])
    results: list[dict[str, Any]] = []
    for name, split in splits.items():
        if len(split) == 0:
            continue
        probs, loss = predict(network, data[name], cfg.eval_batch_size)
        metrics = kind.metrics(split, probs, loss)
        results += [
            {**keys, "split": name, "metric": k, "value": _fmt(v)} for k, v in metrics.items()
        ]
        kind.save_predictions(out, name, split, probs)
        if name in cfg.figure_splits:
            kind.split_figures(out, name, split, probs, metrics, cfg.seed)
    write_csv(out / RESULTS, results, RESULT_COLUMNS)
    kind.history_figures(out, history)


def _fmt(v: Any) -> Any:
    """Floats as floats; nan stays nan (written "nan" in CSV and null-free "NaN" in JSON)."""
    return float(v) if isinstance(v, (int, float, np.floating, np.integer)) else v


def final_summary(out: str | os.PathLike) -> str:
    """One line: the run, its best epoch and validation value, and its test metrics."""
    out = Path(out)
    done = read_json(out / DONE)
    rows = read_csv(out / RESULTS)
    test = {r["metric"]: float(r["value"]) for r in rows if r["split"] == "test"}
    first = rows[0] if rows else {}
    metrics = get_task(done["task"]).summary_metrics
    shown = ", ".join(f"{m} {test[m]:.3f}" for m in metrics if m in test)
    value = float(done.get("monitor_value") or float("nan"))
    return (
        f"{done['task']} {first.get('database', '')} from {first.get('init', '')} seed "
        f"{first.get('seed', '')}: best epoch {done.get('best_epoch')} of {done.get('epochs_run')} "
        f"({done.get('monitor')} {value:.3f}); test {shown or 'n/a'}; written to {out}"
    )


__all__ = [
    "FinetuneConfig",
    "SplitData",
    "finetune_splits",
    "load_preset",
    "predict",
    "resolve_config",
    "run_finetune",
]
