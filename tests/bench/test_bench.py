"""`medssl bench`: its JSON schema, that its three paths train the same model with the same
step, its cache file, and its pure parts (timed stream, thesis estimate, reference transforms).
Speed itself is never asserted."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from medssl.artifacts import read_json, write_json
from medssl.bench.estimate import thesis_estimate
from medssl.bench.reference import reference_loader
from medssl.bench.report import format_result
from medssl.bench.result import BenchResult
from medssl.bench.run import PATHS, resolve_methods, save_result
from medssl.bench.timing import TimedStream, count_views
from medssl.cli.main import main
from medssl.data.augment import AugmentConfig
from medssl.engine.trainer import default_precision
from medssl.errors import ConfigError, DataError
from medssl.models.encoder import build_encoder
from medssl.ssl import build_method, method_names
from medssl.tasks.estimates import CPU_THROUGHPUT, estimate_run, throughput
from medssl.tasks.matrix import FinetuneRun, PretrainRun, ProbeRun

BATCH, STEPS, ROUNDS = 4, 2, 2
USEFUL_STEPS = 4
PATH_KEYS = {
    "views_per_s",
    "seconds",
    "items",
    "steps",
    "warmup_steps",
    "cuda_max_allocated_mb",
    "peak_rss_mb",
    "fingerprint",
}
FINGERPRINT_KEYS = {
    "task",
    "parameters",
    "trainable_parameters",
    "init_checksum",
    "optimizer",
    "optimizer_steps",
    "precision",
    "input_shape",
    "input_dtype",
}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """One tiny `medssl bench --json` run through the CLI, with HOME in a temporary folder."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = main(
                [
                    "bench",
                    "--json",
                    "--device",
                    "cpu",
                    "--method",
                    "simclr",
                    "--steps",
                    str(STEPS),
                    "--warmup",
                    "0",
                    "--batch-size",
                    str(BATCH),
                    "--images",
                    "16",
                    "--finetune-images",
                    "24",
                    "--num-workers",
                    "1",
                    "--rounds",
                    str(ROUNDS),
                    "--epochs",
                    "2",
                    "--no-variants",  # timed on their own below (compilation takes minutes)
                    "--useful-steps",
                    str(USEFUL_STEPS),
                    "--useful-every",
                    "2",
                ]
            )
    assert rc == 0
    return json.loads(buf.getvalue()), home


def test_json_schema(bench):
    r, _ = bench
    for key in (
        "schema",
        "device",
        "device_name",
        "precision",
        "precision_note",
        "methods",
        "finetune",
        "thesis_estimate_s",
        "thesis_estimate",
        "peak_rss_mb",
        "peak_rss_workers_mb",
        "model_fingerprint",
        "throughput",
        "load_average",
    ):
        assert key in r, key
    assert r["schema"] == "medssl.bench/2"
    assert BenchResult.from_json(r).to_json() == r  # every key is the record's, and no more
    assert r["rounds"] == ROUNDS
    # the CPU default of this machine (bf16 autocast where the CPU has bf16 units), and why
    assert r["device"] == "cpu" and r["precision"] == default_precision("cpu")
    assert "bf16 units" in r["precision_note"] and "default" in r["precision_note"]
    assert r["cuda_max_allocated_mb"] is None
    assert r["peak_rss_mb"] > 0
    assert list(r["methods"]) == ["simclr"]
    m = r["methods"]["simclr"]
    for path in PATHS:
        assert set(m[path]) >= PATH_KEYS, path
        assert m[path]["views_per_s"] > 0
        assert m[path]["steps"] == STEPS
        assert m[path]["items"] == STEPS * BATCH * 2  # two views per image
        assert set(m[path]["fingerprint"]) == FINGERPRINT_KEYS
        # alternating rounds; the figure is the lower median of the rounds' rates
        assert len(m[path]["rounds"]) == ROUNDS and all(x > 0 for x in m[path]["rounds"])
        assert m[path]["views_per_s"] == min(m[path]["rounds"])
    a, b, c = (m[p]["views_per_s"] for p in PATHS)
    assert m["ratio_medssl_to_ceiling"] == pytest.approx(b / a, abs=2e-3)
    assert m["ratio_medssl_to_reference"] == pytest.approx(b / c, abs=2e-3)
    assert m["reference"]["num_workers"] == 1
    assert m["reference"]["transform"] == "lightly.transforms.SimCLRTransform"
    assert set(r["finetune"]) == {"classification", "segmentation"}
    for f in r["finetune"].values():
        assert f["images_per_s"] > 0 and f["items"] == STEPS * BATCH
        assert f["fingerprint"]["optimizer_steps"] == STEPS
        plain = f["plain_loop"]  # the same steps in a hand-written loop, and the ratio
        assert plain["items"] == STEPS * BATCH and plain["steps"] == STEPS and plain["rate"] > 0
        assert f["ratio_to_plain_loop"] == pytest.approx(
            f["images_per_s"] / plain["rate"], abs=2e-3
        )
        # both timed in alternating rounds; each figure is the lower median of its rounds
        assert len(f["rounds"]) == len(plain["rounds"]) == len(f["ratio_rounds"]) == ROUNDS
        assert f["images_per_s"] == min(f["rounds"]) and plain["rate"] == min(plain["rounds"])
        assert f["ratio_rounds"] == [
            pytest.approx(a / b, abs=2e-3) for a, b in zip(f["rounds"], plain["rounds"])
        ]
        # whole epochs (steps, BN statistics, validation, saving) against a plain loop doing
        # the same job, in alternating rounds: the default preset at the bench's batch
        e = f["epochs"]
        assert e["epochs"] == 2 and e["batch_size"] == BATCH and e["bn_statistics"] == "epoch"
        assert e["train_images"] == 24 and e["val_images"] == 6  # --finetune-images 24
        assert len(e["rounds"]) == len(e["plain_rounds"]) == len(e["ratio_rounds"]) == ROUNDS
        # an epoch = a 2-epoch run less a 1-epoch run; the median of 2 rounds is the slower
        assert e["seconds_per_epoch"] == max(e["rounds"])
        assert e["plain_seconds_per_epoch"] == max(e["plain_rounds"])
        assert e["ratio_to_plain_loop"] == pytest.approx(
            e["plain_seconds_per_epoch"] / e["seconds_per_epoch"], abs=2e-3
        )
        assert e["ratio_rounds"] == [
            pytest.approx(p / m, abs=2e-3) for m, p in zip(e["rounds"], e["plain_rounds"])
        ]
    est = r["thesis_estimate"]
    assert r["thesis_estimate_s"] == est["seconds"] > 0
    assert est["seconds"] == pytest.approx(est["pretrain_s"] + est["finetune_s"], abs=0.2)
    assert "moco" in est["assumed"]  # measured simclr only


def test_paths_ran_the_same_model_and_step(bench):
    r, _ = bench
    m = r["methods"]["simclr"]
    fps = [m[p]["fingerprint"] for p in PATHS]
    assert fps[0] == fps[1] == fps[2]
    assert m["same_model_and_step"] is True
    fp = fps[0]
    expected = build_method("simclr", build_encoder())
    assert fp["task"] == type(expected).__name__
    assert fp["parameters"] == sum(p.numel() for p in expected.parameters())
    assert fp["optimizer"] == "Adam"
    assert fp["optimizer_steps"] == STEPS  # warm-up 0: every step timed
    assert fp["input_shape"] == [BATCH, 1, 64, 64]
    assert fp["input_dtype"] == "float32"
    assert r["model_fingerprint"]["simclr"] == fp


def test_cache_file_feeds_the_benchmark_stage(bench):
    r, home = bench
    saved = read_json(home / ".cache" / "medssl" / "bench.json")
    assert saved["throughput"] == r["throughput"]
    # Keys are those the benchmark stage's duration estimate looks up.
    assert set(saved["throughput"]) == {"simclr", "classification", "segmentation"}
    assert set(saved["throughput"]) <= set(CPU_THROUGHPUT)
    assert saved["throughput"]["simclr"] == r["methods"]["simclr"]["medssl"]["views_per_s"]


def test_text_report(bench):
    text = format_result(BenchResult.from_json(bench[0]))
    assert "(b) medssl" in text and "b/a" in text and "thesis protocol" in text
    e = bench[0]["finetune"]["classification"]["epochs"]
    assert "fine-tuning epochs (default preset, batch 4, an epoch = a 2-epoch run less" in text
    assert (
        f"classification {e['seconds_per_epoch']:.2f} s ({e['ratio_to_plain_loop']:.2f} of" in text
    )


def test_saved_result_is_refused_when_its_keys_or_schema_differ(bench):
    r = bench[0]
    with pytest.raises(DataError, match=r"bench.json: not a medssl.bench/2 .*unknown \['extra'\]"):
        BenchResult.from_json({**r, "extra": 1}, where="bench.json")
    with pytest.raises(DataError, match=r"missing \['rounds'\]"):
        BenchResult.from_json({k: v for k, v in r.items() if k != "rounds"})
    with pytest.raises(DataError, match="schema 'medssl.bench/0'"):
        BenchResult.from_json({**r, "schema": "medssl.bench/0"})
    methods = {"simclr": {k: v for k, v in r["methods"]["simclr"].items() if k != "medssl"}}
    with pytest.raises(DataError, match=r"methods.simclr: .*missing \['medssl'\]"):
        BenchResult.from_json({**r, "methods": methods})


def test_save_result_keeps_other_methods_of_the_same_device(bench, tmp_path):
    path = tmp_path / "bench.json"
    base = dataclasses.replace(BenchResult.from_json(bench[0]), device_name="x")
    write_json(path, {**base.to_json(), "throughput": {"moco": 400.0, "simclr": 1.0}})
    save_result(dataclasses.replace(base, throughput={"simclr": 300.0}), path)
    assert read_json(path)["throughput"] == {"moco": 400.0, "simclr": 300.0}
    save_result(dataclasses.replace(base, device_name="y", throughput={"simclr": 9.0}), path)
    assert read_json(path)["throughput"] == {"simclr": 9.0}  # another device: replaced


def test_timed_stream_chains_epochs_and_counts_timed_items():
    epochs = []

    def source(k):
        epochs.append(k)
        return [(torch.zeros(3, 1, 4, 4), torch.zeros(3, 1, 4, 4))] * 2  # 2 batches per epoch

    s = TimedStream(source, warmup=1, steps=4, device=torch.device("cpu"), count=count_views)
    assert len(s) == 5
    assert len(list(s)) == 5
    assert epochs == [0, 1, 2]
    assert s.items == 4 * 6 and s.batches == 5
    assert s.input_shape == [3, 1, 4, 4] and s.input_dtype == "float32"
    assert s.rate > 0
    with pytest.raises(ConfigError, match="batch-size"):
        list(TimedStream(lambda k: [], warmup=0, steps=1, device=torch.device("cpu"), count=len))


def test_thesis_estimate_known_answer():
    est = thesis_estimate(
        {"simclr": 248.0, "moco": 248.0, "byol": 248.0},
        {"classification": 240.0, "segmentation": 120.0},
    )
    # 9 runs x 100 epochs x 1240 x 2 views / 248 = 9000 s; 12 x 100 x 240 / 240 + 12 x 100 x 240 / 120
    assert est.pretrain_s == pytest.approx(9000.0)
    assert est.finetune_s == pytest.approx(1200.0 + 2400.0)
    assert est.seconds == pytest.approx(12600.0)
    assert est.assumed is None


def test_benchmark_run_estimate_known_answer(tiny_db):
    """The benchmark's per-run estimate is the thesis estimate's steps x items / rate, with
    epoch-end work (x 1.3) and start-up (+3 s); tiny_db has 6 pretraining train images (one
    batch of 6 an epoch under the thesis pool: 12 views a step) and 27 finetuning images."""
    from medssl.tasks.pretrain_config import resolve_config

    speed = {"simclr": 40.0, "classification": 27.0}

    def pretrain(method, epochs):
        return resolve_config(method, preset="thesis", epochs=epochs, overrides=["batch_size=6"])

    pre_cfg = {"method": "simclr", "trainer": {"epochs": 10}}
    pre = PretrainRun("tiny", 0, "simclr", pre_cfg, obj=pretrain("simclr", 10), run_id="pt-1")
    other_cfg = {"method": "x", "trainer": {"epochs": 1}}
    other = PretrainRun("tiny", 0, "x", other_cfg, obj=pretrain("byol", 1), run_id="pt-2")
    evaluation = dict(
        task="classification", init="random", fold=None, fraction=1.0, pretrain_data="",
        encoder_run=None, obj=None,
    )  # fmt: skip
    ft_cfg = {"trainer": {"epochs": 5}}
    ft = FinetuneRun("tiny", 0, **evaluation, evaluation="finetune", config=ft_cfg, run_id="ft-1")
    probe = ProbeRun("tiny", 0, **evaluation, evaluation="linear", config={}, run_id="pr-1")
    assert estimate_run(pre, tiny_db, speed) == pytest.approx(10 * 12 / 40 * 1.3 + 3)  # 6.9
    assert estimate_run(ft, tiny_db, speed) == pytest.approx(5 * 27 / 27 * 1.3 + 3)  # 9.5
    assert estimate_run(probe, tiny_db, speed) == pytest.approx(3 + 27 / 150)
    assert estimate_run(other, tiny_db, speed) == pytest.approx(12 / 250 * 1.3 + 3)


def test_throughput_prefers_this_machines_bench(tmp_path):
    path = tmp_path / "bench.json"
    assert throughput(path) == CPU_THROUGHPUT  # no bench here: the shipped CPU figures
    write_json(path, {"throughput": {"simclr": 99.0}})
    assert throughput(path) == {**CPU_THROUGHPUT, "simclr": 99.0}
    path.write_text("{not json")
    assert throughput(path) == CPU_THROUGHPUT


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid: all, .*simclr"):
        resolve_methods("swav")
    assert resolve_methods("all") == method_names()


@pytest.mark.parametrize("method", method_names())
def test_reference_views_match_medssl_views(method):
    images = np.random.default_rng(0).integers(0, 256, (4, 110, 110), dtype=np.uint8)
    loader = reference_loader(
        images, method, AugmentConfig(), batch_size=2, num_workers=0, seed=0, pin_memory=False
    )
    batch = next(iter(loader))
    assert len(batch) == 2
    for v in batch:
        assert v.shape == (2, 1, 64, 64) and v.dtype == torch.float32
        assert float(v.min()) >= -1.0 and float(v.max()) <= 1.0


def test_time_to_a_useful_encoder_is_a_short_medssl_pretraining_run(bench):
    """The useful stage pretrains the first method with the medssl preset on in-memory
    ultrasound phantoms (no --database) and reports the health read's first 2-SE step."""
    u = bench[0]["time_to_useful"]
    assert u["method"] == "simclr" and u["database"] == "ultrasound phantoms"
    assert u["every"] == 2 and u["batch_size"] == BATCH
    assert u["steps"] >= USEFUL_STEPS  # rounded up to whole epochs of the pool
    assert u["reads"] >= 1 and u["seconds_per_step"] > 0
    for kind in ("", "_linear"):  # a step is reported with its training seconds, or neither
        assert (u[f"useful_step{kind}"] is None) == (u[f"useful_s{kind}"] is None)
        if u[f"useful_step{kind}"] is not None:
            assert 0 < u[f"useful_step{kind}"] <= u["steps"]
    assert u["final_knn_gain_se"] > 0 and u["final_linear_gain_se"] > 0
    assert bench[0]["variants"] is None  # --no-variants
    text = format_result(BenchResult.from_json(bench[0]))
    assert "time to a useful encoder (simclr, medssl preset, batch 4, ultrasound phantoms" in text
    assert f"kNN gain {u['final_knn_gain']:+.3f} ± {u['final_knn_gain_se']:.3f}" in text


def test_phantoms_carry_class_signal_the_speed_fields_do_not():
    """The useful stage's phantoms differ by class (lesion images have a mask, normal ones
    none); the speed database's labels only cycle."""
    from medssl.bench.useful import phantom_database

    db = phantom_database(6, 9, 3)
    assert db.images("pretrain", "train").shape == (6, 110, 110)
    rows = db.rows("finetune")
    masks = db.arrays["finetune_masks"]
    assert [r.label for r in rows[:3]] == ["normal", "benign", "malignant"]
    for r, m in zip(rows, masks, strict=True):
        assert (m.sum() > 0) == (r.label != "normal"), r


def test_variants_time_channels_last_and_compile_against_the_default(bench, monkeypatch):
    """Alternating rounds of the default, channels_last and compile steps for pretraining and
    fine-tuning; ratios against the default's median; a variant that fails is recorded with
    its error. torch.compile is replaced by eager execution here (compiling takes minutes)."""
    from medssl.bench import variants as V
    from medssl.bench.run import BenchConfig, pretrain_config
    from medssl.bench.synthetic import synthetic_database

    db = synthetic_database(16, 12)
    pcfg = pretrain_config("simclr", BenchConfig(batch_size=BATCH, device="cpu"))
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: None)
    out = V.variant_ratios(db, pcfg, warmup=1, steps=STEPS, rounds=ROUNDS, batch_size=BATCH)
    assert set(out) == {"pretrain", "finetune"}
    for stage in out.values():
        d = stage["default"]
        assert len(d["rounds"]) == ROUNDS and d["rate"] == pytest.approx(
            sorted(d["rounds"])[0] / 2 + sorted(d["rounds"])[1] / 2, abs=0.02
        )
        for name in V.VARIANTS:
            v = stage[name]
            assert len(v["rounds"]) == ROUNDS and v["startup_s"] >= 0
            assert v["ratio"] == pytest.approx(v["rate"] / d["rate"], abs=2e-3)
        # eager "compile": the default's arithmetic exactly; NHWC: the same up to rounding
        assert stage["compile"]["update_cosine"] > 0.99
        assert stage["channels_last"]["update_cosine"] > 0.5

    def no_compiler(self, *a, **k):
        raise RuntimeError("no C++ compiler found\nmore lines")

    monkeypatch.setattr(torch.nn.Module, "compile", no_compiler)
    out = V.variant_ratios(
        db, pcfg, variants=("compile",), warmup=1, steps=STEPS, rounds=1, batch_size=BATCH
    )
    assert out["pretrain"]["compile"] == {"error": "RuntimeError: no C++ compiler found"}
    assert out["finetune"]["default"]["rate"] > 0  # the bench goes on
    r = BenchResult.from_json({**bench[0], "variants": out, "rounds": 1})
    assert "compile could not run here (RuntimeError: no C++ compiler found)" in format_result(r)


def test_bench_refuses_unknown_variants_and_negative_useful_steps():
    from medssl.bench.run import BenchConfig, run_bench

    with pytest.raises(ConfigError, match="unknown variants"):
        run_bench(BenchConfig(variants=("fast",)))
    with pytest.raises(ConfigError, match="--useful-steps >= 0"):
        run_bench(BenchConfig(useful_steps=-1))
