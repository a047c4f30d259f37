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
