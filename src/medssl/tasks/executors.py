"""Where the benchmark's runs execute: ``local`` (this machine's worker processes) or ``slurm``
(one job per run through submitit), registered in ``EXECUTORS``.

An executor runs one wave of independent runs (the benchmark sends the pretraining wave, waits,
then the fine-tuning wave) and knows nothing about what a run does: it calls the function it is
given once per argument tuple and hands each result back as it arrives. Run ids never depend on
these settings (they are not part of any run's config), so a benchmark started on a laptop can
be finished on a cluster and the other way round.

The Slurm executor is submitit's ``AutoExecutor``: each run is a job of a job array (at most
``array_parallelism`` at a time), its pickled call, stdout and stderr under ``OUT/logs/``. With
``cluster: local`` submitit runs the same jobs as subprocesses of this machine instead of
submitting them (the code path of a cluster minus the scheduler; the tests use it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medssl.errors import ConfigError, MedsslError
from medssl.registry import Registry
from medssl.runfiles import LOGS


@dataclass
class ExecutorConfig:
    name: str = "local"  # local | slurm (the CLI's --executor)
    # slurm: submitit's backend. `slurm` submits to the scheduler; `local` runs the jobs as
    # subprocesses of this machine (for trying the path out, and for the tests).
    cluster: str = "slurm"
    partition: str | None = None  # Slurm partition (sbatch --partition)
    gpus_per_job: int = 1
    cpus_per_job: int | None = None  # also the job's torch threads; None: Slurm's default
    mem_gb: float | None = None  # None: the partition's default
    timeout_min: int = 240  # per job; a job killed at its limit resumes on the next rerun
    array_parallelism: int = 64  # jobs of one wave running at a time
    # more sbatch settings in submitit's names without the slurm_ prefix, e.g.
    # {account: mylab, qos: high, constraint: a100}
    slurm: dict[str, Any] = field(default_factory=dict)
    # a run's lock whose heartbeat is older than this is stale (its job died on another node)
    lock_stale_min: float = 5.0
    poll_s: float = 10.0  # how often the benchmark looks at runs another executor is training


OnResult = Callable[[int, Any], None]


class Executor:
    """Runs waves of calls; ``map`` calls ``on_result(i, fn(*calls[i]))`` as each finishes."""

    progress_in_runs = False  # whether runs may draw their own progress bars (same terminal)

    def __init__(self, cfg: ExecutorConfig, out: Path, *, workers: int, device: str) -> None:
        self.cfg, self.out, self.workers, self.device = cfg, Path(out), workers, device

    def describe(self) -> str:
        """The resources one run gets, for the plan and --dry-run."""
        raise NotImplementedError

    @property
    def parallel(self) -> int:
        """Runs at a time (for the duration estimate)."""
        return self.workers

    def map(
        self,
        fn: Callable[..., Any],
        calls: Sequence[tuple],
        on_result: OnResult,
        names: Sequence[str] = (),
    ) -> None:
        """``names[i]`` (optional) says what call i is, in errors."""
        raise NotImplementedError


EXECUTORS: Registry[type[Executor]] = Registry("executor")


def get_executor(name: str) -> type[Executor]:
    return EXECUTORS.get(name)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """This machine: runs one after another in this process (one worker), or in a pool of
    spawned worker processes, each pinned to one GPU or given a share of the CPU cores."""

    @property
    def progress_in_runs(self) -> bool:  # type: ignore[override]
        return self.workers == 1

    def describe(self) -> str:
        return f"local, {self.workers} worker(s)"

    def map(self, fn, calls, on_result, names=()) -> None:
        if self.workers == 1:
            for i, args in enumerate(calls):
                on_result(i, fn(*args))
            return
        with _pool(self.workers, self.device) as pool:
            futures = {pool.submit(fn, *args): i for i, args in enumerate(calls)}
            for fut in as_completed(futures):
                on_result(futures[fut], fut.result())


def _pool(workers: int, device: str) -> ProcessPoolExecutor:
    """Worker processes (spawned: safe with CUDA and OpenMP), each pinned to one GPU when
    there are several, or given an equal share of the CPU cores."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    gpus = ctx.Queue()
    n_gpus = 0
    if device != "cpu":
        import torch

        n_gpus = torch.cuda.device_count()
    for i in range(workers):
        gpus.put(i % n_gpus if n_gpus else None)
    threads = max(1, (os.cpu_count() or 1) // workers)
    return ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(gpus, threads)
    )


def _init_worker(gpus: Any, threads: int) -> None:
    gpu = gpus.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    import torch

    torch.set_num_threads(threads)


@EXECUTORS.register("slurm")
class SlurmExecutor(Executor):
    """One Slurm job per run (a job array per wave) through submitit; submitit's job files
    and logs go to ``OUT/logs/``. A failed job fails the wave after the others have ended,
    naming each failed run's log; rerunning the same command resumes from there."""

    def __init__(self, cfg: ExecutorConfig, out: Path, *, workers: int, device: str) -> None:
        super().__init__(cfg, out, workers=workers, device=device)
        if cfg.cluster not in ("slurm", "local", "debug"):
            raise ConfigError(
                f"executor.cluster: {cfg.cluster!r}; valid are slurm (the scheduler), local "
                "(submitit's jobs as subprocesses of this machine) and debug (in this process)"
            )
        if cfg.gpus_per_job < 0 or (cfg.cpus_per_job is not None and cfg.cpus_per_job < 1):
            raise ConfigError(
                f"executor.gpus_per_job must be >= 0 and executor.cpus_per_job >= 1, got "
                f"{cfg.gpus_per_job} and {cfg.cpus_per_job}"
            )

    def parameters(self) -> dict[str, Any]:
        """submitit's update_parameters arguments (generic names, then slurm_ ones)."""
        c = self.cfg
        params: dict[str, Any] = {
            "name": "medssl",
            "timeout_min": int(c.timeout_min),
            "gpus_per_node": int(c.gpus_per_job),
            "tasks_per_node": 1,
            "nodes": 1,
            "cpus_per_task": c.cpus_per_job,
            "mem_gb": c.mem_gb,
            "slurm_array_parallelism": int(c.array_parallelism),
        }
        if c.partition:
            params["slurm_partition"] = c.partition
        params.update({f"slurm_{k}": v for k, v in c.slurm.items()})
        return {k: v for k, v in params.items() if v is not None}

    @property
    def parallel(self) -> int:
        return max(1, int(self.cfg.array_parallelism))

    def submitit_executor(self) -> Any:
        """submitit's AutoExecutor for ``OUT/logs`` with these settings (an error that says
        what to do when there is no Slurm here or submitit refuses a setting)."""
        import submitit

        try:
            ex = submitit.AutoExecutor(folder=self.out / LOGS, cluster=self.cfg.cluster)
        except RuntimeError as e:  # no srun on PATH
            raise ConfigError(
                f"--executor slurm: {e}; run the benchmark on a Slurm login node, or "
                "--set executor.cluster=local to run the same jobs on this machine"
            ) from None
        try:
            ex.update_parameters(**self.parameters())
        except (NameError, AssertionError, ValueError) as e:  # submitit's checks
            raise ConfigError(f"executor settings: submitit refused them: {e}") from None
        return ex

    def describe(self) -> str:
        c = self.cfg
        where = (
            "submitit local jobs"
            if c.cluster != "slurm"
            else f"slurm {c.partition or '(default partition)'}"
        )
        cpus = c.cpus_per_job if c.cpus_per_job is not None else "default"
        mem = f"{c.mem_gb:g} GB" if c.mem_gb is not None else "default mem"
        return f"{where}, {c.gpus_per_job} GPU, {cpus} CPU, {mem}, {c.timeout_min} min"

    def map(self, fn, calls, on_result, names=()) -> None:
        import submitit

        if not calls:
            return
        ex = self.submitit_executor()
        threads = self.cfg.cpus_per_job
        with ex.batch():
            jobs = [ex.submit(_with_threads, threads, fn, *args) for args in calls]
        index = {job.job_id: i for i, job in enumerate(jobs)}
        failed: list[str] = []
        # a local job is a process to look at; Slurm's state comes from sacct, which submitit
        # already rate-limits
        poll_s = 1.0 if self.cfg.cluster != "slurm" else 15.0
        for job in submitit.helpers.as_completed(jobs, poll_frequency=poll_s):
            try:
                result = job.result()
            except Exception as e:  # submitit.core.utils.UncompletedJobError and subclasses
                i = index[job.job_id]
                what = f"{names[i]}: " if i < len(names) else ""
                failed.append(f"{what}job {job.job_id} (log {job.paths.stderr}): {_last_line(e)}")
                continue
            on_result(index[job.job_id], result)
        if failed:
            raise MedsslError(
                f"{len(failed)} of {len(jobs)} job(s) failed:\n  "
                + "\n  ".join(failed)
                + "\nfix the cause and rerun the same command: finished runs are kept, "
                "interrupted ones resume from their last epoch"
            )


def _with_threads(threads: int | None, fn: Callable[..., Any], *args: Any) -> Any:
    """A job's entry point: torch threads as the job's CPUs, then the run."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return fn(*args)


def _last_line(e: Exception) -> str:
    """The error a job raised: the last line of the traceback in submitit's message (which
    ends with the log paths), else the message's last line (a job killed without result)."""
    text = str(e)
    if "----------------------" in text:
        text = text.split("----------------------")[1]
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__
