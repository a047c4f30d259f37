"""Executors and run locks: the benchmark through submitit (its local backend, the Slurm path
minus the scheduler), --dry-run, checkpoint pruning, reruns after a kill, and the lock that
keeps two executors from training one run twice."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from medssl.artifacts import read_csv
from medssl.cli.main import main
from medssl.data.database import Database
from medssl.errors import ConfigError
from medssl.runfiles import BEST, DONE, ENCODER, LAST, LOCK, RESULTS, RUNS
from medssl.tasks import runlock
from medssl.tasks.benchmark import plan_runs, resolve_benchmark

ONE_DATABASE = """\
phantom_scale: 0.25
databases:
  - name: US1
    sizes: {pretrain: 48, finetune: 32}
    quotas:
      pretrain:
        busi: {normal: 8, benign: 8}
      finetune:
        busi: {benign: 10, malignant: 10, normal: 10}
"""

# the smallest matrix with both waves: one database, SimCLR, classification, one seed, one
# epoch; fp32 so that reruns compute what the first run computed
TINY = [
    "--set", "methods=[simclr]", "--set", "tasks=[classification]",
    "--set", "pretrain.trainer.precision=32-true", "--set", "finetune.trainer.precision=32-true",
]  # fmt: skip
SUBMITIT_LOCAL = [
    "--executor", "slurm", "--set", "executor.cluster=local", "--set", "executor.gpus_per_job=0",
    "--set", "executor.cpus_per_job=1",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_database(tmp_path_factory) -> tuple[Path, Path]:
    """(recipe file, built databases folder) of one tiny phantom database."""
    from medssl.data.build_preset import build_preset

    root = tmp_path_factory.mktemp("tiny")
    recipe = root / "one.yaml"
    recipe.write_text(ONE_DATABASE, encoding="utf-8")
    build_preset(recipe, root / "databases", phantoms=True, warn=lambda _: None)
    return recipe, root / "databases"


def _bench_args(out: Path, recipe: Path, *extra: str) -> list[str]:
    return [
        "benchmark", "--preset", "smoke", "--seeds", "1", "--out", str(out), "--no-progress",
        "--set", f"data=[{recipe}]", *TINY, *extra,
    ]  # fmt: skip


def _new_bench(tmp: Path, tiny_database) -> tuple[Path, Path]:
    recipe, dbs = tiny_database
    out = tmp / "bench"
    shutil.copytree(dbs, out / "databases")
    return out, recipe


def _claims(out: Path) -> dict[str, list[dict]]:
    return {d.name: runlock.claims(d) for d in sorted((out / RUNS).iterdir())}


def _weights(out: Path) -> dict[str, Any]:
    """The runs' .pt files: their bytes, and each fine-tune's last.pt summed up against its
    best.pt (epoch, keys, whether every tensor is equal)."""
    pts = sorted((out / RUNS).glob("*/*.pt"))
    last = {}
    for f in (out / RUNS).glob(f"ft-*/{LAST}"):
        saved = torch.load(f, map_location="cpu", weights_only=True)
        best = torch.load(f.with_name(BEST), map_location="cpu", weights_only=True)["model"]
        same = saved["model"].keys() == best.keys() and all(
            torch.equal(v, best[k]) for k, v in saved["model"].items()
        )
        last[f.parent.name] = {"keys": sorted(saved), "epoch": saved["epoch"], "same": same}
    return {
        "pt_files": [p.relative_to(out).as_posix() for p in pts],
        "pt_bytes": sum(p.stat().st_size for p in pts),
        "last": last,
    }


def _tables(out: Path) -> dict[str, Any]:
    """The results, every report table and report.md's lines, without the runs' status.

    The status (plan.json, shown in the runs table) says what the command that built the
    report did with each run: ``done`` when it trained the run, ``reused`` when it found it
    finished; a rerun reports the same runs as ``reused``. Nothing else is masked: report.md
    holds no time stamp or path (provenance is in the HTML page only), and a reused run keeps
    the seconds it took when it ran.
    """
    files = [out / RESULTS, *sorted((out / "report").glob("*.csv"))]
    tables: dict[str, Any] = {
        f.name: [{k: v for k, v in row.items() if k != "status"} for row in read_csv(f)]
        for f in files
    }
    md = (out / "report" / "report.md").read_text(encoding="utf-8").splitlines()
    run_row = re.compile(r"\| (pt|ft|pr)-[0-9a-f]{12} \|")  # a row of the runs table
    tables["report.md"] = [
        re.sub(r"\| (done|reused) \|", "| <status> |", line) if run_row.match(line) else line
        for line in md
    ]
    return tables


@pytest.fixture(scope="module")
def slurm_bench(tmp_path_factory, tiny_database):
    """The tiny matrix run through the Slurm executor on submitit's local backend, keeping
    every checkpoint it may (keep_checkpoints=last); a snapshot of its folder right after."""
    out, recipe = _new_bench(tmp_path_factory.mktemp("slurm"), tiny_database)
    rc = main(_bench_args(out, recipe, *SUBMITIT_LOCAL, "--set", "keep_checkpoints=last"))
    return {
        "out": out,
        "recipe": recipe,
        "rc": rc,
        "claims": _claims(out),
        **_weights(out),
        "tables": _tables(out),
    }


def test_slurm_executor_runs_each_run_once_as_a_job(slurm_bench):
    out, claims = slurm_bench["out"], slurm_bench["claims"]
    assert slurm_bench["rc"] == 0
    assert len(claims) == 3  # one pretraining, fine-tunes from random init and from SimCLR
    assert all(len(c) == 1 for c in claims.values()), claims
    assert all((out / RUNS / rid / DONE).is_file() for rid in claims)
    assert not list((out / RUNS).glob(f"*/{LOCK}")), "a finished run releases its lock"
    job_ids = {c[0]["job_id"] for c in claims.values()}
    assert len(job_ids) == 3 and None not in job_ids, "each run ran in a job of its own"
    assert {f"{j}_0_result.pkl" for j in job_ids} <= {p.name for p in (out / "logs").iterdir()}
    pretrain = next(rid for rid in claims if rid.startswith("pt-"))
    pretrain_done = (out / RUNS / pretrain / DONE).stat().st_mtime
    for rid in claims:  # the fine-tuning wave starts once pretraining is done
        if rid.startswith("ft-"):
            assert (out / RUNS / rid / "config.yaml").stat().st_mtime >= pretrain_done
    assert len(slurm_bench["tables"][RESULTS]) > 0


def test_keep_checkpoints_last_keeps_the_last_epochs_weights(slurm_bench):
    """last: best.pt and last.pt of each fine-tune, encoder.pt of pretraining, no resume state;
    last.pt is the last epoch's weights alone, which after one epoch are best.pt's."""
    fine_tunes = [r for r in slurm_bench["claims"] if r.startswith("ft-")]
    assert sorted(slurm_bench["pt_files"]) == sorted(
        [f"runs/{r}/{f}" for r in fine_tunes for f in (BEST, LAST)]
        + [f"runs/{r}/{ENCODER}" for r in slurm_bench["claims"] if r.startswith("pt-")]
    )
    assert slurm_bench["last"] == {
        r: {"keys": ["epoch", "model"], "epoch": 0, "same": True} for r in fine_tunes
    }


@pytest.fixture(scope="module")
def kept_best(slurm_bench):
    """The same command rerun with keep_checkpoints=best: nothing to train, last.pt pruned."""
    out = slurm_bench["out"]
    args = _bench_args(out, slurm_bench["recipe"], *SUBMITIT_LOCAL)
    rc = main([*args, "--set", "keep_checkpoints=best"])
    return {"rc": rc, "claims": _claims(out), **_weights(out), "tables": _tables(out)}


def test_keep_checkpoints_best_keeps_best_pt_alone(slurm_bench, kept_best):
    assert kept_best["rc"] == 0
    assert kept_best["claims"] == slurm_bench["claims"], "a rerun trains no finished run"
    assert kept_best["pt_files"] == [p for p in slurm_bench["pt_files"] if not p.endswith(LAST)]
    assert kept_best["tables"] == slurm_bench["tables"]


@pytest.fixture(scope="module")
def pruned(slurm_bench, kept_best):
    """The same command rerun with keep_checkpoints=none (the default), after the rerun that
    kept best.pt: nothing to train, weights pruned."""
    out = slurm_bench["out"]
    rc = main(_bench_args(out, slurm_bench["recipe"], *SUBMITIT_LOCAL))
    return {"rc": rc, "claims": _claims(out), **_weights(out), "tables": _tables(out)}


def test_keep_checkpoints_none_prunes_fine_tunes_and_leaves_the_report_unchanged(
    slurm_bench, pruned
):
    assert pruned["rc"] == 0
    assert pruned["claims"] == slurm_bench["claims"], "a rerun trains no finished run"
    fine_tunes = [r for r in pruned["claims"] if r.startswith("ft-")]
    assert len(fine_tunes) == 2
    assert all((slurm_bench["out"] / RUNS / r / DONE).is_file() for r in fine_tunes)
    assert not list((slurm_bench["out"] / RUNS).glob("ft-*/*.pt"))
    assert [p for p in pruned["pt_files"] if p.startswith("runs/ft-")] == []
    assert [p.rsplit("/", 1)[1] for p in pruned["pt_files"]] == ["encoder.pt"]
    assert pruned["tables"] == slurm_bench["tables"]


def test_report_of_an_unfinished_benchmark_holds_what_finished_and_names_the_rest(
    slurm_bench, pruned, tmp_path, capsys
):
    """`medssl report` gathers the finished runs itself: on a copy of the finished tiny
    benchmark it rebuilds the benchmark's own report; with one fine-tune's done.json gone
    (killed after writing its results.csv) it reports the other alone and names the missing
    one at the top; with none finished it refuses, saying so."""
    out = tmp_path / slurm_bench["out"].name
    shutil.copytree(slurm_bench["out"], out, ignore=shutil.ignore_patterns("*.pt", "logs"))
    finished_md = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert main(["report", str(out)]) == 0
    assert "not finished" not in capsys.readouterr().out
    assert (out / "report" / "report.md").read_text(encoding="utf-8") == finished_md

    init_of = {r["run_id"]: r["init"] for r in read_csv(out / RESULTS)}
    victim, kept = sorted(init_of)
    (out / RUNS / victim / DONE).unlink()
    assert main(["report", str(out)]) == 0
    note = f"1 of 3 planned runs not finished (1 finetune): {victim}."
    assert note in capsys.readouterr().out
    md = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert md.index(note) < md.index("## Summary"), "the note stands at the top"
    assert note in (out / "report" / "report.html").read_text(encoding="utf-8")
    assert {r["run_id"] for r in read_csv(out / RESULTS)} == {kept}
    summary = read_csv(out / "report" / "run_metrics_summary.csv")
    assert {r["init"] for r in summary} == {init_of[kept]}

    (out / RUNS / kept / DONE).unlink()
    assert main(["report", str(out)]) == 2
    assert "no fine-tuning or probe run of this benchmark has finished yet (2 of 3" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "keep, kind, left",
    [
        ("last", "finetune", {BEST, LAST}),
        ("best", "finetune", {BEST}),
        ("none", "finetune", set()),
        ("none", "pretrain", {BEST, ENCODER}),
    ],
)
def test_prune_of_a_run_killed_before_its_cleanup(tmp_path, keep, kind, left):
    """done.json written, then killed: the rerun's prune leaves what the setting keeps, the
    last epoch's weights taken from the resume state for last."""
    from medssl.engine.checkpoint import save_checkpoint
    from medssl.tasks.benchmark import _prune

    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    save_checkpoint(tmp_path / "checkpoint.pt", {"model": weights, "epoch": 4, "optimizer": {}})
    torch.save({"model": {"w": torch.zeros(2, 3)}, "epoch": 1}, tmp_path / BEST)
    if kind == "pretrain":
        torch.save(weights, tmp_path / ENCODER)
    _prune(tmp_path, kind, keep)
    assert {p.name for p in tmp_path.glob("*.pt")} == left
    if LAST in left:
        last = torch.load(tmp_path / LAST, weights_only=True)
        assert last["epoch"] == 4 and torch.equal(last["model"]["w"], weights["w"])


@pytest.mark.parametrize("keep", ["last", "best", "none"])
def test_disk_estimate_is_what_keep_checkpoints_keeps(keep, request, tiny_database):
    """The plan's estimate of the finished matrix's model files against the bytes of the .pt
    files the folder holds under each setting (torch.save adds a few kB per file)."""
    from medssl.tasks.benchmark import disk_estimate

    fixture = {"last": "slurm_bench", "best": "kept_best", "none": "pruned"}[keep]
    snapshot = request.getfixturevalue(fixture)
    recipe, dbs = tiny_database
    cfg = resolve_benchmark(
        "smoke", [f"data=[{recipe}]", "methods=[simclr]", "tasks=[classification]"], 1, None
    )
    kept, _ = disk_estimate(plan_runs(cfg, {"US1": Database.load(dbs / "US1")}), keep)
    assert snapshot["pt_bytes"] == pytest.approx(kept, rel=0.01)


def test_rerun_after_a_kill_runs_only_the_interrupted_run(slurm_bench, pruned, capsys):
    """A fine-tune killed mid-run (no done.json, its dead process's lock left behind) is the
    only run the rerun through the Slurm executor (submitit's local backend) trains, in a job
    that takes the stale lock over; the finished ones are reused, none submitted again."""
    out = slurm_bench["out"]
    victim = next(r for r in pruned["claims"] if r.startswith("ft-"))
    run_dir = out / RUNS / victim
    (run_dir / DONE).unlink()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    holder = runlock.this_holder()
    stale = {**holder.__dict__, "pid": int(dead.stdout), "job_id": "4242"}
    (run_dir / LOCK).write_text(json.dumps(stale), encoding="utf-8")
    capsys.readouterr()
    jobs_before = set((out / "logs").glob("*_result.pkl"))
    assert main(_bench_args(out, slurm_bench["recipe"], *SUBMITIT_LOCAL)) == 0
    printed = capsys.readouterr().out
    claims = _claims(out)
    assert {r: len(c) for r, c in claims.items()} == {
        r: 2 if r == victim else 1 for r in pruned["claims"]
    }
    rerun = claims[victim][1]
    assert rerun["took_over"]["job_id"] == "4242"
    assert rerun["job_id"] not in (None, "4242") and rerun["pid"] != os.getpid(), "ran as a job"
    new_jobs = set((out / "logs").glob("*_result.pkl")) - jobs_before
    assert [p.name for p in new_jobs] == [f"{rerun['job_id']}_0_result.pkl"], "one job submitted"
    assert "1 stale lock(s) taken over" in printed
    assert (run_dir / DONE).is_file() and not (run_dir / LOCK).exists()
    assert "not finished" not in (out / "report" / "report.md").read_text(encoding="utf-8")
    again = _tables(out)
    assert {(r["run_id"], r["split"], r["metric"]) for r in again[RESULTS]} == {
        (r["run_id"], r["split"], r["metric"]) for r in pruned["tables"][RESULTS]
    }


def test_dry_run_lists_the_jobs_and_submits_nothing(tmp_path, tiny_database, capsys, monkeypatch):
    import submitit

    def refuse(*a, **k):
        raise AssertionError("--dry-run must not create a submitit executor")

    monkeypatch.setattr(submitit, "AutoExecutor", refuse)
    out, recipe = _new_bench(tmp_path, tiny_database)
    args = _bench_args(out, recipe, "--executor", "slurm", "--dry-run")
    args += ["--set", "executor.partition=gpu", "--set", "executor.mem_gb=16"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "nothing submitted" in printed and "slurm gpu, 1 GPU" in printed and "16 GB" in printed
    assert "estimated disk for model files" in printed
    assert printed.index("pretrain wave") < printed.index("finetune wave")
    assert printed.count("  pt-") == 1 and printed.count("  ft-") == 2
    assert not (out / RUNS).exists() and not (out / "logs").exists()


def test_executor_and_checkpoint_settings_leave_run_ids_alone(tiny_database):
    recipe, dbs = tiny_database
    databases = {"US1": Database.load(dbs / "US1")}
    base = [f"data=[{recipe}]", "methods=[simclr]", "tasks=[classification]"]
    ids = [r.run_id for r in plan_runs(resolve_benchmark("smoke", base, 1, None), databases)]
    other = base + [
        "executor.name=slurm", "executor.partition=gpu", "executor.gpus_per_job=2",
        "executor.cpus_per_job=8", "executor.timeout_min=30", "keep_checkpoints=last",
        "pretrain.trainer.checkpoint_every_s=0", "finetune.trainer.checkpoint_every_s=600",
    ]  # fmt: skip
    assert [
        r.run_id for r in plan_runs(resolve_benchmark("smoke", other, 1, None), databases)
    ] == ids


def test_slurm_settings_become_the_sbatch_lines(tmp_path, monkeypatch):
    from medssl.tasks.executors import ExecutorConfig, SlurmExecutor

    cfg = ExecutorConfig(name="slurm", partition="gpu", cpus_per_job=8, mem_gb=16)
    cfg.slurm = {"account": "mylab"}
    executor = SlurmExecutor(cfg, tmp_path, workers=1, device="auto")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="executor.cluster=local"):
        executor.submitit_executor()  # no Slurm on this machine: an error that says what to do
    srun = tmp_path / "bin" / "srun"  # submitit looks for srun to believe it is on a cluster
    srun.parent.mkdir()
    srun.write_text("#!/bin/sh\n", encoding="utf-8")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", str(srun.parent))
    text = executor.submitit_executor()._executor._make_submission_file_text("cmd", "uid")
    for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=16GB",
                 "--time=240", "--account=mylab", f"--output={tmp_path / 'logs'}/"):  # fmt: skip
        assert f"#SBATCH {line}" in text


def test_a_failed_job_fails_the_wave_after_the_others_naming_its_run(tmp_path):
    import math

    from medssl.errors import MedsslError
    from medssl.tasks.executors import ExecutorConfig, SlurmExecutor

    cfg = ExecutorConfig(name="slurm", cluster="local", gpus_per_job=0)
    got: dict[int, float] = {}
    executor = SlurmExecutor(cfg, tmp_path, workers=1, device="cpu")
    with pytest.raises(MedsslError, match=r"1 of 3 job\(s\) failed:\n  run b: job .*domain"):
        executor.map(math.sqrt, [(4,), (-1,), (9,)], got.__setitem__, ["run a", "run b", "run c"])
    assert got == {0: 2.0, 2: 3.0}  # the others finished and were handed back


def _wait_for_text(path: Path, text: str, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in path.read_text(encoding="utf-8"):
        assert proc.poll() is None, f"ended before {text!r}: {path.read_text(encoding='utf-8')}"
        assert time.monotonic() < deadline, f"no {text!r} in {path}"
        time.sleep(0.2)


def test_two_benchmark_commands_on_one_folder_train_each_run_once(tmp_path, tiny_database):
    """Two `medssl benchmark` processes on one --out. This test holds the pretraining run's
    lock until both have planned and are waiting for it, so that they then race for every
    run of both waves; each run is trained once (one claim by either command in its
    claims.jsonl) and both commands finish."""
    out, recipe = _new_bench(tmp_path, tiny_database)
    args = _bench_args(out, recipe, "--executor", "local", "--set", "workers=1")
    args += ["--set", "executor.poll_s=0.2"]
    assert main([*args, "--dry-run"]) == 0  # plan.json names the runs
    run_ids = [r["run_id"] for r in json.loads((out / "plan.json").read_text(encoding="utf-8"))]
    pretrain = next(r for r in run_ids if r.startswith("pt-"))
    gate = runlock.claim(out / RUNS / pretrain)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    logs = [tmp_path / f"bench{i}.log" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "medssl.cli.main", *args],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for log in logs
    ]
    try:
        for proc, log in zip(procs, logs, strict=True):
            _wait_for_text(log, "being trained by another executor: waiting", proc, 300)
        gate.release()
        for proc in procs:
            proc.wait(600)
    finally:
        gate.release()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    printed = [log.read_text(encoding="utf-8") for log in logs]
    assert [p.returncode for p in procs] == [0, 0], printed
    pids = {p.pid for p in procs}
    claims = _claims(out)
    assert sorted(claims) == sorted(run_ids)
    trained = {r: [c["pid"] for c in cs if c["pid"] in pids] for r, cs in claims.items()}
    assert all(len(t) == 1 for t in trained.values()), trained
    assert [c["pid"] for c in claims[pretrain]][0] == os.getpid(), "the gate's claim first"
    assert all((out / RUNS / r / DONE).is_file() for r in run_ids)
    assert not list((out / RUNS).glob(f"*/{LOCK}"))
    assert (out / "report" / "report.md").is_file()
    assert len({r["run_id"] for r in read_csv(out / RESULTS)}) == 2


def _race(run_dir: str, barrier, results) -> None:
    barrier.wait()
    got = runlock.claim(run_dir)
    results.put(got is not None)
    barrier.wait()  # hold the claim until the other has tried
    if got is not None:
        got.release()


def test_lock_admits_one_of_two_concurrent_claimers(tmp_path):
    ctx = mp.get_context("fork")
    for round_ in range(5):
        run_dir = tmp_path / f"run{round_}"
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_race, args=(str(run_dir), barrier, results)) for _ in "ab"]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        assert sorted(results.get(timeout=5) for _ in procs) == [False, True]
        assert len(runlock.claims(run_dir)) == 1
        assert not (run_dir / LOCK).exists(), "the winner released its lock"


def test_lock_of_a_killed_holder_is_taken_over(tmp_path):
    code = (
        "import sys, time; from medssl.tasks.runlock import claim; "
        "c = claim(sys.argv[1]); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"held"
        assert runlock.lock_state(tmp_path) == "held"
        assert runlock.claim(tmp_path) is None
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert runlock.lock_state(tmp_path) == "stale"
    got = runlock.claim(tmp_path)
    assert got is not None and got.took_over.pid == proc.pid
    got.release()
    first, second = runlock.claims(tmp_path)
    assert first["pid"] == proc.pid and second["took_over"]["pid"] == proc.pid


def test_lock_of_a_reused_pid_is_stale(tmp_path):
    """The holder died and a new process got its pid: the start time tells them apart."""
    me = runlock.this_holder()
    assert me.pid_start is not None  # Linux
    ghost = {**me.__dict__, "pid_start": me.pid_start - 1}
    (tmp_path / LOCK).write_text(json.dumps(ghost), encoding="utf-8")
    assert runlock.lock_state(tmp_path) == "stale"
    (tmp_path / LOCK).write_text(json.dumps(me.__dict__), encoding="utf-8")
    assert runlock.lock_state(tmp_path) == "held"


def test_lock_from_another_host_is_stale_once_its_heartbeat_stops(tmp_path):
    other = runlock.Holder("node-elsewhere", 1, "77_3", "2026-01-01T00:00:00+00:00", "t0")
    (tmp_path / LOCK).write_text(json.dumps(other.__dict__), encoding="utf-8")
    assert runlock.lock_state(tmp_path, stale_after_s=60) == "held"  # pid 1 elsewhere: unknown
    old = time.time() - 120
    os.utime(tmp_path / LOCK, (old, old))
    assert runlock.lock_state(tmp_path, stale_after_s=60) == "stale"
    got = runlock.claim(tmp_path, stale_after_s=60)
    assert got is not None and got.took_over.job_id == "77_3"
    assert got.holder.host == socket.gethostname()
    try:  # the holder's heartbeat keeps its own lock fresh
        before = (tmp_path / LOCK).stat().st_mtime_ns
        os.utime(tmp_path / LOCK, (old, old))
        got._stop.set()
        got._thread.join()
        got._stop.clear()
        got.start_heartbeat(0.02)
        deadline = time.monotonic() + 10
        while (tmp_path / LOCK).stat().st_mtime_ns <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert runlock.lock_state(tmp_path, stale_after_s=60) == "held"
    finally:
        got.release()
    assert not (tmp_path / LOCK).exists()
