"""`medssl benchmark`: the whole matrix (9 encoders, 24 fine-tunes per seed), statistics, report."""

from __future__ import annotations

import argparse

from medssl import presets
from medssl.cli.options import add_device, add_overrides, add_roots, out_folder, parse_roots


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="the benchmark of methods: pretraining/fine-tuning matrix, statistics, report "
        "(not a speed test: see `medssl bench`)",
        description="The benchmark of methods (not a speed test: that is `medssl bench`). Plan "
        "and run every pretraining (databases x the preset's SSL methods x seeds) and "
        "fine-tuning run (classification and segmentation from every encoder, from random init "
        "and from weights you bring: --set 'inits=[random, imagenet=PATH]'), reuse finished "
        "runs, resume interrupted ones, then write results.csv and a self-contained HTML "
        "report.",
    )
    p.add_argument(
        "--preset",
        required=True,
        help=f"{' | '.join(presets.preset_names('benchmark'))}, or a YAML file",
    )
    p.add_argument(
        "--out",
        required=True,
        type=out_folder,
        help="benchmark folder (rerun with the same --out to resume)",
    )
    p.add_argument(
        "--seeds", type=int, default=None, help="number of seeds (repeats), overrides the preset"
    )
    p.add_argument(
        "--folds",
        type=int,
        default=None,
        help="repeated stratified patient-grouped K-fold CV instead of one split",
    )
    add_roots(p)
    add_overrides(p, "methods=[simclr] --set pretrain.trainer.epochs=5")
    add_device(p)
    p.add_argument(
        "--executor",
        choices=("local", "slurm"),
        default=None,
        help="where runs execute: local (this machine's worker processes; the default) or "
        "slurm (one job per run through submitit, logs in OUT/logs; settings with --set "
        "executor.partition=gpu --set executor.gpus_per_job=1 ...)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show the plan, the estimated duration and disk use and the jobs (run ids, kind, "
        "resources), and per comparison the seeds that detect --set target_effect=X (variance "
        "components from --set pilot=FOLDER, or this folder's report); run and submit nothing",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from medssl.runfiles import REPORT, REPORT_HTML
    from medssl.tasks.benchmark import resolve_benchmark, run_benchmark

    overrides = list(args.overrides) + ([f"device={args.device}"] if args.device else [])
    if args.executor:
        overrides.append(f"executor.name={args.executor}")
    cfg = resolve_benchmark(args.preset, overrides, args.seeds, args.folds)
    out = run_benchmark(
        cfg,
        args.out,
        roots=parse_roots(args.root),
        progress=not args.no_progress,
        dry_run=args.dry_run,
    )
    if not args.dry_run:
        print(f"report: {out / REPORT / REPORT_HTML}")
    return 0
