"""Every artifact file name has one home: the run and benchmark files in ``medssl.runfiles``,
the database folder's in ``medssl.data.database``; no other module spells one out."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import medssl
from medssl import runfiles
from medssl.data import database

SRC = Path(medssl.__file__).parent


def _names(module) -> set[str]:
    """The module's constants that name a file (``NAME = "x.ext"``)."""
    return {
        v for k, v in vars(module).items() if k.isupper() and isinstance(v, str) and "." in v[1:]
    }


HOMES = {SRC / "runfiles.py": _names(runfiles), SRC / "data" / "database.py": {
    database.META_FILE, database.MANIFEST_FILE, database.SKIPPED_FILE
}}  # fmt: skip


def _literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant in ``path`` except docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings
    ]  # fmt: skip


def test_homes_define_the_names():
    assert {"done.json", "encoder.pt", "results.csv", "report.html"} <= HOMES[SRC / "runfiles.py"]
    assert runfiles.predictions_file("test") == "predictions_test.npz"
    assert runfiles.per_image_file("val") == "per_image_val.csv"


@pytest.mark.parametrize("home", sorted(HOMES), ids=lambda p: p.name)
def test_no_module_spells_out_a_name_of_its_home(home):
    names = HOMES[home]
    found = [
        f"{path.relative_to(SRC)}:{line}: {text!r}"
        for path in sorted(SRC.rglob("*.py"))
        if path != home
        for line, text in _literals(path)
        if text in names
    ]
    assert not found, f"import these names from {home.relative_to(SRC)}: {found}"
