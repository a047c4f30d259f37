"""The benchmark's matrix: every run it plans, and run ids that hash what determines them.

Databases × SSL methods (and variants) × seeds pretraining runs, then for every task and
evaluation the fine-tunes (or probes) from every encoder, from random init and from the weights
you bring (``inits``: no pretraining run, the same file for every seed) × seeds (× folds × label
fractions, and other databases' encoders with ``transfer``). A run id hashes the run's
kind, resolved config (less the settings in ``_NOT_HASHED``), database checksum, seed, fold and
encoder, so a rerun finds a finished run under the same id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from medssl.config import merge, to_dict
from medssl.errors import ConfigError

if TYPE_CHECKING:
    from medssl.tasks.benchmark import BenchmarkConfig
    from medssl.tasks.pretrain_config import PretrainConfig


@dataclass
class RunState:
    """What the benchmark learns about a planned run as it goes; the run itself is frozen."""

    status: str = "pending"  # pending | done | reused | held
    seconds: float | None = None  # how long it ran (or ran earlier, when reused)
    estimate_s: float = 0.0  # tasks.estimates.estimate_run


@dataclass(frozen=True)
class PretrainRun:
    """One SSL pretraining run of the matrix: an encoder for the evaluation runs."""

    kind: ClassVar[str] = "pretrain"
    database: str
    seed: int
    method: str  # the encoder's name: an SSL method, or a variant of one (``variants``)
    config: dict[str, Any]  # resolved PretrainConfig, as saved
    obj: Any = field(repr=False)  # the same config as its PretrainConfig
    run_id: str
    state: RunState = field(default_factory=RunState, compare=False)
    # the K-fold fold whose train split joins the pool (pretrain_pool: pretrain+train with
    # folds: one pretraining run per fold); None: the pool does not depend on the fold
    pool_fold: int | None = None

    def label(self) -> str:
        fold = "" if self.pool_fold is None else f" (pool of fold {self.pool_fold})"
        return f"{self.database} {self.method} pretraining seed {self.seed}{fold}"

    def plan_entry(self) -> dict[str, Any]:
        """This run's plan.json entry: the evaluation runs' fields keep the values the one
        ``Run`` class of every kind gave a pretraining run (readers of old folders expect
        every key)."""
        return {
            "kind": self.kind, "database": self.database, "seed": self.seed,
            "method": self.method, "task": "", "init": "random", "fold": self.pool_fold, "fraction": 1.0,
            "evaluation": "finetune", "pretrain_data": "", "encoder_run": None,
            "weights": None, "weights_sha256": None,
            **_entry(self),
        }  # fmt: skip


@dataclass(frozen=True)
class BroughtInit:
    """An initialisation you bring (``inits: [random, NAME=PATH]``): a weights file that
    :func:`medssl.models.weights.load_weights` maps onto the encoder (a torchvision or timm
    ResNet-18 state dict, a medssl encoder.pt, a run or export folder)."""

    name: str
    file: str  # the weights file, absolute (a folder given resolves to its weights file)
    sha256: str  # of the file's bytes: part of every run id that starts from it


@dataclass(frozen=True)
class _EvaluationRun:
    """An evaluation of one encoder (or random init) on one database's finetuning split."""

    database: str
    seed: int
    task: str  # a registered task (tasks.task): classification | segmentation
    init: str  # random, the encoder's name (PretrainRun.method) or a brought arm's (``inits``)
    fold: int | None
    fraction: float  # the label fraction of the train split (data/fractions.py)
    evaluation: str  # finetune, or a frozen-encoder probe (tasks/evaluations.py)
    pretrain_data: str  # the database the encoder was pretrained on ("": random, brought)
    encoder_run: str | None  # the PretrainRun whose encoder.pt it starts from
    config: dict[str, Any]  # resolved FinetuneConfig / ProbeConfig, as saved
    obj: Any = field(repr=False)  # the same config as its dataclass
    run_id: str
    state: RunState = field(default_factory=RunState, compare=False)
    # a brought arm's weights (``inits: [random, NAME=PATH]``); None for random init and SSL
    # encoders (their file is ``encoder_run``'s encoder.pt)
    weights: BroughtInit | None = None

    kind: ClassVar[str]

    def label(self) -> str:
        what = f"{self.task} from {self.init}"
        if self.evaluation != "finetune":
            what += f" ({self.evaluation})"
        if self.pretrain_data and self.pretrain_data != self.database:
            what += f" pretrained on {self.pretrain_data}"
        fold = "" if self.fold is None else f" fold {self.fold}"
        frac = "" if self.fraction == 1.0 else f" at {self.fraction:g} of the labels"
        return f"{self.database} {what}{frac} seed {self.seed}{fold}"

    def plan_entry(self) -> dict[str, Any]:
        """This run's plan.json entry (``method`` empty, as the one ``Run`` class wrote it)."""
        return {
            "kind": self.kind, "database": self.database, "seed": self.seed, "method": "",
            "task": self.task, "init": self.init, "fold": self.fold, "fraction": self.fraction,
            "evaluation": self.evaluation, "pretrain_data": self.pretrain_data,
            "encoder_run": self.encoder_run,
            "weights": None if self.weights is None else self.weights.file,
            "weights_sha256": None if self.weights is None else self.weights.sha256,
            **_entry(self),
        }  # fmt: skip


@dataclass(frozen=True)
class FinetuneRun(_EvaluationRun):
    """Fine-tuning of the encoder and a task head (``obj``: a FinetuneConfig)."""

    kind: ClassVar[str] = "finetune"


@dataclass(frozen=True)
class ProbeRun(_EvaluationRun):
    """A frozen-encoder probe (``obj``: a ProbeConfig)."""

    kind: ClassVar[str] = "probe"


Run = PretrainRun | FinetuneRun | ProbeRun
"""A planned run of any kind; ``run.kind`` names it (``pretrain``, ``finetune``, ``probe``)."""


def _entry(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": run.state.status,
        "seconds": run.state.seconds,
        "estimate_s": run.state.estimate_s,
        "config_hash": run_hash(_hashable(run.config, skip=_NOT_IN_CONFIG_HASH)),
    }


_INIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def brought_inits(cfg: BenchmarkConfig, taken: Iterable[str]) -> dict[str, BroughtInit]:
    """The arms of ``cfg.inits`` besides ``random``: name -> its weights, each file checked
    here (it exists and loads strictly into the encoder: a wrong architecture is a named
    error before any run). ``taken``: the encoders' names, which a brought arm may not reuse."""
    from medssl.models.encoder import build_encoder
    from medssl.models.weights import load_weights, sha256_of, weights_file

    items = cfg.inits
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError(
            f"inits: {items!r}; expected a list of random and NAME=PATH entries, e.g. "
            "--set 'inits=[random, imagenet=~/weights/resnet18.pth]'"
        )
    if "random" not in items:
        raise ConfigError(
            f"inits: {items}; random init is every comparison's baseline and must be listed, "
            "e.g. [random, imagenet=PATH]"
        )
    taken = {"random", *taken}
    out: dict[str, BroughtInit] = {}
    for item in items:
        if item == "random":
            continue
        name, sep, path = (p.strip() for p in item.partition("="))
        if not sep or not path or not _INIT_NAME.fullmatch(name):
            raise ConfigError(
                f"inits: {item!r}; expected random or NAME=PATH (NAME of letters, digits and "
                "_.+-, e.g. imagenet=~/weights/resnet18.pth)"
            )
        if name in taken or name in out:
            raise ConfigError(
                f"inits: {name!r} is taken (by random init, a method, a variant or another "
                "entry); name the weights otherwise"
            )
        file = weights_file(Path(path).expanduser(), flag=f"inits: {name}").resolve()
        load_weights(file, build_encoder())  # a ConfigError naming the file and its keys
        out[name] = BroughtInit(name, str(file), sha256_of(file))
    return out


def run_hash(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def plan_runs(cfg: BenchmarkConfig, databases: dict[str, Any]) -> list[Run]:
    """Every run of the matrix, pretraining first, with ids that hash what determines them."""
    from medssl.ssl import get_method
    from medssl.tasks import finetune as ft
    from medssl.tasks import pretrain_config as pt

    for m in cfg.methods:
        get_method(m)
    from medssl.tasks.task import task_names

    bad = [t for t in cfg.tasks if t not in task_names()]
    if bad:
        raise ConfigError(f"benchmark tasks {bad}: valid are {', '.join(task_names())}")
    encoder_specs = encoder_variants(cfg)
    brought = brought_inits(cfg, encoder_specs)
    runs: list[Run] = []
    encoders: dict[tuple[str, str, int, int | None], PretrainRun] = {}
    for name, db in databases.items():
        for seed in range(cfg.seeds):
            for enc_name, (method, extra) in encoder_specs.items():
                pcfg = _pretrain_config(cfg, method, extra, seed)
                config = pt.saved_config(pcfg)
                # A pool that holds the train split follows the fold: one run per fold.
                per_fold = pcfg.pretrain_pool != "pretrain" and cfg.folds is not None
                for fold in range(cfg.folds) if per_fold else [None]:
                    payload = {
                        "kind": "pretrain",
                        "config": _hashable(config),
                        "data": db.checksum,
                        "seed": seed,
                    }
                    if fold is not None:  # runs of the whole train split keep their ids
                        payload |= {"fold": fold, "folds": cfg.folds}
                    run_id = "pt-" + run_hash(payload)
                    run = PretrainRun(name, seed, enc_name, config, pcfg, run_id, pool_fold=fold)
                    runs.append(run)
                    encoders[(name, enc_name, seed, fold)] = run
    from medssl.data.fractions import check_fractions
    from medssl.data.labelled import serves
    from medssl.data.splits import kfold_assignments
    from medssl.tasks.task import get_task

    fractions = check_fractions(cfg.label_fractions)
    evaluations = _evaluations(cfg)
    unknown = sorted(set(cfg.fraction_evaluations or ()) - {e.name for e in evaluations})
    if unknown:
        raise ConfigError(
            f"fraction_evaluations {unknown}: not among the benchmark's evaluations "
            f"{[e.name for e in evaluations]}"
        )
    for name, db in databases.items():
        if cfg.folds is not None:  # a class smaller than the folds is an error before any run
            rows = db.rows("finetune")
            labels, patients = [r.label for r in rows], [r.patient for r in rows]
            kfold_assignments(labels, patients, cfg.folds, 0, where=name)
        # a classification-only database (its recipe's tasks) gets no segmentation runs
        tasks = [t for t in cfg.tasks if serves(db, needs_masks=get_task(t).needs_masks)]
        for seed in range(cfg.seeds):
            folds = [None] if cfg.folds is None else list(range(cfg.folds))
            for fold in folds:
                for task, ev in itertools.product(tasks, evaluations):
                    if not ev.serves(task):
                        continue
                    fcfg = ft.resolve_config(
                        task=task, preset=cfg.finetune_preset, overrides=cfg.finetune, seed=seed
                    )
                    fcfg = ft.resolve_config(
                        merge(fcfg, {"trainer": {"accelerator": cfg.device}, **ev.finetune})
                    )
                    if ev.kind == "probe":
                        obj: Any = _probe_config(cfg, ev.name, seed, fcfg)
                        cls, prefix, hashed = ProbeRun, "pr-", _hashable(to_dict(obj))
                        hashed.pop("device")
                    else:
                        obj, cls, prefix = fcfg, FinetuneRun, "ft-"
                        hashed = _hashable(ft.saved_config(fcfg))
                    at = [
                        f
                        for f in fractions
                        if f == 1.0
                        or cfg.fraction_evaluations is None
                        or ev.name in cfg.fraction_evaluations
                    ]
                    combos = [
                        (fraction, init, name)
                        for fraction, init in itertools.product(
                            at, ["random", *encoder_specs, *brought]
                        )
                    ]
                    if cfg.transfer:  # the other databases' encoders, on the whole train split
                        combos += [
                            (1.0, init, source)
                            for source in databases
                            if source != name
                            for init in encoder_specs
                        ]
                    for fraction, init, source in combos:
                        enc = (
                            None
                            if init == "random" or init in brought
                            else _encoder(encoders, source, init, seed, fold)
                        )
                        encoder_run = enc.run_id if enc else None
                        weights = brought.get(init)
                        payload = {
                            "kind": cls.kind,
                            "config": hashed,
                            "data": db.checksum,
                            "seed": seed,
                            "fold": fold,
                            "folds": cfg.folds,
                            "encoder": encoder_run,
                            "init": init,
                        }
                        if fraction != 1.0:  # the whole train split keeps today's run ids
                            payload["fraction"] = fraction
                        if source != name:
                            payload["transfer_from"] = source
                        if weights is not None:  # the file's content, not its path
                            payload["weights"] = weights.sha256
                        run = cls(
                            name,
                            seed,
                            task=task,
                            init=init,
                            fold=fold,
                            fraction=fraction,
                            evaluation=ev.name,
                            pretrain_data="" if enc is None else source,
                            encoder_run=encoder_run,
                            config=(ft.saved_config(obj) if cls is FinetuneRun else to_dict(obj)),
                            obj=obj,
                            run_id=prefix + run_hash(payload),
                            weights=weights,
                        )
                        runs.append(run)
    return runs


def check_settings(cfg: BenchmarkConfig) -> None:
    """Resolve every stage's settings once, before the benchmark writes or builds anything: a
    bad ``--set`` value (a method, a task, an evaluation, a ``pretrain.*`` or ``finetune.*``
    setting, an ``inits`` file) is a ConfigError that names the stage, not a failure minutes
    later when the databases are built or the first run starts."""
    from medssl.ssl import get_method
    from medssl.tasks import finetune as ft
    from medssl.tasks.task import task_names

    for m in cfg.methods:
        get_method(m)
    bad = [t for t in cfg.tasks if t not in task_names()]
    if bad:
        raise ConfigError(f"benchmark tasks {bad}: valid are {', '.join(task_names())}")
    specs = encoder_variants(cfg)
    for name, (method, extra) in specs.items():
        try:
            _pretrain_config(cfg, method, extra, 0)
        except ConfigError as e:
            raise ConfigError(f"pretrain settings of {name}: {e}") from None
    for task in cfg.tasks:
        try:
            ft.resolve_config(task=task, preset=cfg.finetune_preset, overrides=cfg.finetune)
        except ConfigError as e:
            raise ConfigError(f"finetune settings ({task}): {e}") from None
    _evaluations(cfg)
    brought_inits(cfg, specs)


def _pretrain_config(
    cfg: BenchmarkConfig, method: str, extra: dict[str, Any], seed: int
) -> PretrainConfig:
    """The resolved PretrainConfig of one encoder and seed: the stage's preset, the benchmark's
    ``pretrain`` overrides (an epochs budget given there replaces a preset's steps), the
    variant's, the seed and the device. A pool that holds the train split cannot serve
    ``transfer``: its in-domain encoder would have seen the target's training images and an
    encoder pretrained elsewhere possibly its test images (databases share sources)."""
    from medssl.tasks import pretrain_config as pt  # torch: imported when planning

    base = pt.resolve_config(method, preset=cfg.pretrain_preset)
    patch = pt.budget_patch({**cfg.pretrain, **extra}, where="benchmark pretrain")
    merged = merge(base, {**patch, "seed": seed}, where="benchmark pretrain")
    pcfg = pt.resolve_config(cfg=merged, device=cfg.device)
    if cfg.transfer and pcfg.pretrain_pool != "pretrain":
        raise ConfigError(
            f"transfer: true compares pretraining databases on shared test images, and "
            f"pretrain_pool {pcfg.pretrain_pool!r} adds each database's finetuning train split "
            "to its own encoder's pool (an advantage in-domain encoders alone would have, and "
            "an encoder pretrained elsewhere may see another database's test images: the "
            "databases share sources); set --set pretrain.pretrain_pool=pretrain for transfer"
        )
    return pcfg


def _encoder(encoders, source: str, init: str, seed: int, fold: int | None) -> PretrainRun:
    """The encoder run an evaluation starts from: the fold's own when pretraining ran per fold."""
    return encoders.get((source, init, seed, fold)) or encoders[(source, init, seed, None)]


def _evaluations(cfg: BenchmarkConfig) -> list[Any]:
    """The benchmark's evaluations (tasks.evaluations), each serving one of its tasks."""
    from medssl.tasks.evaluations import get_evaluation

    if not cfg.evaluations:
        raise ConfigError("evaluations: expected at least one, e.g. [finetune, linear, knn]")
    out = [get_evaluation(e) for e in dict.fromkeys(cfg.evaluations)]
    for ev in out:
        if not any(ev.serves(t) for t in cfg.tasks):
            raise ConfigError(
                f"evaluations: {ev.name} serves {', '.join(ev.tasks or ())} and the benchmark's "
                f"tasks are {cfg.tasks}; add the task or drop the evaluation"
            )
    return out


def _probe_config(cfg: BenchmarkConfig, probe: str, seed: int, fcfg: Any) -> Any:
    """The ProbeConfig of a probe run: the benchmark's ``probe`` overrides, the run's seed,
    the fine-tuning cost matrix (the same expected-cost metric) and the device."""
    from medssl.tasks.probe import ProbeConfig, check_probe_config

    base = ProbeConfig(cost_matrix=[list(r) for r in fcfg.cost_matrix])
    merged = merge(base, {**cfg.probe, "probe": probe, "seed": seed}, where="benchmark probe")
    return check_probe_config(merge(merged, {"device": cfg.device}))


def encoder_variants(cfg: BenchmarkConfig) -> dict[str, tuple[str, dict[str, Any]]]:
    """Encoder name -> (SSL method, PretrainConfig overrides): every method as itself, then
    the variants (each must name its method; a name may not repeat a method's)."""
    from medssl.ssl import get_method

    out: dict[str, tuple[str, dict[str, Any]]] = {m: (m, {}) for m in cfg.methods}
    for name, spec in cfg.variants.items():
        if name in out or name == "random":
            raise ConfigError(f"variants.{name}: the name is taken by a method or by random init")
        if not isinstance(spec, dict) or "method" not in spec:
            raise ConfigError(
                f"variants.{name}: expected a mapping with its method, e.g. "
                "{method: simclr, augmentation: edges}"
            )
        get_method(spec["method"])
        out[name] = (spec["method"], {k: v for k, v in spec.items()})
    return out


# Settings that change where or how visibly a run computes, not what it computes: a run
# finished on a GPU is reused on a rerun from a CPU, with or without progress bars, whatever
# its resume state's write interval.
_NOT_HASHED = frozenset(
    f"trainer.{k}"
    for k in (
        "accelerator", "progress_bar", "epoch_log", "devices", "num_nodes", "checkpoint_every_s"
    )
)  # fmt: skip
"""Dotted paths of the settings left out of run ids (both stages nest their trainer)."""
_NOT_IN_CONFIG_HASH = frozenset({"trainer.checkpoint_every_s"})
"""What plan.json's ``config_hash`` (the saved config's hash) leaves out: the resume state's
write interval, which came after the hashes and must not change them."""


def _hashable(
    config: dict[str, Any], prefix: str = "", skip: frozenset[str] = _NOT_HASHED
) -> dict[str, Any]:
    """``config`` without the dotted settings in ``skip``."""
    out = {}
    for k, v in config.items():
        if f"{prefix}{k}" in skip:
            continue
        out[k] = _hashable(v, f"{prefix}{k}.", skip) if isinstance(v, dict) else v
    return out


def fold_splits(db: Any, k: int, repeat_seed: int, fold: int) -> list[str]:
    """Split names (train/val/test) over the whole finetuning pool for one fold of one repeat:
    test = fold ``fold``, val = the next fold, train = the rest; patient-grouped, stratified."""
    from medssl.data.splits import kfold_assignments

    rows = db.rows("finetune")
    folds = kfold_assignments([r.label for r in rows], [r.patient for r in rows], k, repeat_seed)
    val = (fold + 1) % k
    return ["test" if f == fold else "val" if f == val else "train" for f in folds]
