"""`medssl finetune`: fine-tune a (pretrained or random) encoder for classification or
segmentation and evaluate it on train, validation and test (see medssl.tasks.finetune)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medssl import presets
from medssl.cli.options import add_device, add_overrides, check_one_budget, out_folder
from medssl.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune for classification or U-Net segmentation and evaluate",
        description=(
            "Train on the database's finetuning train split, select the checkpoint by validation "
            "(MCC / Dice), evaluate on train, val and test; writes config.yaml, metrics.csv, "
            "best.pt, predictions_<split>.npz, results.csv, figures and done.json to --out and "
            "prints the final metrics."
        ),
    )
    p.add_argument("--task", required=True, choices=("classification", "segmentation"))
    p.add_argument("--database", required=True, help="database folder (from `medssl data build`)")
    p.add_argument(
        "--init",
        default="random",
        help="`random`, or weights you bring: an encoder.pt, a torchvision or timm ResNet-18 "
        "state dict (.pt/.pth or .safetensors; a 3-channel conv1 is summed to 1 channel, fc "
        "dropped), a pretraining or fine-tuning run folder",
    )
    p.add_argument("--out", required=True, type=out_folder, help="run folder to write")
    p.add_argument(
        "--preset",
        default="medssl",
        help=f"{' | '.join(presets.preset_names('finetune'))}, or a YAML path (default: "
        "medssl; thesis: §5.3)",
    )
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    p.add_argument(
        "--freeze-encoder", action="store_true", help="linear probe: train only the head/decoder"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--fold-label",
        dest="fold",
        type=int,
        default=None,
        help="a fold number to record in results.csv (it selects nothing: the split is the "
        "database's; `medssl benchmark --folds K` runs cross-validation)",
    )
    p.add_argument(
        "--run-id", default=None, help="run id in results.csv (default: task-database-init-seed)"
    )
    add_overrides(p, "optimizer.lr=1e-3")
    add_device(p)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar: one log line per epoch"
    )
    p.set_defaults(func=_run)


def check_args(args: argparse.Namespace) -> None:
    """Errors that need no torch, before the training stack is imported (seconds saved)."""
    from medssl.data.database import check_database_folder
    from medssl.models.weights import weights_file

    check_database_folder(Path(args.database), flag="--database")
    presets.preset_path("finetune", args.preset)
    if args.init != "random":
        weights_file(args.init, flag="--init")  # the file is read once torch is imported
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs {args.epochs}: expected >= 1")
    check_one_budget(args.epochs, args.overrides)


def _run(args: argparse.Namespace) -> int:
    check_args(args)
    from medssl.tasks.finetune import final_summary, run_finetune

    overrides = list(args.overrides)
    if args.epochs is not None:
        overrides.append(f"trainer.epochs={args.epochs}")
    if args.freeze_encoder:
        overrides.append("freeze_encoder=true")
    if args.device is not None:
        overrides.append(f"trainer.accelerator={args.device}")
    if args.no_progress:
        overrides += ["trainer.progress_bar=false", "trainer.epoch_log=true"]
    out = run_finetune(
        args.database,
        args.out,
        task=args.task,
        init=args.init,
        preset=args.preset,
        overrides=overrides,
        seed=args.seed,
        fold=args.fold,
        run_id=args.run_id,
        resume=args.resume,
    )
    print(final_summary(out))
    return 0
