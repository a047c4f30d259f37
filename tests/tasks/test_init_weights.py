"""Runs that start from weights you bring: `medssl finetune --init` a torchvision ResNet-18
file through the real CLI, and SSL pretraining from a timm one (``pretrain.init``)."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torchvision

from dbfactory import make_db, save_db
from medssl.artifacts import read_json
from medssl.cli.main import main
from medssl.errors import ConfigError
from medssl.tasks import pretrain as pt


def test_finetune_cli_starts_from_a_torchvision_resnet18(tmp_path, capsys):
    import medssl

    db = save_db(make_db(4, 2, 2, size=32), tmp_path / "db")
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    init = tmp_path / "resnet18_imagenet_layout.pth"
    torch.save(state, init)
    out = tmp_path / "run"
    argv = ["finetune", "--task", "classification", "--database", db, "--init", str(init),
            "--out", str(out), "--preset", "demo", "--epochs", "1", "--freeze-encoder",
            "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    done = read_json(out / "done.json")
    assert done["init_weights"] == {
        "file": str(init),
        "sha256": hashlib.sha256(init.read_bytes()).hexdigest(),
        "format": "torch",
        "layout": "torchvision/timm ResNet",
        "conv1_folded_from": 3,
        "dropped": ["fc.bias", "fc.weight"],
    }
    # the frozen encoder kept what it started from: conv1 the channel sum of the file's
    encoder = medssl.load_encoder(out)  # the run folder's best.pt
    expected = state["conv1.weight"].sum(dim=1, keepdim=True)
    torch.testing.assert_close(encoder.conv1.weight.detach(), expected, rtol=0, atol=0)
    assert torch.equal(encoder.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_finetune_cli_refuses_a_resnet34_before_writing_anything(tmp_path, capsys):
    db = save_db(make_db(4, 2, 2, size=32), tmp_path / "db")
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    argv = ["finetune", "--task", "classification", "--database", db, "--init",
            str(tmp_path / "r34.pth"), "--out", str(tmp_path / "run"), "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'r34.pth'}: does not fit medssl's 1-channel ResNet-18 encoder" in err
    assert "unexpected keys: layer1.2." in err and "ResNet-34 or deeper" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_pretraining_from_a_timm_resnet18(tiny_pretraining):
    run, state = tiny_pretraining.out, tiny_pretraining.init_state
    done = read_json(run / "done.json")
    assert done["init_weights"]["sha256"] == (
        hashlib.sha256(tiny_pretraining.init_file.read_bytes()).hexdigest()
    )
    assert done["init_weights"]["format"] == "safetensors"
    assert done["init_weights"]["conv1_folded_from"] == 3
    config = (run / "config.yaml").read_text()
    assert f"init: {tiny_pretraining.init_file.resolve()}" in config
    # the run's initial encoder is the file's: what the method (and its copies) start from
    cfg = pt.resolve_config("byol", overrides=[f"init={tiny_pretraining.init_file}"])
    method, _ = pt.build_training(cfg, torch.device("cpu"))
    expected = state["conv1.weight"].sum(dim=1, keepdim=True)
    for encoder in (method.encoder, method.target_encoder):
        torch.testing.assert_close(encoder.conv1.weight.detach(), expected, rtol=0, atol=0)


def test_pretrain_init_is_saved_and_checked_at_once(tmp_path):
    # saved with every config (the pretraining ids changed once with the pool and budget anyway)
    assert pt.saved_config(pt.resolve_config("simclr"))["init"] == "random"
    with pytest.raises(ConfigError, match="init .*nope.pt: no such file or folder"):
        pt.resolve_config("simclr", overrides=[f"init={tmp_path / 'nope.pt'}"])
    torch.save({"conv1.weight": torch.zeros(64, 1, 7, 7)}, tmp_path / "part.pt")
    cfg = pt.resolve_config("simclr", overrides=[f"init={tmp_path / 'part.pt'}"])
    with pytest.raises(ConfigError, match="missing keys: bn1.bias"):
        pt.build_training(cfg, torch.device("cpu"))


def test_benchmark_plans_a_brought_arm_hashed_by_content(tmp_path):
    """``inits: [random, NAME=PATH]``: the arm's fine-tunes and probes, no pretraining run, its
    run ids from the file's bytes (a copy elsewhere plans the same runs, other weights do not);
    a missing baseline, a taken name, a bad entry and a wrong architecture are named errors."""
    from dbfactory import make_db
    from medssl.tasks.benchmark import _plan_text, plan_runs, resolve_benchmark

    db = make_db(6, 6, 6, size=32)
    torch.manual_seed(0)
    first = tmp_path / "a" / "resnet18.pth"
    first.parent.mkdir()
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), first)
    copy = tmp_path / "copy.pth"
    copy.write_bytes(first.read_bytes())
    other = tmp_path / "other.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), other)
    base = ["methods=[simclr]", "tasks=[classification]", "evaluations=[finetune, linear]"]

    def plan(inits: str):
        cfg = resolve_benchmark("smoke", [*base, f"inits={inits}"], seeds=2, folds=None)
        return plan_runs(cfg, {"memory": db})

    without = plan("[random]")
    runs = plan(f"[random, mine={first}]")
    mine = [r for r in runs if r.kind != "pretrain" and r.init == "mine"]
    assert len(mine) == 2 * 2  # seeds x evaluations
    assert sum(r.kind == "pretrain" for r in runs) == 2  # simclr's 2 seeds: none for mine
    assert {r.weights.file for r in mine} == {str(first.resolve())}
    sha = hashlib.sha256(first.read_bytes()).hexdigest()
    assert all(r.weights.sha256 == sha and r.encoder_run is None for r in mine)
    assert {r.run_id for r in without} < {r.run_id for r in runs}  # the other arms keep ids
    entry = mine[0].plan_entry()
    assert entry["weights"] == str(first.resolve()) and entry["weights_sha256"] == sha
    assert [r.run_id for r in plan(f"[random, mine={copy}]")] == [r.run_id for r in runs]
    assert set(r.run_id for r in plan(f"[random, mine={other}]")) & {r.run_id for r in mine} == set()
    assert f"mine = {first.resolve()}" in _plan_text(runs, {"memory": db}, 60.0, 1)

    with pytest.raises(ConfigError, match="random init is every comparison's baseline"):
        plan(f"[mine={first}]")
    with pytest.raises(ConfigError, match="'simclr' is taken"):
        plan(f"[random, simclr={first}]")
    with pytest.raises(ConfigError, match="expected random or NAME=PATH"):
        plan(f"[random, {first}]")
    with pytest.raises(ConfigError, match=f"inits: mine {tmp_path / 'none.pth'}: no such file"):
        plan(f"[random, mine={tmp_path / 'none.pth'}]")
    r34 = tmp_path / "r34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), r34)
    with pytest.raises(ConfigError, match="does not fit medssl's 1-channel ResNet-18 encoder"):
        plan(f"[random, r34={r34}]")
