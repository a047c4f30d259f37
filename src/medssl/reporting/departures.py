"""The departures of medssl's thesis presets from the thesis, as one table (docs and report).

The table is ``presets/thesis_departures.yaml`` (setting, thesis, medssl, why); ``docs/thesis.md``
shows it as rendered here (a test keeps them equal), and the report of a benchmark run with a
thesis preset shows it in its provenance.
"""

from __future__ import annotations

from importlib import resources

import yaml

from medssl.errors import ConfigError
from medssl.reporting.tables import Table

COLUMNS = ("setting", "thesis", "medssl", "why")


def departures_table() -> Table:
    text = (resources.files("medssl") / "presets" / "thesis_departures.yaml").read_text("utf-8")
    items = yaml.safe_load(text) or []
    rows = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != set(COLUMNS):
            raise ConfigError(
                f"presets/thesis_departures.yaml item {i}: expected the keys {list(COLUMNS)}"
            )
        rows.append(tuple(str(item[c]) for c in COLUMNS))
    return Table(
        name="table_thesis_departures",
        title="Departures of the thesis presets from the thesis",
        columns=COLUMNS,
        rows=tuple(rows),
        notes="Every other setting of the thesis presets is the thesis's (§5.1-5.3).",
    )
