"""A self-contained HTML page: inline CSS, images as base64 data URIs, no scripts, no links out.

The page opens offline from a single file and can be mailed or archived as is. Pure string
building: every function returns HTML text and escapes what it is given.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl.reporting.tables import Table

CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .8em 0; font-size: 0.85em; }
caption { caption-side: top; text-align: left; font-weight: bold; padding: .3em 0; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; white-space: nowrap; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
.note { color: #555; font-size: 0.9em; }
.supported { color: #0a5d00; font-weight: bold; }
.noise { color: #555; }
.warning { background: #fff3cd; border-left: 4px solid #c77c00; padding: .5em .8em; }
.question { font-size: 1.1em; font-style: italic; }
figure { display: inline-block; margin: .5em; vertical-align: top; text-align: center; }
figure img { max-width: 360px; border: 1px solid #ddd; }
figcaption { font-size: 0.8em; color: #444; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: 0.8em; }
nav ul { columns: 2; }
"""


@dataclass(frozen=True)
class Section:
    """A titled part of the page; ``body`` is HTML."""

    anchor: str
    title: str
    body: str


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def table_html(table: Table) -> str:
    """A ``<table>`` with caption and the table's notes below it."""
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    out = (
        f'<table id="{esc(table.name)}"><caption>{esc(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    if not table.rows:
        out += '<p class="note">(no rows)</p>'
    if table.notes:
        out += f'<p class="note">{esc(table.notes)}</p>'
    return out


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def figure_html(path: str | Path, caption: str) -> str:
    """An ``<img>`` holding the PNG file's bytes, with a caption."""
    uri = data_uri(Path(path).read_bytes())
    return f'<figure><img src="{uri}" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'


def mapping_html(data: Mapping[str, Any], caption: str = "") -> str:
    """A two-column key/value table (nested values shown as JSON)."""
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(v if isinstance(v, (str, int, float)) else json.dumps(v, sort_keys=True))}</td></tr>"
        for k, v in data.items()
    )
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<tbody>{rows}</tbody></table>"


def details_html(summary: str, text: str) -> str:
    """A collapsible ``<pre>`` block (native HTML, no script)."""
    return f"<details><summary>{esc(summary)}</summary><pre>{esc(text)}</pre></details>"


def paragraph(text: str, cls: str = "") -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<p{attr}>{esc(text)}</p>"


def bullet_list(items: Sequence[str], cls: str = "") -> str:
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<ul{attr}>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def page(title: str, sections: Sequence[Section], subtitle: str = "") -> str:
    """The whole document: title, table of contents, sections."""
    toc = "".join(f'<li><a href="#{esc(s.anchor)}">{esc(s.title)}</a></li>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        paragraph(subtitle, "note") if subtitle else "",
        f"<nav><ul>{toc}</ul></nav>",
    ]
    for s in sections:
        parts.append(f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{s.body}</section>')
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"
