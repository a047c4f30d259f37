"""`medssl data synth|survey|build|describe`: phantoms, what sources hold, databases, tables."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from medssl.cli.options import add_roots, out_file, out_folder, parse_roots
from medssl.data.recipe import preset_names as recipe_preset_names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data",
        help="write phantoms, build and describe databases",
        description="Write synthetic phantoms, build databases from source folders, describe them.",
    )
    verbs = p.add_subparsers(dest="data_verb", metavar="ACTION", required=True)

    s = verbs.add_parser(
        "synth",
        help="write synthetic phantoms in the real on-disk layouts",
        description="Write ultrasound- and mammography-like phantoms with lesion masks in the "
        "on-disk layouts of BUSI, BrEaST-Lesions_USG, QAMEBI/TBUD/MBUD, CBIS-DDSM, INbreast and mini-MIAS.",
    )
    s.add_argument(
        "--out", required=True, type=out_folder, help="folder to write (one subfolder per source)"
    )
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    s.add_argument(
        "--preset",
        default="demo",
        help=f"size the phantoms for this database preset: {' | '.join(recipe_preset_names())} "
        "(default: demo)",
    )
    s.add_argument(
        "--scale",
        type=float,
        default=None,
        help="image-size factor of all phantoms (default: the preset's phantom_scale, which may "
        "differ per modality; 1.0 writes mammograms thousands of pixels tall, as published)",
    )
    s.add_argument("--overwrite", action="store_true", help="replace OUT if it already exists")
    s.set_defaults(func=_synth)

    b = verbs.add_parser(
        "build",
        help="build databases (US1, MG2, USMG3, demo) from source folders",
        description="Build the databases of a preset into OUT/<NAME>. A preset that declares "
        "phantoms: true (demo, smoke) generates its own phantoms for sources without --root.",
    )
    b.add_argument(
        "--preset",
        required=True,
        help=f"{' | '.join(recipe_preset_names())}, or a recipe .yaml file",
    )
    b.add_argument(
        "--out",
        required=True,
        type=out_folder,
        help="folder that receives one database folder per recipe",
    )
    add_roots(b)
    b.add_argument("--seed", type=int, default=0, help="seed of sampling and splits")
    b.add_argument(
        "--lenient",
        action="store_true",
        help="skip bad items (counted with their reason in skipped.csv and describe) instead of stopping",
    )
    b.add_argument(
        "--fit-quotas",
        action="store_true",
        help="lower quotas the sources cannot fill to what they hold, keeping the recipe's class "
        "ratios (the quotas used are recorded in database.json); without it every shortfall is "
        "one error",
    )
    b.add_argument(
        "--available-sources",
        action="store_true",
        help="build from the sources given with --root only: the preset's other sources and "
        "their quotas are left out (recorded in database.json and describe)",
    )
    b.add_argument(
        "--balanced",
        action="store_true",
        help="replace the recipe quotas by balanced ones (rarest class and modality, same across databases)",
    )
    b.add_argument(
        "--phantoms",
        action="store_true",
        help="generate phantoms for sources without --root (any preset; a warning names them)",
    )
    b.add_argument("--overwrite", action="store_true", help="replace existing database folders")
    b.add_argument("--quiet", action="store_true", help="do not print the tables")
    b.set_defaults(func=_build)

    v = verbs.add_parser(
        "survey",
        help="count what source folders hold and write a starter recipe",
        description="Read the given sources and print, per source and class, the images each role "
        "may use (with and without masks, after removing duplicates and label conflicts), then write "
        "a starter recipe that `medssl data build --preset RECIPE.yaml` builds as written.",
    )
    add_roots(v)
    v.add_argument("--out", required=True, type=out_file, help="starter recipe to write (.yaml)")
    v.add_argument("--name", default=None, help="database name (default: the file's stem)")
    v.add_argument(
        "--finetune-share",
        type=float,
        default=0.5,
        help="share of each class's finetuning-eligible images given to finetuning (default 0.5); "
        "pretraining takes the rest",
    )
    v.add_argument(
        "--lenient", action="store_true", help="skip bad items (counted) instead of stopping"
    )
    v.add_argument("--overwrite", action="store_true", help="replace RECIPE.yaml if it exists")
    v.set_defaults(func=_survey)

    d = verbs.add_parser(
        "describe",
        help="print a database's tables (thesis tables 5.2 and 5.3)",
        description="Print a database's tables in the form of thesis tables 5.2 and 5.3.",
    )
    d.add_argument("database", type=Path, help="database folder")
    d.set_defaults(func=_describe)


def _synth(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    from medssl.data.phantoms import write_phantom_tree
    from medssl.data.recipe import check_scale, demand, describe_scale, load_preset

    preset = load_preset(args.preset)
    scale = preset.phantom_scale if args.scale is None else check_scale(args.scale, "--scale")
    counts = demand(list(preset.recipes))
    written = write_phantom_tree(
        args.out, counts, seed=args.seed, scale=scale, overwrite=args.overwrite
    )
    t = time.perf_counter() - start
    n = sum(sum(c.values()) for c in counts.values())
    print(f"{n} phantom images (scale {describe_scale(scale)}) in {t:.1f} s: {n / t:.0f} images/s")
    for name, root in sorted(written.items()):
        print(f"{name:20s} {root}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from medssl.data.build_preset import build_preset
    from medssl.data.database import Database
    from medssl.data.describe import describe

    paths = build_preset(
        args.preset,
        args.out,
        parse_roots(args.root),
        seed=args.seed,
        lenient=args.lenient,
        overwrite=args.overwrite,
        balanced=args.balanced,
        fit_quotas=args.fit_quotas,
        phantoms=True if args.phantoms else None,
        available_sources=args.available_sources,
    )
    for path in paths:
        db = Database.load(path)
        if not args.quiet:
            print(describe(db))
        conflicts = db.meta.label_conflicts["found"]
        note = ""
        if conflicts:
            left = sum(len(c.get("left_out", [])) for c in conflicts)
            note = f" ({len(conflicts)} label conflict(s)" + (
                f", {left} image(s) left out)" if left else ", kept)"
            )
        print(f"database written: {path}{note}")
    return 0


def _survey(args: argparse.Namespace) -> int:
    from medssl.data.survey import run_survey

    roots = parse_roots(args.root)
    print(
        run_survey(
            roots,
            args.out,
            name=args.name,
            finetune_share=args.finetune_share,
            lenient=args.lenient,
            overwrite=args.overwrite,
        ),
        end="",
    )
    return 0


def _describe(args: argparse.Namespace) -> int:
    from medssl.data.database import Database
    from medssl.data.describe import describe

    print(describe(Database.load(args.database)), end="")
    return 0
