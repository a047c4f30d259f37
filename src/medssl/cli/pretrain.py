"""`medssl pretrain`: self-supervised pretraining of the 1-channel ResNet-18 encoder."""

from __future__ import annotations

import argparse
from pathlib import Path

from medssl import presets
from medssl.cli.options import add_device, add_overrides, check_one_budget, out_folder
from medssl.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pretrain an encoder with a self-supervised method (SimCLR, MoCo v2, BYOL, ...)",
        description=(
            "Pretrain a 1-channel ResNet-18 on a database's pretraining pool (pretrain_pool: the "
            "pretraining images, or with the finetuning train split's images) and write "
            "config.yaml, random_init.json, metrics.csv, checkpoint.pt, encoder.pt, "
            "loss_curve.png, tsne.png, health.png and done.json to --out. Settings: the preset (default: medssl; thesis: §5.2), then --set "
            "key=value (e.g. --set optimizer.lr=0.01 --set method_options.temperature=0.1)."
        ),
    )
    p.add_argument(
        "--method",
        required=True,
        help="SSL method, a name registered in medssl.ssl (an unknown name lists them)",
    )
    p.add_argument("--database", required=True, help="database folder (from `medssl data build`)")
    p.add_argument("--out", required=True, type=out_folder, help="run folder to write")
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="budget in epochs instead of the preset's (medssl: a budget in optimizer steps, "
        "--set steps=N; thesis: 100 epochs)",
    )
    add_overrides(p, "optimizer.lr=1e-3")
    p.add_argument(
        "--preset",
        default="medssl",
        help=f"{' | '.join(presets.preset_names('pretrain'))}, or a YAML path (default: "
        "medssl; thesis: the thesis's §5.2)",
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    add_device(p)
    p.set_defaults(func=_run)


def check_args(args: argparse.Namespace) -> None:
    """Errors that need no torch, before the training stack is imported (seconds saved)."""
    from medssl.data.database import check_database_folder

    check_database_folder(Path(args.database), flag="--database")
    presets.preset_path("pretrain", args.preset)
    if args.epochs is not None and args.epochs < 1:
        raise ConfigError(f"--epochs {args.epochs}: expected >= 1")
    check_one_budget(args.epochs, args.overrides)


def _run(args: argparse.Namespace) -> int:
    check_args(args)
    from medssl.artifacts import read_json
    from medssl.runfiles import DONE
    from medssl.tasks.pretrain import run_pretraining

    out = run_pretraining(
        args.database,
        args.out,
        method=args.method,
        preset=args.preset,
        overrides=args.overrides,
        epochs=args.epochs,
        device=args.device,
        resume=args.resume,
    )
    done = read_json(out / DONE)
    final = done.get("final", {})
    shown = ", ".join(
        f"{k}={final[k]:.4g}"
        for k in ("train_loss", "val_loss", "knn_bacc", "knn_gain")
        if isinstance(final.get(k), (int, float))
    )
    print(
        f"pretrained {done['method']} for {done['steps']} steps ({done['epochs_run']} epochs of "
        f"{done['pool']['images']} images, pool {done['pool']['pool']}) on {done['device']}: "
        f"{shown}; wrote {out}"
    )
    if "health" in done:
        print(done["health"]["message"])
    return 0
