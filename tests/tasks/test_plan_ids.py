"""Run ids and plan.json entries stay what they were: a changed id would orphan users' finished
runs (a rerun finds a run by its id), and reporting reads plan.json.

``plans_pretrain_budget.json`` holds the plans of the smoke, demo and segmentation presets, and
of a transfer x folds x probes matrix, on two in-memory databases, as ``_write_plan``
serialises them, written once by this module's ``_plans`` when pretraining gained its pool,
its budget in steps, its health read and its starting weights (issue 23, 27), and the medssl
preset's measured budget, pool and read interval (the segmentation preset pretrains with it):
new settings of every pretraining config, so every pretraining run id changed, and with it every evaluation of
an encoder (its ``encoder_run``). Every entry gained ``weights`` and ``weights_sha256`` (None:
no run of these cases starts from weights you bring) with the benchmark's ``inits``, no run
id changed. Do not regenerate it to make a failing test pass: a difference is a changed run
id or plan.json format.

``plans_bn_statistics_epoch.json`` is the plans before that change (fine-tuning's BN statistics
as the epoch's average, the ids of commit 9555c8c): ``test_the_pretraining_settings_changed_...``
checks that the change moved pretraining ids and what hashes them, nothing else.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from medssl.artifacts import read_json
from medssl.data.database import Database
from medssl.tasks.benchmark import _write_plan, plan_runs, resolve_benchmark

BEFORE = Path(__file__).with_name("plans_bn_statistics_epoch.json")
EXPECTED = Path(__file__).with_name("plans_pretrain_budget.json")

CASES = {
    "smoke": ("smoke", [], None, None, ["a"]),
    "demo": ("demo", [], None, None, ["a"]),
    "segmentation": ("segmentation", [], None, None, ["a"]),
    "transfer-folds-probes": (
        "smoke",
        ["transfer=true", "evaluations=[finetune, linear, knn]"],
        1,
        2,
        ["a", "b"],
    ),
}


def _database(name: str, seed: int) -> Database:
    """Twelve 8 px finetuning images (four per class, two per patient) and four pretraining."""
    rng = np.random.default_rng(seed)
    n = 24
    db = Database.from_arrays(
        pretrain=rng.integers(0, 255, (4, 8, 8)), pretrain_split=["train"] * 3 + ["val"],
        finetune=rng.integers(0, 255, (n, 8, 8)), finetune_masks=np.zeros((n, 8, 8)),
        finetune_labels=[i % 3 for i in range(n)], finetune_split=["train", "val", "test"] * 8,
        name=name,
    )  # fmt: skip
    # two images a patient; the checksum stays from_arrays's (of one patient per image), the
    # one the pinned run ids hash
    rows = [
        dataclasses.replace(r, patient=f"P{r.index // 2}") if r.role == "finetune" else r
        for r in db.manifest
    ]
    return dataclasses.replace(db, manifest=rows)


def _plans(tmp: Path) -> dict[str, list[dict]]:
    """Each case's plan as plan.json holds it (pending, no estimates: those vary by machine)."""
    dbs = {"a": _database("a", 0), "b": _database("b", 1)}
    out = {}
    for case, (preset, overrides, seeds, folds, names) in CASES.items():
        cfg = resolve_benchmark(preset, overrides, seeds, folds)
        runs = plan_runs(cfg, {n: dbs[n] for n in names})
        folder = tmp / case
        folder.mkdir()
        _write_plan(folder, runs)
        out[case] = read_json(folder / "plan.json")
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_plan_ids_and_entries_are_those_of_the_one_run_class(case, tmp_path):
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))[case]
    got = _plans(tmp_path)[case]
    assert [(p["run_id"], p["kind"]) for p in got] == [(p["run_id"], p["kind"]) for p in expected]
    assert got == expected


def test_the_pretraining_settings_changed_pretraining_ids_and_their_evaluations_only(tmp_path):
    before = json.loads(BEFORE.read_text(encoding="utf-8"))
    got = _plans(tmp_path)
    for case, entries in got.items():
        assert len(entries) == len(before[case])
        for new, old in zip(entries, before[case], strict=True):
            # old.get: the keys plan entries gained since (weights, weights_sha256: None
            # unless a run starts from weights you bring)
            changed = {k for k in new if new[k] != old.get(k)}
            if new["kind"] == "pretrain":
                assert changed == {"run_id", "config_hash"}, (case, old["run_id"])
            elif new["init"] != "random":  # an evaluation of an encoder: its encoder's id
                assert changed == {"run_id", "encoder_run"}, (case, old["run_id"])
            else:  # random init reads no pretraining setting
                assert changed == set(), (case, old["run_id"])


def test_each_run_kind_has_only_its_own_fields(tmp_path):
    """A pretraining run has no task or init, an evaluation run no SSL method, and a planned
    run is frozen: only its progress (``state``) changes as the benchmark goes."""
    import dataclasses

    from medssl.tasks.matrix import FinetuneRun, PretrainRun, ProbeRun

    cfg = resolve_benchmark("demo", [], None, None)
    runs = plan_runs(cfg, {"a": _database("a", 0)})
    by_kind = {r.kind: type(r) for r in runs}
    assert by_kind == {"pretrain": PretrainRun, "finetune": FinetuneRun, "probe": ProbeRun}
    pre = next(r for r in runs if isinstance(r, PretrainRun))
    probe = next(r for r in runs if isinstance(r, ProbeRun))
    for field in ("task", "init", "fold", "fraction", "evaluation", "encoder_run"):
        assert not hasattr(pre, field)
    assert not hasattr(probe, "method")
    with pytest.raises(dataclasses.FrozenInstanceError):
        probe.run_id = "pr-other"  # type: ignore[misc]
    probe.state.status = "done"
    assert probe.plan_entry()["status"] == "done"
    assert type(probe.obj).__name__ == "ProbeConfig" and type(pre.obj).__name__ == "PretrainConfig"
