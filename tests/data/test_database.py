"""The Database's lookups by role and split (its loading and checks: test_database_verify.py)."""

from __future__ import annotations

from pathlib import Path

from medssl.data.database import Database


class _Unscannable(list):
    """A manifest that fails the test when anything iterates over it."""

    def __iter__(self):
        raise AssertionError("a lookup scanned the whole manifest")


def test_lookups_read_rows_grouped_once_in_array_order(tiny_db):
    """tiny_db: finetuning rows 0-8 train, 9-17 val, 18-26 test, label = row % 3; pretraining
    rows 0-5 train, 6-7 val. A manifest in any order gives the same lookups, in array order,
    from groups built when the Database is made: no lookup scans the manifest again."""
    db = Database(None, tiny_db.meta, list(reversed(tiny_db.manifest)), tiny_db.arrays)
    db.manifest = _Unscannable(db.manifest)
    assert [r.index for r in db.rows("finetune", "val")] == list(range(9, 18))
    assert [r.index for r in db.rows("finetune")] == list(range(27))
    assert db.indices("pretrain", "val").tolist() == [6, 7]
    assert db.labels("finetune", "test").tolist() == [i % 3 for i in range(18, 27)]
    assert db.patients("finetune", "train") == [f"f{i}" for i in range(9)]
    assert (db.images("finetune", "test") == tiny_db.arrays["finetune"][18:]).all()
    assert repr(db).startswith("<Database tiny: pretrain 8 (train 6, val 2) 48x48 px; ")
    rows = db.rows("finetune", "train")
    rows.clear()  # a caller's list: the database's groups stay whole
    assert len(db.rows("finetune", "train")) == 9


def test_a_database_json_path_opens_its_database(tmp_path):
    """``--database DB/database.json`` (issue 26: it said "no database.json") opens DB."""
    from dbfactory import make_db, save_db

    folder = Path(save_db(make_db(2, 1, 1, size=32), tmp_path / "db"))
    assert Database.load(folder / "database.json").checksum == Database.load(folder).checksum
