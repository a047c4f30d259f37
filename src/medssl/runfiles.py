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
LAST = "last.pt"  # weights of the last epoch, kept from checkpoint.pt on request (keep_last)
DONE = "done.json"  # written last: the run finished
LOCK = "lock.json"  # benchmark runs: who is training it now (tasks.runlock)
CLAIMS = "claims.jsonl"  # benchmark runs: one line per execution (tasks.runlock)
LOSS_CURVE = "loss_curve.png"  # loss per epoch, train and validation (thesis fig. A.1)
TENSORBOARD = "tensorboard"  # TensorBoard event files, in a subfolder named for the run

# pretraining runs
ENCODER = "encoder.pt"  # torchvision ResNet-18 state dict without fc (models.encoder)
RANDOM_INIT = "random_init.json"  # the health monitor's reading of the initial encoder
HEALTH = "health.png"
TSNE = "tsne.png"  # t-SNE of the encoder's features of the finetuning images

# `medssl export RUN` (into RUN/export/ by default)
EXPORT = "export"
EXPORT_SAFETENSORS = "encoder.safetensors"  # the encoder.pt's tensors as safetensors
MODEL_CARD = "README.md"  # the model card (the name the Hugging Face Hub shows a card by)

# fine-tuning runs
RESULTS = "results.csv"  # flat records, RESULT_COLUMNS
CLASSIFICATION_CURVES = "classification_curves.png"  # validation metrics per epoch
SEGMENTATION_CURVES = "segmentation_curves.png"


def predictions_file(split: str) -> str:
    return f"predictions_{split}.npz"


def per_image_file(split: str) -> str:
    return f"per_image_{split}.csv"


def roc_pr_figure(split: str) -> str:
    return f"roc_pr_{split}.png"


def confusion_figure(split: str) -> str:
    return f"confusion_{split}.png"


def examples_figure(split: str, score: str) -> str:
    """Best, middle and worst images of a split by a per-image score (``dice``)."""
    return f"examples_{split}_{score}.png"


RESULT_COLUMNS = ("run_id", "task", "database", "init", "seed", "fold", "split", "metric", "value")
"""Columns of a fine-tuning (or probe) run's results.csv and the first of a benchmark's."""

BENCHMARK_RESULT_COLUMNS = (*RESULT_COLUMNS, "evaluation", "fraction", "pretrain_data")
"""Columns of a benchmark's results.csv (all runs concatenated): each record also says how
the encoder was evaluated (``finetune``, or a probe: medssl.tasks.evaluations), on which
label fraction of the train split, and which database the encoder was pretrained on (empty
for random init; another database than the record's for a ``transfer`` run). A results.csv
without them holds fine-tuning on the whole train split from encoders pretrained on the
record's own database (:data:`RESULT_DEFAULTS`)."""

RESULT_DEFAULTS = {"evaluation": "finetune", "fraction": 1.0, "pretrain_data": ""}

# benchmark folders
BENCHMARK_CONFIG = "benchmark.json"
PLAN = "plan.json"
PROVENANCE = "provenance.json"
RUNS = "runs"  # one folder per run, named by its run id
DATABASES = "databases"
FEATURES = "features"  # frozen-encoder features, one .npy per encoder and database (probes)
REPORT = "report"
LOGS = "logs"  # the Slurm executor's job files and logs (submitit)

# a benchmark's REPORT folder (reporting.report), beside its tables (table_*.csv/.md/.tex)
REPORT_HTML = "report.html"
REPORT_MD = "report.md"
STATISTICS = "statistics.json"
RUN_METRICS_SUMMARY = "run_metrics_summary.csv"
FOREST_PLOT = "forest_plot.png"

# `medssl bench`
BENCH_RESULT = "bench.json"  # in ~/.cache/medssl/: what it measured (tasks.estimates reads it)
