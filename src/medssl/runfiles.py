"""The names of the files runs and benchmarks write, and the columns of their records: one
definition each, imported by the stage that writes a file and by every stage that reads it.

A run folder (``medssl pretrain`` / ``medssl finetune``, or ``OUT/runs/<id>/`` of a
benchmark) and a benchmark folder are described in docs/architecture.md.
"""

from __future__ import annotations

# every run
CONFIG = "config.yaml"  # the resolved configuration, written first
METRICS = "metrics.csv"  # one row per epoch (trainer)
CHECKPOINT = "checkpoint.pt"  # resume state of the last epoch (trainer); removed when done
BEST = "best.pt"  # weights of the best monitored epoch (trainer)
DONE = "done.json"  # written last: the run finished
LOCK = "lock.json"  # benchmark runs: who is training it now (tasks.runlock)
CLAIMS = "claims.jsonl"  # benchmark runs: one line per execution (tasks.runlock)

# pretraining runs
ENCODER = "encoder.pt"  # torchvision ResNet-18 state dict without fc (models.encoder)
RANDOM_INIT = "random_init.json"  # the health monitor's reading of the initial encoder
HEALTH = "health.png"

# fine-tuning runs
RESULTS = "results.csv"  # flat records, RESULT_COLUMNS


def predictions_file(split: str) -> str:
    return f"predictions_{split}.npz"


def per_image_file(split: str) -> str:
    return f"per_image_{split}.csv"


RESULT_COLUMNS = ("run_id", "task", "database", "init", "seed", "fold", "split", "metric", "value")
"""Columns of a fine-tuning run's results.csv and of a benchmark's (all runs concatenated)."""

# benchmark folders
BENCHMARK_CONFIG = "benchmark.json"
PLAN = "plan.json"
PROVENANCE = "provenance.json"
RUNS = "runs"  # one folder per run, named by its run id
DATABASES = "databases"
REPORT = "report"
LOGS = "logs"  # the Slurm executor's job files and logs (submitit)
