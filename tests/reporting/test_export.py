"""`medssl export RUN`: the encoder as safetensors and .pt that medssl, torchvision, timm and
segmentation_models_pytorch load, with a model card that names the run's settings."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import timm
import torch
import torchvision
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

import medssl
from medssl.artifacts import read_json
from medssl.cli.main import main
from medssl.reporting.inputs import read_results


def test_export_loads_in_four_libraries_and_its_card_names_the_settings(
    tiny_pretraining, tmp_path, capsys
):
    run = tiny_pretraining.out
    out = tmp_path / "export"
    assert main(["export", str(run), "--out", str(out)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "encoder.pt",
        "encoder.safetensors",
    ]
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    reference = medssl.load_encoder(run)  # the run's own encoder.pt
    with torch.no_grad():
        expected = reference(x)

    for file in ("encoder.safetensors", "encoder.pt", "."):  # medssl: either file, the folder
        with torch.no_grad():
            torch.testing.assert_close(medssl.load_encoder(out / file)(x), expected)
    state = load_file(out / "encoder.safetensors")
    assert state.keys() == torch.load(out / "encoder.pt", weights_only=True).keys()

    tv = torchvision.models.resnet18(num_classes=3)
    tv.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    missing, unexpected = tv.load_state_dict(
        torch.load(out / "encoder.pt", weights_only=True), strict=False
    )
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    tv.fc = torch.nn.Identity()

    tm = timm.create_model("resnet18", pretrained=False, in_chans=1, num_classes=0)
    tm.load_state_dict(state, strict=True)

    unet = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    unet.encoder.load_state_dict(state, strict=True)
    for model in (tv, tm, unet.encoder):
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(tv(x), expected)
        torch.testing.assert_close(tm(x), expected)
        torch.testing.assert_close(unet.encoder(x)[-1].mean(dim=(2, 3)), expected)

    with safe_open(out / "encoder.safetensors", framework="pt") as f:
        meta = f.metadata()
    assert meta["architecture"] == "resnet18" and meta["in_chans"] == "1"
    assert meta["method"] == "simclr" and meta["database"] == "phantoms"

    card = (out / "README.md").read_text()
    config = yaml.safe_load((run / "config.yaml").read_text())
    done = read_json(run / "done.json")
    assert card.startswith("# simclr ResNet-18 encoder pretrained on phantoms (medssl)")
    for line in (
        "| method | simclr |",
        f"| batch size | {config['batch_size']} |",
        f"| epochs | {config['trainer']['epochs']} |",
        f"| seed | {config['seed']} |",
        f"lr {config['optimizer']['lr']}, weight decay {config['optimizer']['weight_decay']}",
        f"{tiny_pretraining.init_file.resolve()} (SHA-256 `{done['init_weights']['sha256']}`",
        f"{done['epochs_run']} epochs, {done['final']['step']} optimizer steps",
        done["health"]["message"],
        "| finetune | memory | 3 | 3 | 3 | 9 |",  # the database's sources (table 5.2)
    ):
        assert line in card, line
    assert yaml.safe_dump(config, sort_keys=False).rstrip() in card  # the whole config
    assert "Benchmark results" not in card  # a run of its own


def test_export_refuses_what_is_not_a_finished_pretraining_run(tiny_pretraining, tmp_path, capsys):
    (tmp_path / "ft").mkdir()
    (tmp_path / "ft" / "results.csv").write_text("")
    assert main(["export", str(tmp_path / "ft")]) == 2
    err = capsys.readouterr().err
    assert "no encoder.pt here (a fine-tuning run)" in err and "Traceback" not in err
    out = tmp_path / "again"
    assert main(["export", str(tiny_pretraining.out), "--out", str(out)]) == 0
    assert main(["export", str(tiny_pretraining.out), "--out", str(out)]) == 2
    assert "already exists; choose another --out or pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(tiny_pretraining.out), "--out", str(out), "--overwrite"]) == 0


def test_export_inside_a_benchmark_lists_its_results_for_the_encoder(smoke_benchmark, tmp_path):
    out = smoke_benchmark.out
    plan = read_json(out / "plan.json")
    encoder = next(r for r in plan if r["kind"] == "pretrain")
    evaluations = [r for r in plan if r.get("encoder_run") == encoder["run_id"]]
    assert (
        main(["export", str(out / "runs" / encoder["run_id"]), "--out", str(tmp_path / "e")]) == 0
    )
    card = (tmp_path / "e" / "README.md").read_text()
    section = card.split("## Benchmark results", 1)[1]
    assert f"({len(evaluations)} of {len(evaluations)} finished; test split" in section
    lines = section.splitlines()
    header = next(line for line in lines if line.startswith("| database |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows = [
        dict(zip(columns, [c.strip() for c in line.strip("|").split("|")], strict=True))
        for line in lines
        if line.startswith(f"| {encoder['database']} |")
    ]
    assert len(rows) == len(evaluations) and "mcc" in columns
    ids = {r["run_id"] for r in evaluations}
    mcc = sorted(
        f"{r['value']:.4g}"
        for r in read_results(out / "results.csv")
        if r["run_id"] in ids and r["split"] == "test" and r["metric"] == "mcc"
    )
    assert sorted(r["mcc"] for r in rows if r["mcc"]) == mcc  # read, not computed again
    report = out / "report" / "report.html"
    assert (str(report) if report.is_file() else f"medssl report {out}") in section
