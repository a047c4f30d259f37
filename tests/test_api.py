"""The notebook API and the command line's help on every verb."""

import pytest

import medssl
from medssl.cli.main import main


def test_api_names_resolve():
    for name in medssl.__all__:
        assert getattr(medssl, name) is not None
    with pytest.raises(AttributeError):
        medssl.not_a_thing  # noqa: B018


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
    ],
)
def test_every_verb_has_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage: medssl" in capsys.readouterr().out


def test_errors_are_one_line_without_traceback(tmp_path, capsys):
    assert main(["data", "describe", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("medssl data: error:")
        and "database.json missing" in err
        and "Traceback" not in err
    )
