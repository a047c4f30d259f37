"""`medssl export RUN`: a pretraining run's encoder as safetensors and torchvision .pt, with a
model card (see medssl.reporting.export)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medssl.cli.options import out_folder


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a pretraining run's encoder as safetensors and .pt with a model card",
        description=(
            "Write the encoder of a finished pretraining run (the --out of `medssl pretrain`, "
            "or a benchmark's runs/pt-<id>/) as encoder.safetensors and encoder.pt (torchvision "
            "ResNet-18 keys, 1-channel conv1, no fc) with a model card, README.md: database and "
            "sources, method, settings, steps, health read and, inside a benchmark folder, the "
            "benchmark's results for this encoder. The files load into medssl.load_encoder, "
            "torchvision, timm (resnet18, in_chans=1, num_classes=0) and "
            "segmentation_models_pytorch's ResNet-18 encoder."
        ),
    )
    p.add_argument("run", type=Path, help="pretraining run folder")
    p.add_argument(
        "--out", type=out_folder, default=None, help="folder to write (default: RUN/export)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from medssl.reporting.export import export_encoder

    out = export_encoder(args.run, args.out, overwrite=args.overwrite)
    print(f"exported the encoder of {args.run} to {out}: " + ", ".join(sorted(
        p.name for p in out.iterdir())))  # fmt: skip
    return 0
