"""The report of a backtest or a study: summary tables, plots, one HTML page.

Figures per point of a study (a single backtest is a study of one point),
summed over its feeders and days, from the interval dataset:

- ``violation_share``: share of intervals in which what was metered broke a
  grid limit (AC power flow of the delivered injections);
- ``ac_failures``: intervals whose cleared schedule failed its AC check;
- ``curtailed_kwh``: sell energy the nodal clearing kept off the market
  that a copper plate would have taken (the grid's limits at work);
- ``self_sufficiency``: ``Σ local_wh / Σ metered_import_wh``, the share of
  the homes' import their neighbours' export covered in the same interval
  (as the demo's report);
- ``spread_mean`` / ``spread_p95``: locational price spread between the
  dearest and cheapest bus, per interval, tokens per kWh;
- ``failed_intervals``, ``failed_tasks``: what did not clear or run.

Plots: the hosting-capacity curve (violations and curtailment against PV
penetration), the price spread and self-sufficiency, each against PV
penetration when the study sweeps it (one line per combination of the
other swept keys), else against the day (one line per feeder).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from market.backtest.runner import BacktestOutcome
from market.backtest.store import read_intervals

__all__ = ["PLOTS", "ReportPoint", "point_summary", "write_report"]

#: File name → title of every plot, in page order.
PLOTS: dict[str, str] = {
    "hosting.png": "Hosting capacity: grid-limit violations and curtailment",
    "spread.png": "Locational price spread (dearest − cheapest bus)",
    "self_sufficiency.png": "Self-sufficiency: import covered by neighbours' export",
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; font-size: 0.9em; }
td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; margin: 1em 0 2em; border: 1px solid #eee; }
.failed { color: #a00; }
"""


@dataclass(frozen=True)
class ReportPoint:
    """One point of the report: its swept values, results folder and run outcome."""

    key: str
    values: dict[str, Any]
    folder: Path
    outcome: BacktestOutcome | None = None


def _figures(frame: pl.DataFrame, unit: int) -> dict[str, Any]:
    n = frame.height
    imports = int(frame["metered_import_wh"].sum()) if n else 0
    spread = frame["price_spread"].drop_nulls() / unit
    return {
        "intervals": n,
        "failed_intervals": int((frame["status"] == "failed").sum()) if n else 0,
        "violation_intervals": int((frame["delivered_violations"] > 0).sum()) if n else 0,
        "violation_share": int((frame["delivered_violations"] > 0).sum()) / n if n else 0.0,
        "ac_failures": int((frame["ac_passed"] == False).sum()) if n else 0,  # noqa: E712 - polars expression
        "curtailed_kwh": int(frame["curtailed_wh"].sum()) / 1000 if n else 0.0,
        "traded_kwh": int(frame["traded_wh"].sum()) / 1000 if n else 0.0,
        "self_sufficiency": int(frame["local_wh"].sum()) / imports if imports else 0.0,
        "spread_mean": float(spread.mean() or 0.0) if len(spread) else 0.0,  # type: ignore[arg-type]
        "spread_p95": float(spread.quantile(0.95) or 0.0) if len(spread) else 0.0,
        "congestion_rent": int(frame["operator_surplus"].sum()) / unit if n else 0.0,
    }


def point_summary(frame: pl.DataFrame, *, token_decimals: int = 6) -> dict[str, Any]:
    """The figures of the module docstring for one point's interval table."""
    return _figures(frame, 10**token_decimals)


def write_report(
    folder: Path,
    points: Sequence[ReportPoint],
    *,
    title: str,
    swept: Sequence[str] = (),
    token_decimals: int = 6,
) -> Path:
    """Write ``folder/index.html``, ``summary.csv`` and the plots; return the page's path."""
    unit = 10**token_decimals
    folder.mkdir(parents=True, exist_ok=True)
    tables = {p.key: read_intervals(p.folder) for p in points}
    rows = []
    for p in points:
        failed_tasks = len(p.outcome.failed) if p.outcome is not None else 0
        rows.append(
            {"point": p.key, **_labels(p.values), **_figures(tables[p.key], unit)}
            | {"failed_tasks": failed_tasks}
        )
    summary = pl.DataFrame(rows)
    summary.write_csv(folder / "summary.csv")
    _plots(folder, points, tables, swept, unit)
    page = _page(title, summary, points, tables)
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def _labels(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, int | float) else str(v) for k, v in values.items()}


def _plots(
    folder: Path,
    points: Sequence[ReportPoint],
    tables: dict[str, pl.DataFrame],
    swept: Sequence[str],
    unit: int,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(points, tables, swept, unit)
    xlabel = "PV penetration (share of homes with PV)" if "pv_penetration" in swept else "day"
    specs = {
        "hosting.png": [
            ("violation_share", "intervals with a violation (share)"),
            ("curtailed_kwh", "curtailed kWh"),
        ],
        "spread.png": [("spread_mean", "mean spread, tokens/kWh"), ("spread_p95", "p95 spread")],
        "self_sufficiency.png": [("self_sufficiency", "self-sufficiency (share)")],
    }
    for name, panels in specs.items():
        fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.4 * len(panels)), squeeze=False)
        for (column, ylabel), ax in zip(panels, axes[:, 0], strict=True):
            for label, xs, figures in series:
                ax.plot(xs, [f[column] for f in figures], marker="o", label=label)
            ax.set(ylabel=ylabel, xlabel=xlabel)
            ax.grid(alpha=0.3)
            if series:
                ax.legend(loc="best", fontsize="small")
        axes[0, 0].set_title(PLOTS[name])
        fig.tight_layout()
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)


def _series(
    points: Sequence[ReportPoint],
    tables: dict[str, pl.DataFrame],
    swept: Sequence[str],
    unit: int,
) -> list[tuple[str, list[Any], list[dict[str, Any]]]]:
    """(line label, x values, figures per x) of every line of a plot."""
    if "pv_penetration" in swept:
        others = [k for k in swept if k != "pv_penetration"]
        lines: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        for p in points:
            label = ", ".join(f"{k}={p.values[k]}" for k in others) or "all feeders"
            figures = _figures(tables[p.key], unit)
            lines.setdefault(label, []).append((float(p.values["pv_penetration"]), figures))
        return [
            (label, [x for x, _ in sorted(v, key=_first)], [f for _, f in sorted(v, key=_first)])
            for label, v in lines.items()
        ]
    out: list[tuple[str, list[Any], list[dict[str, Any]]]] = []
    for p in points:
        frame = tables[p.key]
        if frame.height == 0:
            continue
        prefix = ", ".join(f"{k}={v}" for k, v in p.values.items())
        for (feeder,), per in frame.group_by(["feeder"], maintain_order=True):
            days = sorted(per["day"].unique().to_list())
            per_day = [_figures(per.filter(pl.col("day") == d), unit) for d in days]
            label = f"{prefix}: {feeder}" if prefix else str(feeder)
            out.append((label, [str(d) for d in days], per_day))
    return out


def _first(item: tuple[float, Any]) -> float:
    return item[0]


def _page(
    title: str,
    summary: pl.DataFrame,
    points: Sequence[ReportPoint],
    tables: dict[str, pl.DataFrame],
) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in summary.columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
        for row in summary.iter_rows()
    )
    failures = []
    for p in points:
        if p.outcome is not None:
            failures += [
                f"<li class=failed>{html.escape(p.key)}: {html.escape(t.feeder)} {t.day}: "
                f"{html.escape(t.reason)}</li>"
                for t in p.outcome.failed
            ]
        bad = tables[p.key].filter(pl.col("status") == "failed")
        failures += [
            f"<li class=failed>{html.escape(p.key)}: {html.escape(r['feeder'])} {r['day']} "
            f"interval {r['interval']}: {html.escape(r['reason'])}</li>"
            for r in bad.head(200).iter_rows(named=True)
        ]
    failed_html = (
        "<p>Every task ran and every interval cleared.</p>"
        if not failures
        else "<ul>\n" + "\n".join(failures) + "\n</ul>"
    )
    plots = "\n".join(
        f'<h2>{html.escape(t)}</h2>\n<img src="{name}" alt="{html.escape(t)}">'
        for name, t in PLOTS.items()
    )
    data = "\n".join(
        f"<li>{html.escape(p.key)}: <code>{html.escape(str(p.folder))}/intervals/*.parquet</code>"
        "</li>"
        for p in points
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<h2>Summary</h2>
<table>
<tr>{head}</tr>
{body}
</table>
<p><a href="summary.csv">summary.csv</a></p>
<h2>What failed</h2>
{failed_html}
{plots}
<h2>Data</h2>
<ul>
{data}
</ul>
</body></html>
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
