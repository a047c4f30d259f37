"""A self-contained HTML page: inline CSS, images as base64 data URIs, no scripts, no links out.

The page opens offline from a single file and can be mailed or archived as is. Pure string
building: every function returns HTML text and escapes what it is given.
"""

from __future__ import annotations

import base64
import hashlib
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
figure { display: inline-block; margin: .5em; vertical-align: top; text-align: center;
         max-width: 260px; }
figure img { border: 1px solid #ddd; }
figure.wide { display: block; max-width: 100%; }
figure.wide img { max-width: 100%; }
figcaption { font-size: 0.8em; color: #444; }
.scroll { overflow-x: auto; max-width: 100%; }
.lightbox { display: none; position: fixed; inset: 0; background: rgba(0, 0, 0, .85);
            z-index: 10; align-items: center; justify-content: center; }
.lightbox:target { display: flex; }
.lightbox img { max-width: 95vw; max-height: 90vh; background: white; }
.lightbox span { color: white; position: absolute; bottom: 1em; font-size: 0.9em; }
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
        f'<div class="scroll"><table id="{esc(table.name)}"><caption>{esc(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
    if not table.rows:
        out += '<p class="note">(no rows)</p>'
    if table.notes:
        out += f'<p class="note">{esc(table.notes)}</p>'
    return out


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def shrink_png(png: bytes, max_width: int, colours: int = 256) -> bytes:
    """The PNG at most ``max_width`` wide (Lanczos), in a ``colours`` palette: plots and
    example panels lose nothing a reader sees and weigh 3-5x less (thumbnails use 64)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("RGB")
        if im.width > max_width:
            im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
        im = im.quantize(colours, method=Image.Quantize.MEDIANCUT)
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


THUMB_WIDTH = 240  # px: a thumbnail in the appendices
THUMB_COLOURS = 64  # a thumbnail's palette: enough at 240 px, a third lighter than 256
FULL_WIDTH = 1100  # px: the enlarged view


def figure_html(path: str | Path, caption: str, *, wide: bool = False) -> str:
    """A figure: a thumbnail that enlarges on click (``wide``: shown at the page's width).

    The enlarged view is a CSS ``:target`` overlay, no script; both images are embedded.
    """
    png = Path(path).read_bytes()
    if wide:
        uri = data_uri(shrink_png(png, FULL_WIDTH))
        return (
            f'<figure class="wide"><img src="{uri}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>"
        )
    key = "fig-" + hashlib.sha1(str(path).encode() + png[:64]).hexdigest()[:10]
    thumb = data_uri(shrink_png(png, THUMB_WIDTH, THUMB_COLOURS))
    full = data_uri(shrink_png(png, FULL_WIDTH))
    return (
        f'<figure><a href="#{key}"><img src="{thumb}" alt="{esc(caption)}"></a>'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
        f'<div class="lightbox" id="{key}"><a href="#_"><img src="{full}" alt="{esc(caption)}"></a>'
        f"<span>{esc(caption)} (click to close)</span></div>"
    )


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
