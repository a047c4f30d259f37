"""Fine-tuning runs: configuration, data, training, evaluation and the run's artifacts.

``run_finetune(database, out_dir, task="classification"|"segmentation", init="random"|PATH)``
trains on the database's finetuning *train* split, selects ``best.pt`` by the validation
monitor (MCC for classification, per-image Dice over lesion images for segmentation; both
computed on the whole validation split at each epoch end), then evaluates ``best.pt`` on train,
validation and test. A run folder holds::

    config.yaml               the resolved configuration (run facts + FinetuneConfig)
    metrics.csv               one row per epoch (trainer), train_* and val_* columns
    checkpoint.pt, best.pt    last and best weights (trainer)
    predictions_<split>.npz   classification: ids, patients, y_true, probs (N, 3)
                              segmentation: ids, patients, labels, masks_true uint8 (N, H, W),
                              probs float16 (N, H, W)
    per_image_<split>.csv     segmentation: one row per image (metrics.segmentation)
    results.csv               flat records: run_id, task, database, init, seed, fold, split,
                              metric, value (one row per scalar metric per split; nan = undefined)
    *.png                     curves, ROC/PR, confusion matrices, example panels
    done.json                 written last: the run finished

Images are normalised to [-1, 1] as in pretraining (``data.augment.to_float``); training
images are augmented by the config's ``augmentation`` (thesis: none; medssl: light flips,
affine and intensity, the same geometry for image and mask).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from medssl import presets
from medssl.artifacts import (
    read_csv,
    read_json,
    save_torch,
    write_bytes,
    write_csv,
    write_json,
    write_text,
)
from medssl.config import apply_overrides, load_yaml, merge, to_dict
from medssl.data.augment import SUPERVISED_AUGMENTATIONS, SupervisedAugmentConfig, to_float
from medssl.data.batches import TrainBatches, eval_batches
from medssl.data.database import SPLITS, Database, database_tasks
from medssl.data.records import CLASSES
from medssl.engine.optim import OptimizerConfig, build_optimizer, build_schedule, check_optimizer
from medssl.engine.trainer import BEST, CHECKPOINT, Trainer, TrainerConfig
from medssl.errors import ConfigError, DataError
from medssl.metrics.classification import (
    DEFAULT_COST_MATRIX,
    classification_metrics,
    confusion_matrix,
)
from medssl.metrics.segmentation import (
    MISS_POLICIES,
    PER_IMAGE_METRICS,
    SCALED_DISTANCES,
    aggregate,
    overlap_from_counts,
    per_image_metrics,
    scale_distances,
)

TASKS = ("classification", "segmentation")
FINETUNE_SPLITS: tuple[str, ...] = SPLITS["finetune"]  # train, val, test
RESULT_COLUMNS = ("run_id", "task", "database", "init", "seed", "fold", "split", "metric", "value")
MONITOR = {"classification": "val_mcc", "segmentation": "val_dice"}
"""Validation value that selects best.pt (higher is better), computed on the whole split."""


@dataclass
class FinetuneConfig:
    task: str = "classification"  # classification | segmentation
    seed: int = 0
    epochs: int = 100  # thesis §5.3
    batch_size: int = 64  # thesis §5.3
    # thesis §5.3: Adam with weight decay 1e-6 at a rate below pretraining's (the value 1e-4
    # is medssl's assumption: the thesis does not state it; docs/thesis.md lists it)
    optimizer: OptimizerConfig = field(
        default_factory=lambda: OptimizerConfig(name="adam", lr=1e-4, weight_decay=1e-6)
    )
    # Early stopping on the validation monitor (medssl's addition: best.pt is chosen by
    # validation either way, stopping only saves the epochs after a long plateau).
    patience: int | None = 20
    freeze_encoder: bool = False  # linear probe (classification) / frozen encoder (U-Net)
    class_weighting: bool = False  # inverse-frequency cross-entropy weights (classification)
    # augmentation of training images (and masks): a name in
    # data.augment.SUPERVISED_AUGMENTATIONS (thesis §5.3: none, images used unaltered), with
    # fields of SupervisedAugmentConfig laid over it
    augmentation: str = "none"
    augmentation_options: dict[str, Any] = field(default_factory=dict)
    # Recompute BatchNorm running statistics on the (unaugmented) training split before each
    # validation (torch.optim.swa_utils.update_bn; "precise BN", Wu & Johnson 2021): with few
    # steps per epoch the running averages lag the weights and eval-mode outputs collapse.
    # Not applied to a frozen encoder (its pretrained statistics are part of the probe).
    bn_recalibration: bool = True
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
    accelerator: str = "auto"  # auto | cpu | cuda
    precision: str | None = None  # None: trainer default (bf16-mixed on bf16 GPUs, else 32-true)
    progress_bar: bool = True
    epoch_log: bool = False  # one line per epoch on stdout (the CLI sets it with --no-progress)


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
    (default ``thesis``); then ``overrides`` (``--set`` strings ``"optimizer.lr=1e-3"`` or a
    nested dict); then ``task`` and ``seed`` when given.
    """
    if isinstance(config, FinetuneConfig):
        cfg = config
    else:
        cfg = merge(load_preset(preset or "thesis"), dict(config or {}), where="finetune config")
    if isinstance(overrides, Mapping):
        cfg = merge(cfg, dict(overrides), where="finetune overrides")
    else:
        cfg = apply_overrides(cfg, overrides)
    if task is not None:
        cfg = merge(cfg, {"task": task})
    if seed is not None:
        cfg = merge(cfg, {"seed": seed})
    if cfg.task not in TASKS:
        raise ConfigError(f"task: {cfg.task!r} is not one of {', '.join(TASKS)}")
    check_optimizer(cfg.optimizer)
    supervised_augment_config(cfg)  # an unknown name or field is an error now, not mid-run
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise ConfigError(
            f"epochs and batch_size must be >= 1; got epochs={cfg.epochs}, batch_size={cfg.batch_size}"
        )
    if cfg.miss_policy not in MISS_POLICIES:
        raise ConfigError(
            f"miss_policy: {cfg.miss_policy!r} is not one of {', '.join(MISS_POLICIES)}"
        )
    unknown = sorted(set(cfg.figure_splits) - {"train", "val", "test"})
    if unknown:
        raise ConfigError(f"figure_splits: unknown split(s) {unknown}; valid: train, val, test")
    cost = np.asarray(cfg.cost_matrix, dtype=np.float64)
    if cost.shape != (len(CLASSES), len(CLASSES)):
        raise ConfigError(
            f"cost_matrix: expected {len(CLASSES)}x{len(CLASSES)} (rows true, cols pred), got shape {cost.shape}"
        )
    return cfg


def supervised_augment_config(cfg: FinetuneConfig) -> SupervisedAugmentConfig:
    """The named augmentation of ``cfg`` with its options laid over it."""
    return merge(
        SUPERVISED_AUGMENTATIONS.get(cfg.augmentation),
        dict(cfg.augmentation_options),
        where="augmentation_options",
    )


def resolve_init(init: str | os.PathLike) -> str:
    """``"random"``, or the path of an ``encoder.pt`` (a pretraining run folder is accepted)."""
    if str(init) == "random":
        return "random"
    path = Path(init)
    if path.is_dir():
        path = path / "encoder.pt"
    if not path.is_file():
        raise ConfigError(
            f"--init {init}: no encoder file there; pass `random` or the encoder.pt of a `medssl pretrain` run"
        )
    return str(path)


# ----------------------------------------------------------------------------- data


@dataclass
class SplitData:
    """One split of the finetuning set, in array-row order.

    images: uint8 (N, H, W); labels: int64 (N,); masks: uint8 (N, H, W) {0,1};
    rows: finetune.npy row indices (N,); ids: manifest ``file``; patients: manifest ``patient``;
    sources: manifest ``source``; orig_px: (N,) original-image pixels per stored pixel
    (max(orig_h, orig_w) / stored size: the original was padded to a square and resized);
    mm: (N,) millimetres per stored pixel (orig_px x the manifest's pixel spacing, where rows
    and columns agree). NaN where the manifest does not know.
    """

    rows: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    ids: list[str]
    patients: list[str]
    sources: list[str] = field(default_factory=list)
    orig_px: np.ndarray = field(default_factory=lambda: np.zeros(0))
    mm: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.rows)


def finetune_splits(
    db: Database,
    task: str,
    split_override: Mapping[str, Sequence[int]] | Sequence[str] | None = None,
) -> tuple[dict[str, SplitData], int]:
    """The train/val/test splits for ``task`` and the number of images left out for lacking a mask.

    ``split_override`` replaces the database's split column (K-fold cross-validation over the
    finetuning pool): either ``{"train": rows, "val": rows, "test": rows}`` (rows of
    ``finetune.npy``) or one split name per finetuning row, in row order.
    For segmentation, images whose manifest row has ``has_mask = 0`` are left out (counted);
    an empty split is an error naming the database.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    if task not in database_tasks(db):  # a classification-only database (recipe tasks)
        raise DataError(
            f"database {db.name!r} serves {', '.join(database_tasks(db))} only (database.json "
            f"tasks, from its recipe's tasks); build it with {task} in the recipe's tasks",
            file=str(db.path) if db.path else None,
        )
    by_row = {int(r["index"]): r for r in db.rows("finetune")}
    if split_override is None:
        assign = {
            s: np.array([r["index"] for r in db.rows("finetune", s)], dtype=np.int64)
            for s in FINETUNE_SPLITS
        }
    else:
        if not isinstance(split_override, Mapping):
            names = [str(x) for x in split_override]
            if len(names) != len(by_row) or set(names) - set(FINETUNE_SPLITS):
                raise ConfigError(
                    f"split_override: expected one of {FINETUNE_SPLITS} per finetuning row "
                    f"({len(by_row)} rows of database {db.name!r}); got {len(names)} values {sorted(set(names))}"
                )
            rows_sorted = sorted(by_row)
            split_override = {
                s: [r for r, n in zip(rows_sorted, names, strict=True) if n == s]
                for s in FINETUNE_SPLITS
            }
        unknown = sorted(set(split_override) - set(FINETUNE_SPLITS))
        if unknown or "train" not in split_override or "val" not in split_override:
            raise ConfigError(
                f"split_override: keys must be train, val (and test); got {sorted(split_override)}"
            )
        assign = {s: np.asarray(split_override.get(s, []), dtype=np.int64) for s in FINETUNE_SPLITS}
        seen: set[int] = set()
        for s, rows in assign.items():
            bad = sorted(set(rows.tolist()) - set(by_row))
            if bad:
                raise ConfigError(
                    f"split_override[{s!r}]: rows {bad[:10]} are not finetuning rows of database {db.name!r}"
                )
            if seen & set(rows.tolist()):
                raise ConfigError(
                    f"split_override[{s!r}]: rows {sorted(seen & set(rows.tolist()))[:10]} are in two splits"
                )
            seen |= set(rows.tolist())
    excluded = 0
    if task == "segmentation":
        n_all = sum(len(r) for r in assign.values())
        keep = {
            s: np.array([i for i in rows if by_row[int(i)]["has_mask"]], dtype=np.int64)
            for s, rows in assign.items()
        }
        excluded = n_all - sum(len(r) for r in keep.values())
        assign = keep
    images, masks = db.arrays["finetune"], db.arrays["finetune_masks"]
    out: dict[str, SplitData] = {}
    for s, rows in assign.items():
        if len(rows) == 0 and s in ("train", "val"):
            why = (
                f"; {excluded} finetuning images lack a lesion mask (has_mask = 0)"
                if excluded
                else ""
            )
            raise DataError(
                f"the {s} split of database {db.name!r} is empty for {task}{why}; "
                "build a database whose finetuning set has masked images in every split",
                file=str(db.path) if db.path else None,
            )
        rows = np.sort(rows)
        manifest_rows = [by_row[int(i)] for i in rows]
        orig_px = np.array([_orig_px(r, images.shape[-1]) for r in manifest_rows], dtype=float)
        spacing = np.array([_isotropic_spacing(r) for r in manifest_rows])
        out[s] = SplitData(
            rows=rows,
            images=np.asarray(images[rows]),
            labels=np.array([CLASSES.index(r["label"]) for r in manifest_rows], dtype=np.int64),
            masks=np.asarray(masks[rows]).astype(np.uint8),
            ids=[str(r["file"]) for r in manifest_rows],
            patients=[str(r["patient"]) for r in manifest_rows],
            sources=[str(r.get("source", "")) for r in manifest_rows],
            orig_px=orig_px,
            mm=orig_px * spacing,
        )
    return out, excluded


def _orig_px(row: Mapping[str, Any], size: int) -> float:
    """Original pixels per stored pixel of a finetuning image (NaN when its size is unknown)."""
    side = max(int(row.get("orig_h") or 0), int(row.get("orig_w") or 0))
    return side / size if side > 0 else float("nan")


def _isotropic_spacing(row: Mapping[str, Any]) -> float:
    """mm per original pixel, where the manifest knows it and rows and columns agree (within
    1%); NaN otherwise: a Euclidean distance on an anisotropic grid has no single mm scale."""
    r, c = _float_or_nan(row.get("spacing_row_mm")), _float_or_nan(row.get("spacing_col_mm"))
    if not (r > 0 and c > 0) or abs(r - c) > 0.01 * max(r, c):
        return float("nan")
    return (r + c) / 2


def _float_or_nan(value: Any) -> float:
    try:
        return float(value) if value not in (None, "") else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def split_tensors(split: SplitData, task: str, device: torch.device) -> dict[str, torch.Tensor]:
    """Device tensors of a split: x (N, 1, H, W) in [-1, 1], y (N,) or mask (N, 1, H, W)."""
    x = to_float(torch.from_numpy(split.images).to(device))
    if task == "classification":
        return {"x": x, "y": torch.from_numpy(split.labels).to(device)}
    return {"x": x, "mask": torch.from_numpy(split.masks).to(device).unsqueeze(1).float()}


# ----------------------------------------------------------------------------- model and task


def build_task(task: str, init: str, cfg: FinetuneConfig, train: SplitData) -> torch.nn.Module:
    """The task module (model + loss) for ``task``, its encoder from ``init``."""
    if task == "classification":
        from medssl.models.classifier import build_classifier
        from medssl.tasks.classify import Classification

        weights = None
        if cfg.class_weighting:
            counts = np.bincount(train.labels, minlength=len(CLASSES)).astype(np.float64)
            # inverse frequency, n / (K * n_k); an absent class gets weight 0 (it never occurs)
            weights = torch.tensor(
                np.where(counts > 0, counts.sum() / (len(CLASSES) * np.maximum(counts, 1)), 0.0),
                dtype=torch.float32,
            )
        return Classification(build_classifier(init, freeze_encoder=cfg.freeze_encoder), weights)
    from medssl.models.unet import build_unet
    from medssl.tasks.segment import Segmentation

    return Segmentation(
        build_unet(init, freeze_encoder=cfg.freeze_encoder), freeze_encoder=cfg.freeze_encoder
    )


@torch.no_grad()
def recalibrate_bn(
    task_module: torch.nn.Module, data: dict[str, torch.Tensor], batch_size: int
) -> None:
    """Reset and recompute every BatchNorm's running mean/var as the exact average over
    ``data["x"]`` (N, 1, H, W) in train mode (``torch.optim.swa_utils.update_bn``)."""
    from torch.optim.swa_utils import update_bn

    chunks = [b["x"] for b in eval_batches(data, batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:  # batch norm cannot train on one image
        chunks[-2:] = [torch.cat(chunks[-2:])]
    update_bn(chunks, task_module)


@torch.no_grad()
def predict(
    task_module: torch.nn.Module, data: dict[str, torch.Tensor], batch_size: int
) -> tuple[np.ndarray, float]:
    """Evaluation-mode probabilities of a split and its mean loss.

    Returns probs (N, K) for classification or (N, H, W) for segmentation (float32, CPU), and
    the loss averaged over images (segmentation: batch losses weighted by batch size).
    """
    was_training = task_module.training
    task_module.eval()
    probs, loss_sum, n = [], 0.0, 0
    for batch in eval_batches(data, batch_size):
        out = task_module.predict_step(batch)
        probs.append(out["probs"].float().cpu())
        loss_sum += float(out["loss_sum"])
        n += len(out["probs"])
    task_module.train(was_training)
    return torch.cat(probs).numpy(), loss_sum / max(n, 1)


def split_metrics(
    task: str,
    split: SplitData,
    probs: np.ndarray,
    loss: float,
    cfg: FinetuneConfig,
    *,
    distances: bool = True,
) -> dict[str, float]:
    """Scalar metrics of one split from its predictions (nan = undefined)."""
    if task == "classification":
        m = classification_metrics(split.labels, probs, cost_matrix=cfg.cost_matrix)
        m["loss"] = loss  # the model's own (unweighted) cross-entropy, same value up to clipping
        return m
    m = aggregate(segmentation_per_image(split, probs, cfg, distances=distances))
    m["loss"] = loss
    return m


def segmentation_per_image(
    split: SplitData, probs: np.ndarray, cfg: FinetuneConfig, *, distances: bool = True
) -> dict[str, np.ndarray]:
    """Per-image segmentation metrics of a split, distances also in original pixels and mm."""
    pi = per_image_metrics(
        split.masks, probs, cfg.threshold, distances=distances, miss=cfg.miss_policy
    )
    if distances and len(split.orig_px) == len(split):
        pi.update(scale_distances(pi, split.orig_px, split.mm))
    return pi


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
) -> Path:
    """Fine-tune, select by validation, evaluate on train/val/test; return the run folder.

    ``init``: ``"random"`` or an ``encoder.pt`` (or a pretraining run folder holding one);
    ``init_name`` labels it in results.csv and the run id (default: ``"random"`` or the path).
    ``config`` / ``preset`` / ``overrides`` / ``task`` / ``seed``: see :func:`resolve_config`.
    ``fold`` is recorded in the results; ``split_override`` assigns finetuning rows to
    train/val/test explicitly (see :func:`finetune_splits`). ``device`` (auto|cpu|cuda) and
    ``progress`` override the config's accelerator and progress bar.
    """
    cfg = resolve_config(config, task=task, preset=preset, overrides=overrides, seed=seed)
    if device is not None:
        cfg = merge(cfg, {"accelerator": device})
    if progress is not None:
        cfg = merge(cfg, {"progress_bar": bool(progress)})
    task, seed = cfg.task, cfg.seed
    db = database if isinstance(database, Database) else Database.load(database)
    init = resolve_init(init)
    init_label = init_name or init
    out = Path(out_dir)
    if (out / "done.json").is_file():
        raise ConfigError(
            f"{out} already holds a finished fine-tuning run (done.json); choose another --out"
        )
    splits, excluded = finetune_splits(db, task, split_override)
    if len(splits["train"]) < 2:
        raise DataError(
            f"the train split of database {db.name!r} holds {len(splits['train'])} image(s) for "
            f"{task}; batch norm needs at least 2 training images",
            file=str(db.path) if db.path else None,
        )
    if run_id is None:
        init_tag = init_name or (
            "random" if init == "random" else Path(init).parent.name or "encoder"
        )
        run_id = f"{task}-{db.name}-{init_tag}-s{seed}" + ("" if fold is None else f"-f{fold}")

    run_facts = {
        "run_id": run_id,
        "task": task,
        "database": db.name,
        "database_path": str(db.path) if db.path else None,
        "database_checksum": db.meta.get("checksum"),
        "init": init,
        "init_name": init_label,
        "seed": seed,
        "fold": fold,
        "split_sizes": {s: len(d) for s, d in splits.items()},
        "excluded_no_mask": excluded,
        "monitor": MONITOR[task],
    }
    resolved = {"run": run_facts, "finetune": to_dict(cfg)}
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))

    trainer = Trainer(
        TrainerConfig(
            epochs=cfg.epochs,
            accelerator=cfg.accelerator,
            precision=cfg.precision,
            seed=seed,
            monitor=MONITOR[task],
            monitor_mode="max",
            patience=cfg.patience,
            progress_bar=cfg.progress_bar,
            epoch_log=cfg.epoch_log,
        )
    )
    trainer.seed_everything(seed)  # model initialisation is part of the seeded run
    module = build_task(task, init, cfg, splits["train"])
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, cfg.optimizer, batch_size=cfg.batch_size)
    device = trainer.device
    data = {s: split_tensors(d, task, device) for s, d in splits.items() if len(d)}

    augment = supervised_augment_config(cfg)

    def train_batches(epoch: int) -> TrainBatches:
        return TrainBatches(data["train"], cfg.batch_size, seed=seed, epoch=epoch, augment=augment)

    def epoch_end(epoch: int, row: dict[str, Any]) -> dict[str, float]:
        if cfg.bn_recalibration and not cfg.freeze_encoder:
            recalibrate_bn(module, data["train"], cfg.eval_batch_size)
        probs, loss = predict(module, data["val"], cfg.eval_batch_size)
        m = split_metrics(task, splits["val"], probs, loss, cfg, distances=False)
        logs = {f"val_{k}": m[k] for k in _EPOCH_METRICS[task]}
        if task == "segmentation":  # exact pooled train metrics from the epoch's mean counts
            counts = [row.get(f"train_{k}", float("nan")) for k in ("tp", "fp", "fn", "tn")]
            logs.update(
                {f"train_{k}_pooled": float(v) for k, v in overlap_from_counts(*counts).items()}
            )
        return logs

    schedule = build_schedule(
        optimizer, cfg.optimizer, steps_per_epoch=len(train_batches(0)), epochs=cfg.epochs
    )
    history = trainer.fit(
        module,
        optimizer,
        train_batches,
        None,
        out_dir=out,
        scheduler=schedule,
        epoch_end=epoch_end,
        resume=resume,
        # display settings are not part of a run's identity: a resume may change them
        fingerprint={
            "run": run_facts,
            "finetune": {**resolved["finetune"], "progress_bar": None, "epoch_log": None},
        },
    )

    best = _load_best(module, out)
    results: list[dict[str, Any]] = []
    facts = {
        "run_id": run_id,
        "task": task,
        "database": db.name,
        "init": init_label,
        "seed": seed,
        "fold": "" if fold is None else fold,
    }
    for s, split in splits.items():
        if len(split) == 0:
            continue
        probs, loss = predict(module, data[s], cfg.eval_batch_size)
        m = split_metrics(task, split, probs, loss, cfg)
        results.extend({**facts, "split": s, "metric": k, "value": _fmt(v)} for k, v in m.items())
        _save_predictions(out, s, task, split, probs, cfg)
        if s in cfg.figure_splits:
            _split_figures(out, s, task, split, probs, m, cfg, seed)
    write_csv(out / "results.csv", results, RESULT_COLUMNS)
    _history_figures(out, task, history or read_csv(out / "metrics.csv"))
    write_json(
        out / "done.json",
        {
            "run_id": run_id,
            "task": task,
            "epochs_run": len(history),
            "best_epoch": best.get("epoch"),
            "monitor": MONITOR[task],
            "monitor_value": best.get("value"),
            "split_sizes": run_facts["split_sizes"],
            "excluded_no_mask": excluded,
        },
    )
    # resume state (weights + optimizer moments, ~3x the model) is dead weight once done
    (out / CHECKPOINT).unlink(missing_ok=True)
    return out


SUMMARY_METRICS = {
    "classification": ("mcc", "balanced_accuracy", "auroc_macro"),
    "segmentation": ("dice", "hd95", "missed_lesions"),
}


def final_summary(out: str | os.PathLike) -> str:
    """One line: the run, its best epoch and validation value, and its test metrics."""
    out = Path(out)
    done = read_json(out / "done.json")
    rows = read_csv(out / "results.csv")
    task = done["task"]
    test = {r["metric"]: float(r["value"]) for r in rows if r["split"] == "test"}
    first = rows[0] if rows else {}
    shown = ", ".join(f"{m} {test[m]:.3f}" for m in SUMMARY_METRICS.get(task, ()) if m in test)
    return (
        f"{task} {first.get('database', '')} from {first.get('init', '')} seed "
        f"{first.get('seed', '')}: best epoch {done.get('best_epoch')} of {done.get('epochs_run')} "
        f"({done.get('monitor')} {float(done.get('monitor_value') or float('nan')):.3f}); "
        f"test {shown or 'n/a'}; written to {out}"
    )


_EPOCH_METRICS = {
    "classification": ("loss", "accuracy", "mcc", "balanced_accuracy", "f1_macro", "auroc_macro"),
    "segmentation": (
        "loss",
        *(m for m in PER_IMAGE_METRICS if not m.startswith("hd")),
        *(f"{m}_pooled" for m in ("dice", "iou", "pixel_accuracy", "precision", "recall")),
    ),
}


def _load_best(module: torch.nn.Module, out: Path) -> dict[str, Any]:
    """Load best.pt into ``module``. When no epoch had a defined monitor value (e.g. val MCC of
    a constant predictor), the last weights become best.pt, marked with value nan."""
    path = out / BEST
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        last = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
        state = {
            "model": last["model"],
            "epoch": last["epoch"],
            "monitor": None,
            "value": float("nan"),
        }
        save_torch(path, state)
    module.load_state_dict(state["model"])
    return {"epoch": int(state["epoch"]), "value": _fmt(state.get("value"))}


def _fmt(v: Any) -> Any:
    """Floats as floats; nan stays nan (written "nan" in CSV and null-free "NaN" in JSON)."""
    return float(v) if isinstance(v, (int, float, np.floating, np.integer)) else v


def _save_predictions(
    out: Path, s: str, task: str, split: SplitData, probs: np.ndarray, cfg: FinetuneConfig
) -> None:
    arrays: dict[str, np.ndarray] = {
        "ids": np.array(split.ids),
        "patients": np.array(split.patients),
        "sources": np.array(split.sources),
    }
    if task == "classification":
        arrays.update(y_true=split.labels, probs=probs.astype(np.float32))
    else:
        arrays.update(
            labels=split.labels,
            masks_true=split.masks.astype(np.uint8),
            probs=probs.astype(np.float16),
        )
        pi = segmentation_per_image(split, probs, cfg)
        distances = [k for k in SCALED_DISTANCES if k in pi]
        rows = [
            {
                "id": split.ids[i],
                "patient": split.patients[i],
                "source": split.sources[i],
                "label": CLASSES[int(split.labels[i])],
                "lesion": int(pi["lesion"][i]),
                "missed": int(pi["missed"][i]),
                **{k: float(pi[k][i]) for k in (*PER_IMAGE_METRICS, *distances)},
                **{k: int(pi[k][i]) for k in ("tp", "fp", "fn", "tn", "pred_area")},
            }
            for i in range(len(split))
        ]
        cols = ["id", "patient", "source", "label", "lesion", "missed", *PER_IMAGE_METRICS]
        cols += [*distances, "tp", "fp", "fn", "tn", "pred_area"]
        write_csv(out / f"per_image_{s}.csv", rows, cols)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(out / f"predictions_{s}.npz", buf.getvalue())


def _split_figures(
    out: Path,
    s: str,
    task: str,
    split: SplitData,
    probs: np.ndarray,
    m: dict[str, float],
    cfg: FinetuneConfig,
    seed: int,
) -> None:
    if task == "classification":
        from medssl.reporting.confusion import plot_confusion
        from medssl.reporting.roc import plot_roc_pr

        plot_roc_pr(split.labels, probs, out / f"roc_pr_{s}.png", title=f"{s} split")
        cm = confusion_matrix(split.labels, probs.argmax(1))
        plot_confusion(cm, out / f"confusion_{s}.png", title=f"{s}: MCC {m['mcc']:.3f}")
        return
    if s != "test":  # example panels for the test split only (thesis appendix C)
        return
    from medssl.reporting.overlays import pick_examples, plot_examples

    pred = probs >= cfg.threshold
    pi = per_image_metrics(split.masks, probs, cfg.threshold, distances=False)
    for name, label in (("dice", "Dice"), ("iou", "IoU")):
        scores = np.where(pi["lesion"], pi[name], np.nan)  # lesion images only (empty-mask policy)
        picks = pick_examples(scores, cfg.examples_per_group, np.random.default_rng(seed))
        plot_examples(
            split.images,
            split.masks,
            pred,
            scores,
            picks,
            out / f"examples_{s}_{name}.png",
            score_name=label,
            ids=split.ids,
            title=f"{s} split: examples by {label} (TP green, FP red, FN blue)",
        )


def _history_figures(out: Path, task: str, history: list[dict[str, Any]]) -> None:
    from medssl.reporting.curves import plot_curves

    plot_curves(
        history,
        ["train_loss", "val_loss"],
        out / "loss_curve.png",
        "Fine-tuning loss",
        ylabel="loss",
    )
    if task == "classification":
        cols = [
            "train_accuracy",
            "val_accuracy",
            "val_mcc",
            "val_balanced_accuracy",
            "val_auroc_macro",
        ]
        plot_curves(
            history, cols, out / "classification_curves.png", "Validation metrics per epoch"
        )
    else:
        from medssl.reporting.seg_curves import plot_segmentation_curves

        plot_segmentation_curves(
            history, out / "segmentation_curves.png", title="Segmentation per epoch"
        )


__all__ = [
    "FinetuneConfig",
    "OptimizerConfig",
    "SplitData",
    "finetune_splits",
    "load_preset",
    "predict",
    "resolve_config",
    "run_finetune",
]
