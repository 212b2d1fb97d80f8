"""The report's one HTML page: the summary table, the plots and the data files."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from market.report.data import SCHEMAS
from market.report.plots import PLOTS
from market.report.plots_grid import GRID_PLOTS
from market.report.summary import Summary, story

__all__ = ["write_page"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1050px; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
td { padding: 0.25em 1em; border-bottom: 1px solid #ddd; }
td:first-child { color: #555; }
img { max-width: 100%; margin: 1em 0 2em; border: 1px solid #eee; }
"""


def write_page(
    folder: Path,
    summary: Summary,
    *,
    title: str,
    token_decimals: int = 6,
    extra_plots: list[str] | None = None,
    pages: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``folder/index.html``: what happened, the figures, the plots and the data files.

    ``extra_plots`` names the grid plots (:data:`GRID_PLOTS`) written beside
    the standard ones; they come first, after the paragraph. ``pages`` are
    further pages of the report, ``(file name, title)``, linked after the plots.
    """
    rows = "\n".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
        for k, v in summary.rows(token_decimals=token_decimals)
    )
    shown = {n: GRID_PLOTS[n] for n in extra_plots or () if n in GRID_PLOTS} | PLOTS
    plots = "\n".join(
        f'<h2>{html.escape(t)}</h2>\n<img src="{name}" alt="{html.escape(t)}">'
        for name, t in shown.items()
    )
    paragraph = html.escape(story(summary, token_decimals=token_decimals))
    more = "\n".join(
        f'<h2>{html.escape(t)}</h2>\n<p><a href="{html.escape(name)}">{html.escape(name)}</a></p>'
        for name, t in pages
    )
    files = "\n".join(f'<li><a href="{name}.parquet">{name}.parquet</a></li>' for name in SCHEMAS)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>{paragraph}</p>
<table>
{rows}
</table>
{plots}
{more}
<h2>Data</h2>
<ul>
{files}
</ul>
</body></html>
"""
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
