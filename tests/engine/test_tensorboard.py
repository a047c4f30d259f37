"""Runs you can watch: each run's metrics.csv rows as TensorBoard events (Fabric's
TensorBoardLogger), read back by tensorboard's own reader; without the package, runs proceed
unchanged."""

from __future__ import annotations

import math
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from dbfactory import make_db
from medssl.artifacts import read_csv, read_json
from medssl.engine.tensorboard import readable_name, run_loggers
from medssl.tasks.finetune import run_finetune


def events(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the event files in ``folder``: [(step, value)]."""
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def numeric_columns(rows) -> dict[str, list[tuple[int, float]]]:
    """metrics.csv's numeric columns but step, at each row's step, as the trainer logs them."""
    out: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for k, v in row.items():
            if k != "step" and v not in ("", None):
                out.setdefault(k, []).append((int(row["step"]), float(v)))
    return out


def assert_same(logged, expected) -> None:
    assert set(logged) == set(expected)
    for tag, points in expected.items():
        assert [s for s, _ in logged[tag]] == [s for s, _ in points], tag
        for (_, a), (_, b) in zip(logged[tag], points, strict=True):
            assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7), (tag, a, b)  # float32 events


def test_a_pretraining_run_logs_its_metrics_rows(tiny_pretraining):
    run = tiny_pretraining.out
    folder = run / "tensorboard" / "phantoms_simclr_pretraining_seed_0"
    assert [p.name.startswith("events.out.tfevents.") for p in folder.iterdir()] == [True]
    logged = events(folder)
    rows = read_csv(run / "metrics.csv")
    assert {"train_loss", "val_loss", "lr", "knn_bacc", "knn_gain", "collapse_std"} <= set(logged)
    assert_same(logged, numeric_columns(rows))


def finetune(db, out, **kw):
    return run_finetune(
        db, out, task="classification", preset="demo", overrides=["trainer.epochs=2", "figure_splits=[]"],
        device="cpu", progress=False, **kw,
    )  # fmt: skip


def test_without_tensorboard_a_run_proceeds_unchanged(tmp_path, monkeypatch):
    db = make_db(4, 2, 2, size=32)
    watched = finetune(db, tmp_path / "watched", log_name="tiny classification seed 0")
    logged = events(watched / "tensorboard" / "tiny_classification_seed_0")
    assert {"train_loss", "lr", "val_loss", "val_mcc", "val_balanced_accuracy"} <= set(logged)
    assert_same(logged, numeric_columns(read_csv(watched / "metrics.csv")))

    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` fails
    assert run_loggers(tmp_path, "x") == []
    plain = finetune(db, tmp_path / "plain", log_name="tiny classification seed 0")
    assert not (plain / "tensorboard").exists()
    # same configuration (the resume fingerprint is made of it), same training
    assert (plain / "config.yaml").read_text() == (watched / "config.yaml").read_text()
    cols = ("epoch", "step", "train_loss", "val_loss", "val_mcc")
    strip = lambda rows: [{k: r[k] for k in cols} for r in rows]  # noqa: E731
    assert strip(read_csv(plain / "metrics.csv")) == strip(read_csv(watched / "metrics.csv"))
    assert read_json(plain / "done.json") == read_json(watched / "done.json")


@pytest.mark.parametrize(
    ("label", "name"),
    [("US1 simclr pretraining seed 0", "US1_simclr_pretraining_seed_0"),
     ("US1 classification from moco (linear) at 0.1 of the labels seed 2 fold 1",
      "US1_classification_from_moco_linear_at_0.1_of_the_labels_seed_2_fold_1"),
     ("a/b", "a_b"), ("///", "run")],
)  # fmt: skip
def test_readable_names_are_one_folder(label, name):
    assert readable_name(label) == name


def test_a_benchmark_shows_its_runs_by_database_method_task_and_seed(smoke_benchmark):
    out = smoke_benchmark.out
    plan = read_json(out / "plan.json")
    trained = [r for r in plan if r["kind"] in ("pretrain", "finetune")]
    assert trained
    for r in trained:
        folders = list((out / "runs" / r["run_id"] / "tensorboard").iterdir())
        assert len(folders) == 1, r["run_id"]
        if r["kind"] == "pretrain":
            want = f"{r['database']}_{r['method']}_pretraining_seed_{r['seed']}"
            assert folders[0].name == want
        else:
            assert folders[0].name.startswith(f"{r['database']}_{r['task']}_from_{r['init']}")
            assert f"_seed_{r['seed']}" in folders[0].name
        assert "train_loss" in events(folders[0])
