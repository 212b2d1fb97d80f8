"""Operator reports: parquet tables, PNG plots and one HTML page per run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grid import Feeder
from market.report.data import SCHEMAS, ReportData
from market.report.page import write_page
from market.report.plots import PLOTS, write_plots
from market.report.plots_grid import write_grid_plots
from market.report.summary import Summary, summarise

__all__ = ["PLOTS", "SCHEMAS", "ReportData", "Summary", "summarise", "write_report"]


def write_report(
    data: ReportData,
    folder: Path,
    *,
    title: str,
    retail_price: int,
    feed_in_price: int,
    wall_s: float = 0.0,
    vm_min_pu: float = 0.9,
    vm_max_pu: float = 1.1,
    token_decimals: int = 6,
    feeder: Feeder | None = None,
    interval_s: int = 900,
    pages: Sequence[tuple[str, str]] = (),
) -> Summary:
    """Write the whole report into ``folder`` (tables, plots, page); return its summary.

    With ``feeder`` the page also draws the feeder as a network (noon and
    evening peak, both mechanisms); ``pages`` (file name, title) are linked
    from it.
    """
    data.write(folder)
    write_plots(
        data,
        folder,
        retail_price=retail_price,
        feed_in_price=feed_in_price,
        vm_min_pu=vm_min_pu,
        vm_max_pu=vm_max_pu,
        token_decimals=token_decimals,
    )
    grid_plots = write_grid_plots(
        data, folder, feeder=feeder, unit=10**token_decimals, interval_s=interval_s
    )
    summary = summarise(data, retail_price=retail_price, feed_in_price=feed_in_price, wall_s=wall_s)
    write_page(
        folder,
        summary,
        title=title,
        token_decimals=token_decimals,
        extra_plots=[p.name for p in grid_plots],
        pages=pages,
    )
    return summary
