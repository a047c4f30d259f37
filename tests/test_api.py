"""The notebook API, the command line's help on every verb, and its one-line errors."""

from __future__ import annotations

import pydoc
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import medssl
from dbfactory import save_db
from medssl.artifacts import save_npy, save_torch, write_csv, write_json
from medssl.cli.main import main
from medssl.data.database import Database
from medssl.engine.monitor import embed_images
from medssl.errors import ConfigError, DataError
from medssl.models.encoder import build_encoder, encoder_state_dict

README = Path(__file__).resolve().parents[1] / "README.md"


def tiny_db() -> Database:
    """4 pretraining images (110 px), 6 finetuning images (64 px; 2 of them test)."""
    rng = np.random.default_rng(0)
    ft = rng.integers(0, 256, (6, 64, 64), dtype=np.uint8)
    return Database.from_arrays(
        pretrain=rng.integers(0, 256, (4, 110, 110), dtype=np.uint8),
        pretrain_split=["train", "train", "train", "val"],
        finetune=ft,
        finetune_masks=np.zeros_like(ft),
        finetune_labels=[0, 1, 2, 0, 1, 2],
        finetune_split=["train", "train", "val", "val", "test", "test"],
        name="US1",
    )


def random_encoder(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_encoder().eval()


def test_api_names_resolve():
    for name in medssl.__all__:
        assert getattr(medssl, name) is not None
    with pytest.raises(AttributeError):
        medssl.not_a_thing  # noqa: B018


def test_help_shows_the_documented_api():
    assert set(medssl.__all__) <= set(dir(medssl)) and "__getattr__" not in dir(medssl)
    text = pydoc.render_doc(medssl, renderer=pydoc.plaintext)
    for name in ("load_database", "load_encoder", "embed", "run_pretraining", "build_report"):
        assert re.search(rf"^    {name}\(", text, re.M), name  # listed under FUNCTIONS
    assert "class Database" in text
    assert "The 1-channel torchvision ResNet-18 of a run" in text  # load_encoder's docstring
    assert "__getattr__" not in text


def test_readme_notebook_example_runs_verbatim(tmp_path, monkeypatch, capsys):
    section = README.read_text(encoding="utf-8").split("## From a notebook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) == 5
    save_db(tiny_db(), tmp_path / "data" / "US1")
    save_torch(
        tmp_path / "runs" / "simclr-us1" / "encoder.pt", encoder_state_dict(random_encoder())
    )
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    assert scope["z"].shape == (2, 512) and scope["z"].dtype == np.float32
    assert np.isfinite(scope["z"]).all() and not scope["encoder"].training
    out = capsys.readouterr().out
    assert out.startswith("<Database US1: pretrain 4 (train 3, val 1) 110x110 px; finetune 6 ")
    assert "(2, 512)" in out


def test_database_repr_is_one_short_line(tmp_path):
    db = Database.load(save_db(tiny_db(), tmp_path / "US1"))
    text = repr(db)
    assert text == (
        "<Database US1: pretrain 4 (train 3, val 1) 110x110 px; finetune 6 (train 2, val 2, "
        f"test 2) 64x64 px; checksum {db.checksum[:8]}; {tmp_path / 'US1'}>"
    )
    assert repr(tiny_db()).endswith("; in memory>")


def test_embed_takes_numpy_tensors_and_databases():
    db, encoder = tiny_db(), random_encoder()
    images = db.images("finetune", "test")  # uint8 numpy (2, 64, 64)
    expected = embed_images(encoder, torch.from_numpy(images)).numpy()
    assert expected.shape == (2, 512)
    np.testing.assert_array_equal(medssl.embed(encoder, images), expected)
    np.testing.assert_array_equal(medssl.embed(encoder, torch.from_numpy(images)), expected)
    np.testing.assert_array_equal(medssl.embed(encoder, images[:, None]), expected)
    np.testing.assert_array_equal(medssl.embed(encoder, db, split="test"), expected)
    floats = images.astype(np.float64) / 255.0  # medssl.data.imaging's [0, 1] grey
    np.testing.assert_allclose(medssl.embed(encoder, floats), expected, rtol=1e-4, atol=1e-5)
    assert medssl.embed(encoder, db, role="pretrain").shape == (4, 512)  # 110 px, resized to 64
    assert medssl.embed(encoder, images[:0]).shape == (0, 512)
    for bad, match in [
        (images[0], "expected square images"),
        (images[:, :, :60], "expected square images"),
        (images.astype(np.int32), "expected uint8"),
        (images.astype(np.float32), r"float images in \[0, 255\]: expected \[0, 1\]"),
    ]:
        with pytest.raises(ConfigError, match=match):
            medssl.embed(encoder, bad)


def test_load_encoder_from_a_file_a_pretraining_run_and_a_finetuning_run(tmp_path):
    trained = random_encoder(seed=1)
    state = encoder_state_dict(trained)
    save_torch(tmp_path / "pre" / "encoder.pt", state)
    ft_state = {f"model.encoder.{k}": v for k, v in state.items()}
    ft_state["model.head.weight"] = torch.zeros(3, 512)
    save_torch(tmp_path / "ft" / "best.pt", {"model": ft_state, "epoch": 1})
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = trained(x)
    sources = (tmp_path / "pre" / "encoder.pt", tmp_path / "pre", str(tmp_path / "ft"))
    for source in (*sources, tmp_path / "ft" / "best.pt"):
        encoder = medssl.load_encoder(source)
        assert isinstance(encoder, torch.nn.Module) and not encoder.training
        with torch.no_grad():
            torch.testing.assert_close(encoder(x), expected)
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ConfigError, match="a folder with no encoder.pt, best.pt, encoder.safetensors"
    ):
        medssl.load_encoder(tmp_path / "empty")
    with pytest.raises(ConfigError, match="no such file or folder"):
        medssl.load_encoder(tmp_path / "nothing.pt")


def test_load_database_refuses_an_edited_folder(tmp_path):
    path = Path(save_db(tiny_db(), tmp_path / "US1"))
    masks = tiny_db().arrays["finetune_masks"].copy()
    masks[0, 0, 0] = 1
    save_npy(path / "finetune_masks.npy", masks)
    with pytest.raises(DataError, match=f"{re.escape(str(path))}: contents differ"):
        medssl.load_database(path)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["data"],
        ["data", "synth"],
        ["data", "build"],
        ["data", "describe"],
        ["pretrain"],
        ["finetune"],
        ["benchmark"],
        ["report"],
        ["bench"],
        ["speed"],
    ],
)
def test_every_verb_has_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage: medssl" in capsys.readouterr().out


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_bench_and_benchmark_say_what_they_are_not(capsys):
    top = _help([], capsys)
    assert "not the benchmark of methods: see `medssl benchmark`" in top
    assert "(not a speed test: see `medssl bench`)" in top
    assert "not the benchmark of methods" in _help(["bench"], capsys)
    assert "`medssl speed` is the same command" in _help(["speed"], capsys)
    assert "not a speed test: that is `medssl bench`" in _help(["benchmark"], capsys)


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert main(["data", "describe", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("medssl data: error:")
        and "not a medssl database (no database.json)" in err
        and "Traceback" not in err
    )


def _report_error(path, capsys) -> str:
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medssl report: error:") and "Traceback" not in err
    assert err.count("\n") == 1
    return err


def test_report_refuses_a_single_runs_folder(tmp_path, capsys):
    bench = tmp_path / "bench"
    run = bench / "runs" / "ft-US1-random-s0"
    write_json(run / "done.json", {"task": "classification"})
    write_csv(run / "results.csv", [], ["run_id", "metric", "value"])
    write_json(tmp_path / "alone" / "done.json", {"task": "classification"})
    write_csv(tmp_path / "alone" / "results.csv", [], ["run_id", "metric", "value"])
    write_json(tmp_path / "pre" / "done.json", {"method": "simclr"})
    err = _report_error(tmp_path / "alone", capsys)
    assert f"{tmp_path / 'alone'}: a fine-tuning run folder (from `medssl finetune`;" in err
    assert "pass a benchmark folder (the --out of `medssl benchmark`)" in err
    assert "a pretraining run folder (from `medssl pretrain`;" in _report_error(
        tmp_path / "pre", capsys
    )
    assert "no results.csv: not a benchmark folder" in _report_error(tmp_path, capsys)
    write_json(bench / "plan.json", [])
    assert f"belongs to the benchmark {bench}: `medssl report {bench}`" in _report_error(
        run, capsys
    )
    assert "no run of this benchmark has finished yet" in _report_error(bench, capsys)
    assert not (tmp_path / "alone" / "report").exists()
    from medssl.errors import DataError
    from medssl.reporting.report import build_report

    with pytest.raises(DataError, match="a fine-tuning run folder"):  # the API refuses it too
        build_report(tmp_path / "alone")
    assert not (tmp_path / "alone" / "report").exists()
