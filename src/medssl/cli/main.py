"""The ``medssl`` command. Each verb lives in its own module exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from medssl import __version__
from medssl.errors import MedsslError

VERB_MODULES = ("data", "pretrain", "finetune", "benchmark", "report", "export", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medssl",
        description="Benchmark self-supervised contrastive pretraining for medical imaging.",
    )
    parser.add_argument("--version", action="version", version=f"medssl {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in VERB_MODULES:
        importlib.import_module(f"medssl.cli.{name}").register(sub)
    return parser


RERUN = "finished work is kept; rerun the same command to resume"
RESUME = {
    verb: "the last saved epoch is kept; rerun the same command with --resume to continue "
    "from it (without --resume the run folder is refused)"
    for verb in ("pretrain", "finetune")
}
"""What an interrupted verb says to do (a standalone run resumes only with ``--resume``)."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MedsslError as e:
        print(f"medssl {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"medssl {args.verb}: interrupted; {RESUME.get(args.verb, RERUN)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
