"""`medssl bench` (alias `medssl speed`): pretraining throughput against the model's ceiling and a
lightly reference; a speed test, not the benchmark of methods (`medssl benchmark`)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        aliases=["speed"],
        help="throughput of the training pipeline (views/s), not the benchmark of methods: "
        "see `medssl benchmark`",
        description=(
            "A speed test of the training pipeline, not the benchmark of methods (that is "
            "`medssl benchmark`, which trains and compares them); `medssl speed` is the same "
            "command. For each SSL method, train the same model with the same step on (a) views "
            "already on the device (the ceiling), (b) medssl's pretraining stream (database on "
            "the device, batched augmentation) and (c) lightly's PIL transforms in a DataLoader "
            "with worker processes; print views/s, the ratios b/a and b/c, peak memory, the "
            "fine-tuning step rates, channels_last and torch.compile against the default "
            "step, the time to a useful encoder (a short pretraining run whose health read "
            "first beats random init by 2 SE) and the thesis protocol's estimated duration on "
            "this device. The result is saved to ~/.cache/medssl/bench.json (its `throughput` feeds "
            "the duration estimate of `medssl benchmark`)."
        ),
    )
    p.add_argument(
        "--method", default="simclr", help="SSL method, or `all` for every one (default: simclr)"
    )
    p.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: auto"
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--steps", type=int, default=20, help="timed steps per path (default: 20)")
    p.add_argument(
        "--warmup", type=int, default=5, help="untimed steps before each path (default: 5)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="time the paths in this many alternating rounds and report each one's median "
        "(default: 3)",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="images per step (default: preset, 64)"
    )
    p.add_argument(
        "--precision",
        choices=("32-true", "bf16-mixed"),
        default=None,
        help="default: bf16-mixed on GPUs with bf16 units, else 32-true",
    )
    p.add_argument(
        "--channels-last", action="store_true", help="channels_last model weights and views"
    )
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the model (opt-in; slow to start)"
    )
    p.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="DataLoader workers of the reference path (default: one per CPU)",
    )
    p.add_argument(
        "--database", default=None, help="a built database folder (default: synthetic, in memory)"
    )
    p.add_argument(
        "--images",
        type=int,
        default=None,
        help="pretraining images of the synthetic database (default: 1240, thesis-sized)",
    )
    p.add_argument(
        "--finetune-images",
        type=int,
        default=None,
        help="finetuning train images of the synthetic database, and a quarter as many "
        "validation images (default: 240, thesis-sized)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=3,
        help="fine-tuning epochs per run in the comparison with a plain loop that does the "
        "same job; an epoch is timed as a run of this many epochs less a 1-epoch run (>= 2; "
        "default: 3)",
    )
    p.add_argument(
        "--no-finetune",
        action="store_true",
        help="skip fine-tuning: its step rates (and so the thesis estimate) and its epochs",
    )
    p.add_argument(
        "--no-variants",
        action="store_true",
        help="skip timing channels_last and torch.compile against the default step",
    )
    p.add_argument(
        "--useful-steps",
        type=int,
        default=None,
        help="pretraining steps of the time-to-a-useful-encoder run (medssl preset, on "
        "--database or on in-memory ultrasound phantoms); 0 skips it (default: 1000)",
    )
    p.add_argument(
        "--useful-every",
        type=int,
        default=None,
        help="steps between its health reads (default: 100)",
    )
    p.add_argument("--no-save", action="store_true", help="do not write ~/.cache/medssl/bench.json")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from medssl.bench import BenchConfig, run_bench, save_result
    from medssl.bench.report import format_result
    from medssl.bench.run import resolve_methods
    from medssl.bench.synthetic import FINETUNE_TRAIN_IMAGES, PRETRAIN_IMAGES
    from medssl.bench.useful import USEFUL_EVERY, USEFUL_STEPS
    from medssl.bench.variants import VARIANTS
    from medssl.errors import ConfigError

    for flag, value in (("--images", args.images), ("--finetune-images", args.finetune_images)):
        if args.database and value is not None:
            raise ConfigError(f"{flag} sizes the synthetic database; drop it when using --database")
    cfg = BenchConfig(
        methods=resolve_methods(args.method),
        device=args.device,
        precision=args.precision,
        channels_last=args.channels_last,
        compile=args.compile,
        batch_size=args.batch_size,
        warmup=args.warmup,
        steps=args.steps,
        rounds=args.rounds,
        num_workers=args.num_workers,
        database=args.database,
        images=args.images or PRETRAIN_IMAGES,
        finetune_images=args.finetune_images or FINETUNE_TRAIN_IMAGES,
        finetune=not args.no_finetune,
        finetune_epochs=args.epochs,
        variants=() if args.no_variants else VARIANTS,
        useful_steps=USEFUL_STEPS if args.useful_steps is None else args.useful_steps,
        useful_every=args.useful_every or USEFUL_EVERY,
    )
    result = run_bench(
        cfg, progress=lambda line: print(f"bench: {line}", file=sys.stderr, flush=True)
    )
    saved = None if args.no_save else save_result(result)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_result(result))
        if saved is not None:
            print(f"saved {saved}")
    return 0
