"""What the CLI says when it cannot go on (issue 26): an ``--out`` that cannot be written is a
named error from argparse before anything loads (never a traceback from deep inside, nothing
written), and an interrupt says how to resume."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from medssl.cli.main import main

VERBS = {
    "data build": ["data", "build", "--preset", "demo", "--out"],
    "data synth": ["data", "synth", "--out"],
    "pretrain": ["pretrain", "--method", "simclr", "--database", "db", "--out"],
    "finetune": ["finetune", "--task", "classification", "--database", "db", "--out"],
    "benchmark --dry-run": ["benchmark", "--preset", "smoke", "--dry-run", "--out"],
    "export": ["export", "run", "--out"],
}


def _run(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capsys.readouterr().err


@pytest.mark.parametrize("verb", list(VERBS))
def test_out_that_is_a_file_is_refused_by_name(verb, tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("mine")
    code, err = _run([*VERBS[verb], str(existing)], capsys)
    assert code == 2
    assert f"argument --out: {existing} is a file; expected a folder" in err
    assert "Traceback" not in err and existing.read_text() == "mine"
    code, err = _run([*VERBS[verb], str(existing / "run")], capsys)  # under a file
    assert code == 2 and f"{existing} is a file, so nothing can be written under it" in err


def test_survey_out_must_be_a_file_name(tmp_path, capsys):
    code, err = _run(
        ["data", "survey", "--root", f"busi={tmp_path}", "--out", str(tmp_path)], capsys
    )
    assert code == 2 and f"argument --out: {tmp_path} is a folder; expected a file name" in err


def _read_only_mount(folder) -> list[str] | None:
    """The shell prefix that runs a command with ``folder`` bind-mounted read-only in a private
    mount namespace (root, unshare, mount), or None where this machine does not allow it."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return None
    script = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder} && "
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", script + f"! touch {folder}/probe"],
        capture_output=True,
    )  # fmt: skip
    if probe.returncode != 0 or (folder / "probe").exists():
        return None
    return ["unshare", "-m", "sh", "-c", script + 'exec "$0" "$@"']


@pytest.mark.parametrize("verb", ["data build", "finetune", "benchmark --dry-run"])
def test_out_on_a_read_only_filesystem_is_refused_by_name(verb, tmp_path):
    prefix = _read_only_mount(tmp_path)
    if prefix is None:
        pytest.skip("no read-only bind mount here (needs root, unshare and mount)")
    out = tmp_path / "out"
    argv = [*prefix, sys.executable, "-m", "medssl.cli.main", *VERBS[verb], str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"argument --out: {out}: {tmp_path} cannot be written (a read-only filesystem" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr and not out.exists()


@pytest.mark.parametrize(("verb", "says"), [("finetune", "with --resume"), ("benchmark", "rerun")])
def test_an_interrupt_says_how_to_resume(verb, says, monkeypatch, capsys, tmp_path):
    """Ctrl-C: a standalone run names --resume (a plain rerun is refused), the benchmark a rerun."""
    from medssl.cli import benchmark, finetune

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr({"finetune": finetune, "benchmark": benchmark}[verb], "_run", interrupted)
    argv = {"finetune": VERBS["finetune"], "benchmark": ["benchmark", "--preset", "smoke", "--out"]}
    assert main([*argv[verb], str(tmp_path / "out")]) == 130
    err = capsys.readouterr().err
    assert f"medssl {verb}: interrupted;" in err and says in err


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("pretrain.trainer.epochs=-2", "pretrain settings of simclr: trainer.epochs: expected an"),
        ("finetune.trainer.epochs=0", "finetune settings (classification): trainer.epochs:"),
        ("finetune.optimizer={lr: x}", "optimizer.lr: expected float, got 'x'"),
        ("methods=[simclrr]", "unknown SSL method 'simclrr'"),
        ("tasks=[detection]", "benchmark tasks ['detection']"),
        ("inits=[random, mine=/nowhere.pth]", "inits: mine /nowhere.pth: no such file"),
    ],
)
def test_a_bad_benchmark_setting_fails_before_anything_is_written(setting, says, tmp_path, capsys):
    """Every --set value is resolved before benchmark.json is written or a database built (it
    once planned runs at "-1 s", or failed minutes in, leaving files)."""
    out = tmp_path / "bench"
    argv = ["benchmark", "--preset", "smoke", "--dry-run", "--set", setting, "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not out.exists()


def test_a_standalone_run_takes_its_epochs_once(tmp_path, capsys):
    """``--epochs 1`` beside ``--set trainer.epochs=-1`` is an error (the flag once won
    silently), and a count below one is one on its own."""
    from dbfactory import make_db, save_db

    db = save_db(make_db(2, 1, 1, size=32), tmp_path / "db")
    argv = ["finetune", "--task", "classification", "--database", db, "--epochs", "1"]
    argv += ["--out", str(tmp_path / "run"), "--set", "trainer.epochs=-1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--epochs 1 and --set trainer.epochs=-1 both give the epochs; give one" in err
    assert main([a for a in argv if a not in ("--epochs", "1")]) == 2
    assert "trainer.epochs: expected an integer >= 1, got -1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
