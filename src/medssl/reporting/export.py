"""`medssl export RUN`: a pretraining run's encoder as files others load, with a model card.

``export_encoder(run, out)`` writes into ``out`` (default ``RUN/export/``), atomically::

    encoder.safetensors   the encoder's state dict as safetensors (torchvision ResNet-18 keys,
                          conv1 (64, 1, 7, 7), no fc), with metadata (architecture, method)
    encoder.pt            the same state dict, torch.save (what `medssl pretrain` writes)
    README.md             the model card: database and its sources, method, settings, steps,
                          health read, and, for a run inside a benchmark folder, the
                          benchmark's results for this encoder

Both files load into ``medssl.load_encoder``, torchvision's ``resnet18`` (1-channel conv1,
``strict=False`` for its new ``fc`` only), segmentation_models_pytorch's ResNet-18 encoder and
``timm.create_model("resnet18", in_chans=1, num_classes=0)`` (strict); the card shows how.

The card reads the run's saved artifacts only (config.yaml, done.json, metrics.csv through
``tasks.pretrain.run_health``, the database's database.json and manifest.csv, the benchmark's
plan.json and results.csv through ``reporting.inputs``): nothing is computed again. A missing
piece (an old run without its database's path, a benchmark without results.csv yet) is said
in the card, never left out silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from medssl import __version__
from medssl.artifacts import atomic_dir, read_json, save_torch, write_bytes, write_text
from medssl.data.database import META_FILE
from medssl.data.describe import composition_rows, image_sizes, markdown_table
from medssl.data.meta import read_meta
from medssl.errors import ConfigError
from medssl.models.weights import sha256_of
from medssl.reporting.inputs import read_databases, read_plan, read_results
from medssl.runfiles import (
    CONFIG,
    DATABASES,
    DONE,
    ENCODER,
    EXPORT,
    EXPORT_SAFETENSORS,
    MODEL_CARD,
    PLAN,
    REPORT,
    REPORT_HTML,
    RESULTS,
    RUNS,
)

ARCHITECTURE = {"architecture": "resnet18", "in_chans": "1", "num_classes": "0"}
"""The safetensors metadata every export carries (strings: the format's rule), with timm's
names for what ``timm.create_model`` needs to rebuild the network."""


def export_encoder(
    run: str | os.PathLike, out: str | os.PathLike | None = None, *, overwrite: bool = False
) -> Path:
    """Write the encoder of the finished pretraining run ``run`` and its card into ``out``
    (default ``run/export``); return ``out``."""
    from safetensors.torch import save

    from medssl.models.encoder import build_encoder, encoder_state_dict
    from medssl.models.weights import load_weights

    run = Path(run)
    config, done = _pretraining_run(run)
    out = Path(out) if out is not None else run / EXPORT
    encoder = build_encoder()
    weights = load_weights(run / ENCODER, encoder)  # checked as any --init is
    state = encoder_state_dict(encoder)
    metadata = {
        "format": "pt",
        **ARCHITECTURE,
        "method": str(done.get("method", "")),
        "database": str(done.get("database", "")),
        "medssl_version": __version__,
        "encoder_sha256": str(weights.sha256),
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        write_bytes(tmp / EXPORT_SAFETENSORS, save(state, metadata=metadata))
        save_torch(tmp / ENCODER, state)
        files = {name: sha256_of(tmp / name) for name in (EXPORT_SAFETENSORS, ENCODER)}
        write_text(tmp / MODEL_CARD, model_card(run, config, done, files))
    return out


def _pretraining_run(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config.yaml, done.json) of a finished pretraining run, or a ConfigError saying what
    ``run`` is instead."""
    if not run.is_dir():
        raise ConfigError(f"{run}: no such folder; pass the --out folder of `medssl pretrain`")
    if not (run / ENCODER).is_file():
        what = "a fine-tuning run" if (run / RESULTS).is_file() else "not a run folder"
        raise ConfigError(
            f"{run}: no {ENCODER} here ({what}); `medssl export` takes a pretraining run: the "
            f"--out of `medssl pretrain`, or a benchmark's {RUNS}/pt-<id>/ folder"
        )
    if not (run / DONE).is_file() or not (run / CONFIG).is_file():
        raise ConfigError(
            f"{run}: the run has no {DONE} (it did not finish); finish it with `medssl "
            "pretrain --resume`, or export a finished run"
        )
    return yaml.safe_load((run / CONFIG).read_text(encoding="utf-8")), read_json(run / DONE)


# ----------------------------------------------------------------------------- the card


def model_card(
    run: Path, config: Mapping[str, Any], done: Mapping[str, Any], files: Mapping[str, str]
) -> str:
    """The model card (markdown) of pretraining run ``run``, its saved config and done.json;
    ``files``: the exported files' SHA-256."""
    from medssl.tasks.pretrain import run_health

    method, database = done.get("method", "?"), done.get("database", "?")
    bench = _benchmark_of(run)
    parts = [
        f"# {method} ResNet-18 encoder pretrained on {database} (medssl)\n",
        f"A 1-channel ResNet-18 (torchvision's layout: `conv1` (64, 1, 7, 7), no `fc`) "
        f"pretrained by self-supervised {method} on the pretraining images of database "
        f"{database}, written by medssl {__version__} from run `{run.name}`. Input: grey "
        "images (N, 1, H, W) scaled to [-1, 1] (uint8 / 127.5 - 1), 64 px when fine-tuned "
        "by medssl; output: (N, 512) pooled features.\n",
        _files_section(files),
        _loading_section(),
        _data_section(run, done, bench),
        _settings_section(config, done),
        _training_section(done),
        _health_section(run_health(run)),
    ]
    if bench is not None:
        parts.append(_benchmark_section(run, bench))
    return "\n".join(parts)


def _files_section(files: Mapping[str, str]) -> str:
    what = {
        EXPORT_SAFETENSORS: "the state dict as safetensors",
        ENCODER: "the same state dict, `torch.save`",
    }
    rows = [
        {"file": f"`{k}`", "what": what.get(k, ""), "SHA-256": f"`{v}`"} for k, v in files.items()
    ]
    return "## Files\n\n" + markdown_table(rows)


def _loading_section() -> str:
    return f"""## Loading

```python
import medssl
encoder = medssl.load_encoder("{EXPORT_SAFETENSORS}")  # features: medssl.embed(encoder, images)

import torch, torchvision
from safetensors.torch import load_file
state = load_file("{EXPORT_SAFETENSORS}")  # or torch.load("{ENCODER}", weights_only=True)

model = torchvision.models.resnet18(num_classes=3)  # a new head for your classes
model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
model.load_state_dict(state, strict=False)  # only fc.weight and fc.bias are missing

import timm
model = timm.create_model("resnet18", in_chans=1, num_classes=0)
model.load_state_dict(state)

import segmentation_models_pytorch as smp
unet = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
unet.encoder.load_state_dict(state)
```
"""


def _data_section(run: Path, done: Mapping[str, Any], bench: Path | None) -> str:
    name, checksum = done.get("database"), done.get("database_checksum")
    lines = [f"## Data\n\nDatabase **{name}**, checksum `{checksum}`."]
    folder = None
    if bench is not None:
        found = [d for d in read_databases(bench / DATABASES) if d.name == name]
        folder = found[0] if found else None
    elif done.get("database_path"):
        found = read_databases(Path(done["database_path"]).parent, [str(name)])
        want = Path(done["database_path"]).resolve()
        folder = next((d for d in found if d.path.resolve() == want), None)
    if folder is None:
        lines.append(
            "Its folder was not found (an in-memory database, a run written before done.json "
            "recorded `database_path`, or a folder moved since): its sources are not listed."
        )
        return "\n\n".join(lines) + "\n"
    meta = read_meta(folder.path / META_FILE)  # typed (data.meta); read_databases keeps JSON
    if meta.checksum != checksum:
        lines.append(
            f"The folder `{folder.path}` now holds another database (checksum "
            f"`{meta.checksum}`): its sources are not this run's and are not listed."
        )
        return "\n\n".join(lines) + "\n"
    facts = [f"Recipe `{meta.recipe.name if meta.recipe else name}`"]
    if meta.seed is not None:
        facts.append(f"database seed {meta.seed}")
    if (sizes := image_sizes(meta)) != "unknown":
        facts.append(sizes)
    lines.append(f"{', '.join(facts)}. Images per role, source and class (thesis table 5.2):")
    lines.append(markdown_table(composition_rows(folder.manifest)).rstrip())
    if meta.phantoms:
        lines.append(
            f"**Synthetic phantoms**, not real images, for: {', '.join(meta.phantoms)}: "
            "this encoder has seen no patient's image from those sources."
        )
    return "\n\n".join(lines) + "\n"


def _settings_section(config: Mapping[str, Any], done: Mapping[str, Any]) -> str:
    opt = config.get("optimizer", {})
    trainer = config.get("trainer", {})
    init = done.get("init_weights")
    rows = [
        ("method", config.get("method")),
        ("method options", _inline(config.get("method_options", {}))),
        ("augmentation", config.get("augmentation")),
        ("optimizer", f"{opt.get('name')}, lr {opt.get('lr')}, weight decay "
                      f"{opt.get('weight_decay')}, schedule {opt.get('schedule', 'none')}"),
        ("batch size", config.get("batch_size")),
        ("epochs", trainer.get("epochs")),
        ("seed", config.get("seed")),
        ("initial weights", "random (torchvision's initialisation)" if not init else
                            f"{init.get('file')} (SHA-256 `{init.get('sha256')}`, "
                            f"{init.get('layout')})"),
    ]  # fmt: skip
    table = markdown_table([{"setting": k, "value": v} for k, v in rows])
    saved = yaml.safe_dump(dict(config), sort_keys=False).rstrip()
    return (
        f"## Method and settings\n\n{table}\nThe run's whole resolved configuration "
        f"({CONFIG}):\n\n```yaml\n{saved}\n```\n"
    )


def _inline(options: Any) -> str:
    if not isinstance(options, Mapping) or not options:
        return "defaults"
    return ", ".join(f"{k}={v}" for k, v in options.items())


def _training_section(done: Mapping[str, Any]) -> str:
    final = done.get("final") or {}
    shown = {
        k: final[k]
        for k in ("train_loss", "val_loss", "knn_bacc", "knn_gain", "collapse_std")
        if isinstance(final.get(k), (int, float))
    }
    losses = ", ".join(f"{k} {v:.4g}" for k, v in shown.items()) or "none recorded"
    return (
        f"## Training\n\n{done.get('epochs_run')} epochs, {final.get('step', '?')} optimizer "
        f"steps, {done.get('seconds', '?')} s on {done.get('device', '?')} "
        f"({done.get('precision', '?')}). Last epoch: {losses}.\n"
    )


def _health_section(health: Any) -> str:
    fields = (
        "steps", "random_knn", "final_knn", "final_knn_se", "final_knn_gain",
        "final_knn_gain_se", "random_linear", "final_linear", "final_linear_gain",
        "final_linear_gain_se", "useful_step", "useful_s", "final_std", "collapsed",
        "never_beat_random", "final_beat_random",
    )  # fmt: skip
    rows = [{"reading": f, "value": _fmt(getattr(health, f))} for f in fields]
    return (
        f"## Health read\n\n{health.message}\n\n{markdown_table(rows)}\n"
        "Balanced accuracies on frozen features of the labelled finetuning train and validation "
        "images (never test): a leave-one-patient-out kNN and an out-of-fold linear probe; "
        "`random_*` is the same reading of the run's initial encoder, `*_gain` the paired "
        "difference with it and `*_se` standard errors over images (engine.health_read); "
        "`useful_step` is the first read whose kNN gain exceeds 2 SE.\n"
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "undefined"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _benchmark_of(run: Path) -> Path | None:
    """The benchmark folder that holds ``run`` as ``OUT/runs/<id>``, or None."""
    from medssl.tasks.collect import is_benchmark

    out = run.resolve().parent.parent
    return out if run.resolve().parent.name == RUNS and is_benchmark(out) else None


def _benchmark_section(run: Path, bench: Path) -> str:
    from medssl.tasks.task import get_task

    ids = {r["run_id"]: r for r in read_plan(bench / PLAN) if r.get("encoder_run") == run.name}
    head = f"## Benchmark results\n\nThis encoder's evaluation runs in benchmark `{bench}`"
    if not ids:
        return f"{head}: none planned.\n"
    if not (bench / RESULTS).is_file():
        return (
            f"{head}: {len(ids)} planned; the benchmark has no {RESULTS} yet (`medssl report "
            f"{bench}` gathers the finished runs' records).\n"
        )
    records = [r for r in read_results(bench / RESULTS) if r["run_id"] in ids]
    rows = _result_rows(records, lambda task: get_task(task).summary_metrics)
    finished = len({r["run_id"] for r in records})
    report = bench / REPORT / REPORT_HTML
    where = (
        f"The comparisons with random init and the other methods, with their verdicts, are in "
        f"the benchmark's report (`{report}`)."
        if report.is_file()
        else f"`medssl report {bench}` writes the comparisons with their verdicts."
    )
    return (
        f"{head} ({finished} of {len(ids)} finished; test split, records of "
        f"`{bench / RESULTS}`):\n\n{markdown_table(rows) if rows else '(none finished)'}\n"
        f"{where}\n"
    )


def _result_rows(records: Sequence[Mapping[str, Any]], metrics_of) -> list[dict[str, object]]:
    """One row per evaluation run: what it was and its task's summary metrics on test."""
    runs: dict[str, dict[str, object]] = {}
    for r in records:
        if r["split"] != "test":
            continue
        row = runs.setdefault(
            r["run_id"],
            {
                "database": r["database"], "task": r["task"], "evaluation": r["evaluation"],
                "fraction": f"{r['fraction']:g}", "seed": r["seed"],
                "fold": "" if r["fold"] is None else r["fold"],
            },
        )  # fmt: skip
        if r["metric"] in metrics_of(r["task"]):
            row[r["metric"]] = _fmt(float(r["value"]))
    columns = list(dict.fromkeys(k for row in runs.values() for k in row))
    return [{c: row.get(c, "") for c in columns} for row in runs.values()]
