"""PNG plots of a report (matplotlib, headless Agg backend)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from market.report.data import ReportData

__all__ = ["PLOTS", "write_plots"]

#: File name → title of every plot, in page order.
PLOTS: dict[str, str] = {
    "prices.png": "Locational price per bus against retail and feed-in",
    "energy.png": "PV production and consumption of the participants",
    "volume.png": "Traded volume per interval",
    "grid.png": "Maximum loading and voltage envelope against their limits (as metered)",
    "balances.png": "Each account's escrow balance change since the first settled interval",
}


def _figure(rows: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, 1, figsize=(10, 3.6 * rows), sharex=True, squeeze=False)


def _hours(data: ReportData, intervals: pl.Series) -> np.ndarray:
    start = data.intervals.select("interval", "start_s")
    lookup = dict(zip(start["interval"].to_list(), start["start_s"].to_list(), strict=True))
    first = min(lookup.values()) if lookup else 0
    return np.array([(lookup.get(i, first) - first) / 3600 for i in intervals.to_list()])


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@dataclass(frozen=True)
class _Context:
    retail_price: int
    feed_in_price: int
    vm_min_pu: float
    vm_max_pu: float
    unit: int


def _plot_prices(data: ReportData, path: Path, ctx: _Context) -> None:
    fig, ax = _figure()
    axis = ax[0][0]
    for _bus, frame in data.prices.sort("interval").group_by(["bus"], maintain_order=True):
        axis.plot(_hours(data, frame["interval"]), frame["price"] / ctx.unit, lw=0.8, alpha=0.6)
    axis.axhline(ctx.retail_price / ctx.unit, color="black", ls="--", label="retail (import)")
    axis.axhline(ctx.feed_in_price / ctx.unit, color="green", ls="--", label="feed-in (export)")
    axis.set(ylabel="tokens per kWh", xlabel="hours from start", title=PLOTS["prices.png"])
    axis.legend(loc="upper right")
    _save(fig, path)


def _plot_energy(data: ReportData, path: Path, ctx: _Context) -> None:
    """Production and consumption where an inverter reports production, metered flows always."""
    fig, ax = _figure()
    axis = ax[0][0]
    known = pl.col("production_wh") >= 0
    per = (
        data.metered.group_by("interval")
        .agg(
            pl.col("import_wh").sum(),
            pl.col("export_wh").sum(),
            pl.col("production_wh").filter(known).sum().alias("production"),
            (pl.col("production_wh") + pl.col("import_wh") - pl.col("export_wh"))
            .filter(known)
            .sum()
            .alias("consumption"),
            known.any().alias("has_production"),
        )
        .sort("interval")
    )
    h = _hours(data, per["interval"])
    if per["has_production"].any():
        axis.plot(h, per["production"] / 1000, label="PV production (inverters)", color="orange")
        axis.plot(h, per["consumption"] / 1000, label="consumption", color="steelblue")
    axis.plot(h, per["export_wh"] / 1000, label="metered export", color="orange", ls=":")
    axis.plot(h, per["import_wh"] / 1000, label="metered import", color="steelblue", ls=":")
    axis.set(ylabel="kWh per interval", xlabel="hours from start", title=PLOTS["energy.png"])
    axis.legend(loc="upper right")
    _save(fig, path)


def _plot_volume(data: ReportData, path: Path, ctx: _Context) -> None:
    iv = data.intervals.sort("interval")
    hours = _hours(data, iv["interval"])
    fig, ax = _figure()
    axis = ax[0][0]
    width = (hours[1] - hours[0]) * 0.9 if len(hours) > 1 else 0.2
    local = iv["local_wh"].to_numpy() / 1000
    imported = iv["import_wh"].to_numpy() / 1000
    axis.bar(hours, local, width=width, label="traded locally", color="seagreen")
    axis.bar(hours, imported, width=width, bottom=local, label="imported", color="grey")
    axis.bar(hours, -iv["export_wh"].to_numpy() / 1000, width=width, label="exported", color="gold")
    axis.set(ylabel="kWh per interval", xlabel="hours from start", title=PLOTS["volume.png"])
    axis.legend(loc="upper right")
    _save(fig, path)


def _plot_grid(data: ReportData, path: Path, ctx: _Context) -> None:
    iv = data.intervals.sort("interval")
    hours = _hours(data, iv["interval"])
    fig, ax = _figure(2)
    top, bottom = ax[0][0], ax[1][0]
    top.plot(hours, iv["delivered_max_line_loading_percent"], label="max line loading", color="C0")
    top.plot(
        hours,
        iv["delivered_max_trafo_loading_percent"],
        label="max transformer loading",
        color="C1",
    )
    top.plot(hours, iv["max_line_loading_percent"], color="C0", ls=":", label="cleared schedule")
    top.plot(hours, iv["max_trafo_loading_percent"], color="C1", ls=":")
    top.axhline(100.0, color="red", ls="--", label="limit")
    top.set(ylabel="loading %", title=PLOTS["grid.png"])
    top.legend(loc="upper right", fontsize="small")
    bottom.fill_between(
        hours,
        iv["delivered_vm_min_pu"],
        iv["delivered_vm_max_pu"],
        alpha=0.4,
        label="voltage range (metered)",
    )
    bottom.axhline(ctx.vm_min_pu, color="red", ls="--", label="band")
    bottom.axhline(ctx.vm_max_pu, color="red", ls="--")
    bottom.set(ylabel="voltage p.u.", xlabel="hours from start")
    bottom.legend(loc="upper right")
    _save(fig, path)


def _plot_balances(data: ReportData, path: Path, ctx: _Context) -> None:
    fig, ax = _figure()
    axis = ax[0][0]
    balances = data.balances.sort("interval")
    for _account, frame in balances.group_by(["account"], maintain_order=True):
        axis.plot(_hours(data, frame["interval"]), frame["balance"] / ctx.unit, lw=0.8)
    axis.set(
        ylabel="tokens (settled change)", xlabel="hours from start", title=PLOTS["balances.png"]
    )
    _save(fig, path)


_PLOTTERS = {
    "prices.png": _plot_prices,
    "energy.png": _plot_energy,
    "volume.png": _plot_volume,
    "grid.png": _plot_grid,
    "balances.png": _plot_balances,
}


def write_plots(
    data: ReportData,
    folder: Path,
    *,
    retail_price: int,
    feed_in_price: int,
    vm_min_pu: float = 0.9,
    vm_max_pu: float = 1.1,
    token_decimals: int = 6,
) -> list[Path]:
    """Write every plot of :data:`PLOTS` into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    ctx = _Context(retail_price, feed_in_price, vm_min_pu, vm_max_pu, 10**token_decimals)
    for name in PLOTS:
        _PLOTTERS[name](data, folder / name, ctx)
    return [folder / name for name in PLOTS]
