# Over 400 lines: the run loop and the records it writes share its Run list as runs finish.
"""The benchmark: the thesis's whole matrix from one call, resumable, then statistics and report.

Plan: databases (a data preset, or several) × SSL methods × seeds pretraining runs, then
classification and segmentation fine-tunes from every encoder and from random init × seeds
(× folds with ``folds=K``: repeated stratified, patient-grouped K-fold cross-validation over
the finetuning pool, the same folds for pretrained and baseline models so comparisons are
paired). Each run lives in ``OUT/runs/<run_id>`` where ``run_id`` hashes its kind, resolved
config, database checksum, seed, fold and encoder; a run whose ``done.json`` exists is reused,
a run with a checkpoint resumes. Killing the benchmark loses no finished run.

The matrix and its run ids are :mod:`medssl.tasks.matrix`; this module runs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl import presets
from medssl.artifacts import read_json, write_json
from medssl.config import apply_overrides, from_dict, load_yaml, merge, to_dict
from medssl.engine.checkpoint import clear_resume_state
from medssl.errors import ConfigError, MedsslError
from medssl.runfiles import (
    BENCHMARK_CONFIG,
    CHECKPOINT,
    DATABASES,
    DONE,
    ENCODER,
    FEATURES,
    LAST,
    PLAN,
    PROVENANCE,
    RUNS,
)
from medssl.tasks.estimates import estimate_run, throughput
from medssl.tasks.executors import ExecutorConfig
from medssl.tasks.matrix import (
    PretrainRun,
    ProbeRun,
    Run,
    check_settings,
    fold_splits,
    plan_runs,
)
from medssl.tasks.planner import plan_text
from medssl.tasks.runlock import STALE_AFTER_S, claim, lock_state


@dataclass
class BenchmarkConfig:
    preset: str = ""  # the benchmark preset this config was resolved from (for the report)
    data: list[str] = field(default_factory=lambda: ["demo"])  # database presets (recipes)
    data_seed: int = 0  # seed of the database sampling and the single 60/20/20 split
    methods: list[str] = field(default_factory=lambda: ["simclr", "moco", "byol"])
    tasks: list[str] = field(default_factory=lambda: ["classification", "segmentation"])
    seeds: int = 1  # repeats: seeds 0 .. seeds-1 (with folds: one fold assignment per seed)
    folds: int | None = None  # None: the thesis's single split; K: repeated K-fold CV
    # Label-efficiency curves: each fraction in (0, 1] of the finetuning train split, a
    # nested, class-stratified, patient-grouped subset drawn per replicate (seed, fold) and
    # shared by every initialisation (data/fractions.py); val and test never change. [1.0]:
    # the whole train split, the thesis's runs with the same run ids.
    label_fractions: list[float] = field(default_factory=lambda: [1.0])
    # The evaluations that run at the fractions below 1 (None: every evaluation); e.g.
    # [linear] keeps fine-tuning on the whole train split and draws the curve with the probes,
    # which cost seconds (the demo's curve). Run ids do not depend on it.
    fraction_evaluations: list[str] | None = None
    # How every encoder (and random init) is evaluated: names in tasks.evaluations
    # (finetune, frozen, linear, knn); probes are runs of kind "probe", seconds each.
    evaluations: list[str] = field(default_factory=lambda: ["finetune"])
    probe: dict[str, Any] = field(default_factory=dict)  # overrides of tasks.probe.ProbeConfig
    # Transfer: every encoder is also evaluated on the other databases' finetuning splits
    # (whole train split, every evaluation), giving per task a pretraining-data x target-
    # database matrix on shared test images (the modality question of thesis §6).
    transfer: bool = False
    pretrain: dict[str, Any] = field(default_factory=dict)  # overrides of PretrainConfig
    # Extra encoders beyond `methods`, each a name -> PretrainConfig overrides with its method,
    # e.g. {simclr-edges: {method: simclr, augmentation: edges}} (the edge-keeping augmentation
    # of the segmentation question); fine-tuned like the methods, under their own name.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    finetune: dict[str, Any] = field(default_factory=dict)  # overrides of FinetuneConfig
    # The initialisations besides the SSL encoders: random (every comparison's baseline) and
    # weights you bring as NAME=PATH (a torchvision or timm ResNet-18 state dict, a medssl
    # encoder.pt, a run folder; models/weights.py), e.g. [random, imagenet=~/resnet18.pth]:
    # each an arm of every table, verdict, curve and probe, compared with random init and
    # with every SSL method. Run ids hash the file's content (SHA-256), not its path.
    inits: list[str] = field(default_factory=lambda: ["random"])
    # The stages' presets: the thesis's unless a benchmark preset names another (medssl's
    # defaults are `medssl pretrain`/`finetune`'s, not the thesis benchmark's).
    pretrain_preset: str = "thesis"
    finetune_preset: str = "thesis"
    device: str = "auto"  # auto | cpu | cuda
    # Runs at a time, each in its own process: None = one per GPU when there are several,
    # else 1. On a CPU, N workers split the cores (small runs are overhead-bound, so 2 workers
    # on 2 cores finish a smoke matrix sooner than 1 worker with 2 threads).
    workers: int | None = None
    # Where runs execute (`--executor local|slurm` sets executor.name): this machine's
    # workers, or one Slurm job per run; never part of a run id.
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    # What a finished fine-tuning run keeps of its weights: none (the default: the report
    # reads only records, predictions and figures), best (best.pt) or last (best.pt and the
    # last epoch's weights, last.pt). Pretraining runs always keep encoder.pt.
    keep_checkpoints: str = "none"
    # The design planner of --dry-run (tasks/planner.py): the seeds that detect target_effect
    # in each comparison, from the variance components of a finished benchmark (pilot: its
    # folder; None: this folder's report). Never part of a run id.
    target_effect: float | None = None
    pilot: str | None = None


def load_benchmark_preset(name: str) -> BenchmarkConfig:
    path = presets.preset_path("benchmark", name)
    return from_dict(BenchmarkConfig, load_yaml(path), where=str(path))


def run_benchmark(
    cfg: BenchmarkConfig,
    out: str | Path,
    *,
    roots: dict[str, Path] | None = None,
    progress: bool = True,
    dry_run: bool = False,
    log=print,
) -> Path:
    """Plan the matrix, run what is not finished through the configured executor (pretraining
    wave first: every fine-tune of an encoder needs its encoder.pt), then collect the results
    and build the report. A run another executor is training (its lock is live) is waited for,
    not run again; a stale lock is taken over (see :mod:`medssl.tasks.runlock`)."""
    from medssl.data.build_preset import build_preset
    from medssl.data.database import Database
    from medssl.tasks.executors import get_executor

    out = Path(out)
    executor = get_executor(cfg.executor.name)(
        cfg.executor, out, workers=_workers(cfg), device=cfg.device
    )
    if cfg.keep_checkpoints not in KEEP_CHECKPOINTS:
        raise ConfigError(
            f"keep_checkpoints: {cfg.keep_checkpoints!r}; valid are {', '.join(KEEP_CHECKPOINTS)}"
        )
    check_settings(cfg)  # every --set value, before anything is written or built
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / BENCHMARK_CONFIG, to_dict(cfg))
    databases: dict[str, Database] = {}
    for preset in cfg.data:
        for path in _ensure_databases(
            preset, out / DATABASES, roots or {}, cfg.data_seed, build_preset
        ):
            db = Database.load(path)
            databases[db.name] = db
    runs = plan_runs(cfg, databases)
    _estimate(runs, databases, cfg)
    earlier = _earlier_seconds(out)
    for run in runs:
        if (out / RUNS / run.run_id / DONE).is_file():
            run.state.status, run.state.seconds = "reused", earlier.get(run.run_id)
            _prune(out / RUNS / run.run_id, run.kind, cfg.keep_checkpoints)  # killed mid-cleanup
    todo = [r for r in runs if r.state.status == "pending"]
    total_s = sum(r.state.estimate_s for r in todo)
    log(_plan_text(runs, databases, total_s, executor.parallel, cfg, executor.describe()))
    _write_plan(out, runs)
    if dry_run:
        log(_jobs_text(todo, out, cfg, executor.describe()))
        log(plan_text(cfg, runs, out, executor.parallel))
        return out

    bar = EstimateBar(total_s, enabled=progress)
    stale_s = cfg.executor.lock_stale_min * 60
    counts = {"took_over": 0, "elsewhere": 0}

    def on_result(wave: list[Run], i: int, outcome: Outcome) -> None:
        run = wave[i]
        if outcome.status == "ran":
            run.state.seconds, run.state.status = round(outcome.seconds, 2), "done"
            counts["took_over"] += outcome.took_over is not None
            if outcome.took_over is not None:
                log(f"{run.label()}: took over a stale lock of {outcome.took_over}")
        elif outcome.status == "done":
            run.state.status, counts["elsewhere"] = "reused", counts["elsewhere"] + 1
        else:
            run.state.status = "held"
            return
        bar.describe(run.label())
        bar.advance(run.state.estimate_s)
        _write_plan(out, runs)

    in_run_progress = progress and executor.progress_in_runs
    # pretraining first: every fine-tune (and probe) of an encoder needs its encoder.pt
    for phase in ("pretrain", "finetune", "probe"):
        wave = [r for r in todo if r.kind == phase]
        while wave:
            held = [r for r in wave if lock_state(out / RUNS / r.run_id, stale_s) == "held"]
            for r in held:
                r.state.status = "held"
            ready = [r for r in wave if r.state.status != "held"]
            calls = [
                (
                    r,
                    str(databases[r.database].path),
                    cfg.folds,
                    out,
                    in_run_progress,
                    cfg.keep_checkpoints,
                    stale_s,
                )
                for r in ready
            ]
            executor.map(
                _execute,
                calls,
                lambda i, o, ready=ready: on_result(ready, i, o),
                [r.label() for r in ready],
            )
            held += [r for r in ready if r.state.status == "held"]
            wave = _wait_for_holders(held, out, stale_s, cfg.executor.poll_s, log)
            for r in held:
                if r.state.status == "held":  # finished by its holder
                    r.state.status, counts["elsewhere"] = "reused", counts["elsewhere"] + 1
    bar.close()
    if counts["took_over"] or counts["elsewhere"]:
        log(
            f"runs: {counts['took_over']} stale lock(s) taken over, "
            f"{counts['elsewhere']} run(s) finished by another executor"
        )
    _provenance(out, cfg, databases, runs)
    from medssl.reporting.report import build_report

    build_report(out)  # gathers the finished runs' records first (tasks.collect)
    return out


def _wait_for_holders(held: list[Run], out: Path, stale_s: float, poll_s: float, log) -> list[Run]:
    """Wait while other executors train ``held``; the runs that need running again: those
    whose holder let go (or died, its lock now stale) without finishing them."""
    if not held:
        return []
    log(f"{len(held)} run(s) are being trained by another executor: waiting for them")
    again: list[Run] = []
    waiting = list(held)
    while waiting:
        for r in list(waiting):
            run_dir = out / RUNS / r.run_id
            if (run_dir / DONE).is_file():
                waiting.remove(r)
            elif lock_state(run_dir, stale_s) != "held":
                waiting.remove(r)
                r.state.status = "pending"
                again.append(r)
        if waiting:
            time.sleep(poll_s)
    return again


class EstimateBar:
    """The benchmark's progress bar, counted in estimated seconds of work.

    A run adds its estimate when it finishes. Estimates are estimates: when they overrun the
    planned total, the total grows to the work done so far, so the bar never passes 100% (and
    tqdm never drops its total, which its ``{total}`` format field cannot then show).
    """

    def __init__(self, total_s: float, *, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=float(total_s),
            unit="s",
            desc="benchmark",
            disable=not enabled,
            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} est. s [{elapsed}<{remaining}] {postfix}",
        )

    def advance(self, seconds: float) -> None:
        seconds = max(float(seconds), 0.0)
        if self.bar.total is None or self.bar.n + seconds > self.bar.total:
            self.bar.total = self.bar.n + seconds
        self.bar.update(seconds)

    def describe(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def close(self) -> None:
        self.bar.close()


def _ensure_databases(preset, folder: Path, roots, seed, build_preset) -> list[Path]:
    from medssl.data.database import META_FILE
    from medssl.data.recipe import load_recipes

    names = [r.name for r in load_recipes(preset)]
    paths = [folder / n for n in names]
    if all((p / META_FILE).is_file() for p in paths):
        return paths
    return build_preset(preset, folder, roots, seed=seed, overwrite=True)  # phantoms: the preset


@dataclass(frozen=True)
class Outcome:
    """What one call of :func:`_execute` did: ``ran`` (trained, ``seconds``), ``done``
    (finished meanwhile by another executor) or ``held`` (another executor is training it)."""

    status: str
    seconds: float = 0.0
    took_over: str | None = None  # the stale lock's holder this run replaced


def _execute(
    run: Run,
    db_path: str,
    folds: int | None,
    out: Path,
    progress: bool,
    keep: str = "none",
    stale_s: float = STALE_AFTER_S,
) -> Outcome:
    """Run one planned run (in this process, a worker or a Slurm job) under its lock."""
    from medssl.data.database import Database
    from medssl.data.fractions import fraction_split
    from medssl.tasks import finetune as ft
    from medssl.tasks import pretrain as pt

    run_dir = out / RUNS / run.run_id
    if (run_dir / DONE).is_file():
        return Outcome("done")
    held = claim(run_dir, stale_s)
    if held is None:
        return Outcome("held")
    with held:
        if (run_dir / DONE).is_file():  # finished between our look and our claim
            return Outcome("done")
        started = time.perf_counter()
        db = Database.load(db_path)
        resume = (run_dir / CHECKPOINT).is_file()
        try:
            if isinstance(run, PretrainRun):
                cfg_run = dataclasses.replace(
                    run.obj, trainer=dataclasses.replace(run.obj.trainer, progress_bar=progress)
                )
                fold = run.pool_fold
                split = None if fold is None else fold_splits(db, folds, run.seed, fold)
                pt.run_pretraining(
                    db, run_dir, cfg=cfg_run, resume=resume, split=split, log_name=run.label()
                )
            else:
                encoder = (
                    run.weights.file
                    if run.weights is not None
                    else "random"
                    if run.encoder_run is None
                    else out / RUNS / run.encoder_run / ENCODER
                )
                split = None if run.fold is None else fold_splits(db, folds, run.seed, run.fold)
                split = fraction_split(db, run.fraction, run.seed, fold=run.fold, base=split)
                if isinstance(run, ProbeRun):
                    from medssl.tasks.probe import run_probe

                    run_probe(
                        db, run_dir, config=run.obj, init=encoder, init_name=run.init,
                        fold=run.fold, split_override=split, run_id=run.run_id,
                        cache=out / FEATURES, device=run.obj.device,
                    )  # fmt: skip
                else:
                    ft.run_finetune(
                        db,
                        run_dir,
                        config=run.obj,
                        init=encoder,
                        init_name=run.init,
                        fold=run.fold,
                        split_override=split,
                        run_id=run.run_id,
                        resume=resume,
                        progress=progress,
                        keep_last=keep == "last",
                        log_name=run.label(),
                    )
        except MedsslError as e:
            raise MedsslError(f"{run.label()} ({run_dir}): {e}") from e
        if (run_dir / DONE).is_file():
            _prune(run_dir, run.kind, keep)
        took = held.took_over
        return Outcome(
            "ran",
            time.perf_counter() - started,
            None if took is None else f"{took.host} pid {took.pid} job {took.job_id}",
        )


KEEP_CHECKPOINTS = ("none", "best", "last")
"""What a finished fine-tuning run keeps of its weights (``keep_checkpoints``)."""


def _prune(run_dir: Path, kind: str, keep: str) -> None:
    """Remove a finished run's weights it no longer needs.

    Every run drops its resume state (checkpoint.pt: weights and optimizer moments, about three
    times the model); a fine-tune with ``keep=last`` keeps its weights as last.pt first (a run
    killed between done.json and that step is pruned here on the rerun). Pretraining runs
    always keep encoder.pt (45 MB for a ResNet-18; their fine-tunes load it, possibly on a later
    rerun with more seeds or tasks). Fine-tuning runs keep best.pt and last.pt with ``last``,
    best.pt with ``best`` and no .pt file with ``none``: their records, predictions and
    figures, all the report reads, stay. Weights already removed are not brought back: a run
    finished under ``none`` keeps nothing on a rerun with ``last``.
    """
    finetune = kind == "finetune"
    clear_resume_state(run_dir, keep_last=finetune and keep == "last")
    if not finetune or keep == "last":
        return
    for f in run_dir.glob("*.pt" if keep == "none" else LAST):
        f.unlink(missing_ok=True)


def _workers(cfg: BenchmarkConfig) -> int:
    if cfg.workers is not None:
        if cfg.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {cfg.workers}")
        return cfg.workers
    if cfg.device == "cpu":
        return 1
    import torch

    return max(1, torch.cuda.device_count())


def _write_plan(out: Path, runs: list[Run]) -> None:
    write_json(out / PLAN, [r.plan_entry() for r in runs])


def _earlier_seconds(out: Path) -> dict[str, float]:
    """Run id -> duration, from the plan.json of an earlier command on this folder (a reused
    run keeps the duration it took when it ran)."""
    old = out / PLAN
    if not old.is_file():
        return {}
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        return {p["run_id"]: p["seconds"] for p in read_json(old) if p.get("seconds") is not None}
    return {}


def _provenance(
    out: Path, cfg: BenchmarkConfig, databases: dict[str, Any], runs: list[Run]
) -> None:
    from medssl.reporting.provenance import collect_provenance

    prov = collect_provenance(
        seeds=sorted({r.seed for r in runs}), databases={n: db.path for n, db in databases.items()}
    )
    prov["folds"] = cfg.folds
    prov["benchmark"] = to_dict(cfg)
    prov["databases"] = {
        n: {"checksum": db.checksum, "path": str(db.path)} for n, db in databases.items()
    }
    prov["inits"] = {
        r.init: {"file": r.weights.file, "sha256": r.weights.sha256}
        for r in runs
        if r.kind != "pretrain" and r.weights is not None
    }  # the weights each brought arm started from
    prov["runs"] = {
        r.run_id: {"label": r.label(), "seconds": r.state.seconds, "config": r.config} for r in runs
    }
    old = out / PLAN
    if old.is_file():
        seconds = {p["run_id"]: p.get("seconds") for p in read_json(old)}
        for rid, info in prov["runs"].items():
            info["seconds"] = info["seconds"] if info["seconds"] is not None else seconds.get(rid)
    write_json(out / PROVENANCE, prov)


def _estimate(runs: list[Run], databases: dict[str, Any], cfg: BenchmarkConfig) -> None:
    speed = throughput()
    for r in runs:
        r.state.estimate_s = estimate_run(r, databases[r.database], speed)


def _plan_text(
    runs: list[Run],
    databases: dict[str, Any],
    total_s: float,
    workers: int,
    cfg: BenchmarkConfig | None = None,
    where: str = "",
) -> str:
    n_pt = sum(r.kind == "pretrain" for r in runs)
    n_pr = sum(r.kind == "probe" for r in runs)
    n_ft = len(runs) - n_pt - n_pr
    reused = sum(r.state.status == "reused" for r in runs)
    probes = f" and {n_pr} frozen-encoder probes" if n_pr else ""
    lines = [
        f"benchmark plan: {len(databases)} database(s) {sorted(databases)}, {n_pt} pretraining and {n_ft} fine-tuning runs{probes}",
        f"  {reused} already finished (reused), {len(runs) - reused} to run; estimated "
        f"{total_s / 60 / min(workers, max(len(runs) - reused, 1)):.1f} min with {workers} "
        "run(s) at a time",
    ]
    if cfg is not None:
        kept, in_flight = disk_estimate(runs, cfg.keep_checkpoints)
        at_once = max(1, min(workers, len(runs) - reused))
        lines.append(
            f"  estimated disk for model files: {kept / 1e9:.2f} GB kept "
            f"(keep_checkpoints={cfg.keep_checkpoints}, encoder.pt of every pretraining run), "
            f"up to {in_flight * at_once / 1e9:.2f} GB more while {at_once} run(s) train; "
            f"executor: {where}"
        )
    if n_pr:
        probe_s = sum(
            r.state.estimate_s for r in runs if r.kind == "probe" and r.state.status == "pending"
        )
        lines.append(f"  of which the probes: about {probe_s / 60 / workers:.1f} min")
    pretraining = _pretraining_budgets(runs, databases)
    if pretraining:
        lines.append(f"  pretraining: {pretraining}")
    brought = {r.init: r.weights.file for r in runs if r.kind != "pretrain" and r.weights}
    if brought:
        lines.append(
            "  weights you bring (fine-tuned and probed like every encoder, no pretraining): "
            + ", ".join(f"{name} = {file}" for name, file in brought.items())
        )
    fractions = sorted({r.fraction for r in runs if r.kind != "pretrain"})
    if fractions != [1.0]:
        lines.append(f"  label fractions: {', '.join(f'{f:g}' for f in fractions)}")
    return "\n".join(lines)


def _pretraining_budgets(runs: list[Run], databases: dict[str, Any]) -> str:
    """Steps per pretraining run, per database and pool: ``US1 1,000 steps (pool
    pretrain+train, 549 images, batch 64)``, one entry per distinct budget."""
    from medssl.tasks.estimates import pretrain_steps

    seen: dict[str, None] = {}
    for r in runs:
        if r.kind != "pretrain":
            continue
        steps, n = pretrain_steps(r.obj, databases[r.database])
        seen[
            f"{r.database} {steps:,} steps (pool {r.obj.pretrain_pool}, {n} images, batch "
            f"{r.obj.batch_size})"
        ] = None
    return "; ".join(seen)


def _jobs_text(todo: list[Run], out: Path, cfg: BenchmarkConfig, where: str) -> str:
    """The --dry-run listing: every job that a real run would start, wave by wave."""
    lines = [f"dry run: {len(todo)} job(s) would run ({where}); nothing submitted"]
    stale_s = cfg.executor.lock_stale_min * 60
    # pretraining first: every fine-tune (and probe) of an encoder needs its encoder.pt
    for phase in ("pretrain", "finetune", "probe"):
        wave = [r for r in todo if r.kind == phase]
        if wave:
            lines.append(f"  {phase} wave, {len(wave)} job(s):")
        for r in wave:
            state = lock_state(out / RUNS / r.run_id, stale_s)
            note = {"held": " [held by another executor]", "stale": " [stale lock]"}.get(state, "")
            lines.append(
                f"    {r.run_id}  {r.kind:8s}  {r.label()}  ~{r.state.estimate_s:.0f} s{note}"
            )
    return "\n".join(lines)


FLOAT_BYTES = 4  # weights are saved in float32 whatever the training precision


def disk_estimate(runs: list[Run], keep: str) -> tuple[int, int]:
    """Bytes of model files: kept by the finished matrix, and the most one training run adds
    while it trains (its resume state: weights and Adam's two moments, 3x the model).

    From parameter (and buffer) counts x 4 bytes; records, predictions and figures (small) are
    not counted. Pretraining keeps encoder.pt; a fine-tune keeps nothing (``none``), best.pt
    (``best``) or best.pt and last.pt (``last``), each the size of its network.
    """
    kept, in_flight = 0, 0
    for r in runs:
        if r.kind == "pretrain":
            size = _model_bytes("encoder")
            kept += size
        else:
            size = _model_bytes(r.task)
            kept += {"none": 0, "best": size, "last": 2 * size}.get(keep, 0)
        in_flight = max(in_flight, 3 * size)
    return kept, in_flight


@functools.cache
def _model_bytes(what: str) -> int:
    """float32 bytes of the encoder (``encoder``) or of a task's network (built on the meta
    device: shapes without memory, in milliseconds; a frozen encoder is saved all the same)."""
    import numpy as np
    import torch

    from medssl.data.labelled import SplitData
    from medssl.tasks.finetune import FinetuneConfig
    from medssl.tasks.task import get_task

    with torch.device("meta"):
        if what == "encoder":
            from medssl.models.encoder import build_encoder

            model = build_encoder()
        else:
            empty = SplitData(
                rows=np.zeros(0, np.int64),
                images=np.zeros((0, 1, 1), np.uint8),
                labels=np.zeros(0, np.int64),
                masks=np.zeros((0, 1, 1), np.uint8),
                ids=[],
                patients=[],
            )
            cfg = FinetuneConfig(task=what)
            model = get_task(what)(cfg).build("random", empty)
    n = sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers())
    return int(n) * FLOAT_BYTES


def resolve_benchmark(
    preset: str, overrides: list[str], seeds: int | None, folds: int | None
) -> BenchmarkConfig:
    cfg = merge(load_benchmark_preset(preset), {"preset": preset})
    if seeds is not None:
        cfg = merge(cfg, {"seeds": seeds})
    if folds is not None:
        cfg = merge(cfg, {"folds": folds})
    cfg = apply_overrides(cfg, overrides)
    if cfg.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {cfg.seeds}")
    if cfg.folds is not None and cfg.folds < 2:
        raise ConfigError(f"--folds must be >= 2, got {cfg.folds}")
    return cfg
