"""The human-readable summary of a bench result (``medssl bench`` without ``--json``)."""

from __future__ import annotations

from medssl.bench.result import BenchResult


def format_result(r: BenchResult) -> str:
    db = r.database
    lines = [
        f"medssl bench on {r.device} ({r.device_name}), {r.threads} threads, torch {r.torch}",
        f"precision {r.precision}: {r.precision_note}",
        f"channels_last {r.channels_last}, compile {r.compile}; batch {r.batch_size}, "
        f"{r.steps} timed steps after {r.warmup_steps} warm-up per path and round, "
        f"median of {r.rounds} alternating rounds; "
        f"database {db.name} ({db.pretrain_train_images} pretraining images"
        f"{', synthetic' if db.synthetic else ''})",
        f"load average at start {_load(r.load_average['start'])}, "
        f"at end {_load(r.load_average['end'])} (other processes slow every figure alike)",
        "",
        f"{'method':<8} {'(a) ceiling':>12} {'(b) medssl':>11} {'(c) reference':>14} "
        f"{'b/a':>6} {'b/c':>6}   views/s",
    ]
    targets = r.targets
    for name, m in r.methods.items():
        flag = "" if m.same_model_and_step else "   PATHS DIFFER: see fingerprints"
        lines.append(
            f"{name:<8} {m.ceiling['views_per_s']:>12.1f} {m.medssl['views_per_s']:>11.1f} "
            f"{m.reference['views_per_s']:>14.1f} {m.ratio_medssl_to_ceiling:>6.2f} "
            f"{m.ratio_medssl_to_reference:>6.2f}{flag}"
        )
    lines.append(
        f"targets on this device: b/a >= {targets['ratio_medssl_to_ceiling']}, "
        f"b/c >= {targets['ratio_medssl_to_reference']}"
    )
    if r.methods:
        refs = [m.reference for m in r.methods.values()]
        names = ", ".join(ref["transform"].rsplit(".", 1)[-1] for ref in refs)
        lines.append(
            f"(c) = lightly's {names} in a DataLoader with {refs[0]['num_workers']} workers"
        )
    if r.finetune:
        lines.append(
            "fine-tuning train steps: "
            + ", ".join(
                f"{t} {f['images_per_s']:.1f} img/s ({f['ratio_to_plain_loop']:.2f} of a plain "
                f"loop's {f['plain_loop']['rate']:.1f})"
                for t, f in r.finetune.items()
            )
        )
        epochs = {t: f["epochs"] for t, f in r.finetune.items() if "epochs" in f}
        if epochs:
            e = next(iter(epochs.values()))
            lines.append(
                f"fine-tuning epochs (default preset, batch {e['batch_size']}, an epoch = a "
                f"{e['epochs']}-epoch run less a 1-epoch run, BN statistics {e['bn_statistics']}; "
                "against a plain loop doing the same steps, validation and best weights): "
                + ", ".join(
                    f"{t} {x['seconds_per_epoch']:.2f} s ({x['ratio_to_plain_loop']:.2f} of the "
                    f"plain loop's {x['plain_seconds_per_epoch']:.2f} s)"
                    for t, x in epochs.items()
                )
            )
    lines += _variant_lines(r) + _useful_lines(r)
    mem = f"peak RSS {r.peak_rss_mb:.0f} MB (DataLoader workers: {r.peak_rss_workers_mb:.0f} MB)"
    if r.cuda_max_allocated_mb is not None:
        mem += f", CUDA max allocated {r.cuda_max_allocated_mb:.0f} MB"
    lines.append(mem)
    est = r.thesis_estimate
    if est:
        lines.append(
            f"thesis protocol ({est.pretrain_runs} pretraining + {est.finetune_runs} "
            f"fine-tuning runs x {est.epochs} epochs) on this device: about "
            f"{_duration(est.seconds)} (pretraining {_duration(est.pretrain_s)}, "
            f"fine-tuning {_duration(est.finetune_s)}; excludes {est.excludes})"
        )
        if est.assumed:
            lines.append(f"  assumed: {est.assumed} (use --method all)")
    return "\n".join(lines)


def _variant_lines(r: BenchResult) -> list[str]:
    if not r.variants:
        return []
    lines = [
        f"channels_last / compile against the default step (median of {r.rounds} alternating "
        "rounds; startup = warm-up steps and compilation, untimed):"
    ]
    for stage, unit in (("pretrain", "views/s"), ("finetune", "img/s")):
        entry = r.variants.get(stage)
        if not entry:
            continue
        what = "pretraining" if stage == "pretrain" else "fine-tuning (classification)"
        parts = [f"default {entry['default']['rate']:.1f} {unit}"]
        for name, v in entry.items():
            if name == "default":
                continue
            if "error" in v:
                parts.append(f"{name} could not run here ({v['error']})")
            else:
                parts.append(
                    f"{name} {v['rate']:.1f} ({v['ratio']:.2f}x, startup {v['startup_s']:.0f} s "
                    f"vs {entry['default']['startup_s']:.0f} s, update cosine "
                    f"{v['update_cosine']:.3f})"
                )
        lines.append(f"  {what}: " + "; ".join(parts))
    return lines


def _useful_lines(r: BenchResult) -> list[str]:
    u = r.time_to_useful
    if not u:
        return []
    head = (
        f"time to a useful encoder ({u['method']}, medssl preset, batch {u['batch_size']}, "
        f"{u['database']}, a health read every {u['every']} steps, {u['steps']} steps at "
        f"{u['seconds_per_step']:.2f} s a step): "
    )
    if u["useful_step"] is None:
        head += f"the kNN read never beat random init by 2 SE within {u['steps']} steps"
    else:
        head += (
            f"the kNN read beat random init by 2 SE at step {u['useful_step']} "
            f"({_duration(u['useful_s'])} of training)"
        )
    if u["useful_step_linear"] is not None:
        head += (
            f"; the linear probe at step {u['useful_step_linear']} "
            f"({_duration(u['useful_s_linear'])})"
        )
    if u["final_knn_gain"] is not None:
        head += (
            f"; last read: kNN gain {u['final_knn_gain']:+.3f} ± {u['final_knn_gain_se']:.3f}, "
            f"linear {u['final_linear_gain']:+.3f} ± {u['final_linear_gain_se']:.3f} (SE)"
        )
    return [head]


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def _load(values: list[float] | None) -> str:
    return "n/a" if values is None else " ".join(f"{v:.2f}" for v in values)
