"""The report's grid plots: the feeder as a network, voltage heat map, curtailment.

Drawn from the ``counterfactual`` and ``grid_state`` tables (the AC power
flows of the uniform and nodal schedules). The network layout comes from the
feeder's topology (networkx Kamada-Kawai, deterministic), buses coloured by
price, lines by loading; a limit counts as broken beyond the clearing's AC
tolerance, as in the tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from grid import Feeder
from market.report.counterfactual import TOLERANCE
from market.report.data import ReportData

__all__ = ["GRID_PLOTS", "peak_intervals", "write_grid_plots"]

#: File name → title, in page order.
GRID_PLOTS: dict[str, str] = {
    "network.png": "The feeder at noon and at the evening peak: copper plate (uniform) "
    "against gridex (nodal); buses by price, lines by loading",
    "voltage_heatmap.png": "Bus voltage per interval (AC power flow of each schedule)",
    "curtailment.png": "What keeping the limits took: energy curtailed and deferred, "
    "and traded volume of both mechanisms",
}


def peak_intervals(data: ReportData) -> tuple[int | None, int | None]:
    """(noon, evening peak): the intervals where uniform sells and buys the most."""
    cf = data.counterfactual
    if cf.height == 0:
        return None, None
    noon = int(cf.sort("uniform_sold_wh", descending=True)["interval"][0])
    evening = int(cf.sort("uniform_bought_wh", descending=True)["interval"][0])
    return noon, evening


def _layout(feeder: Feeder) -> dict[int, tuple[float, float]]:
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(b.index for b in feeder.buses)
    for br in feeder.branches:
        graph.add_edge(br.from_bus, br.to_bus)
    net = feeder.net
    for _, sw in net.switch[(net.switch.et == "b") & net.switch.closed].iterrows():
        graph.add_edge(int(sw.bus), int(sw.element))
    pos = nx.kamada_kawai_layout(graph)
    return {int(k): (float(v[0]), float(v[1])) for k, v in pos.items()}


def _clock(interval: int, interval_s: int) -> str:
    seconds = interval * interval_s % 86_400
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d} UTC"


def _network(data: ReportData, feeder: Feeder, path: Path, *, unit: int, interval_s: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    pos = _layout(feeder)
    noon, evening = peak_intervals(data)
    shown = [k for k in (noon, evening) if k is not None]
    state = data.grid_state
    fig, axes = plt.subplots(len(shown), 2, figsize=(12, 5.2 * len(shown)), squeeze=False)
    prices = state.filter(pl.col("kind") == "bus")["price"].to_numpy()
    vmin = float(prices.min()) / unit if len(prices) else 0.0
    vmax = max(float(prices.max()) / unit if len(prices) else 0.0, vmin + 1e-6)
    scatter = lines = None
    for row, k in enumerate(shown):
        for col, mech in enumerate(("uniform", "nodal")):
            ax = axes[row][col]
            s = state.filter((pl.col("interval") == k) & (pl.col("mechanism") == mech))
            buses = s.filter(pl.col("kind") == "bus")
            loading = {
                (kind, int(e)): float(v)
                for kind, e, v in s.filter(pl.col("kind") != "bus")
                .select("kind", "element", "value")
                .iter_rows()
            }
            segs, colours = [], []
            for br in feeder.branches:
                segs.append([pos[br.from_bus], pos[br.to_bus]])
                colours.append(loading.get((br.kind, br.index), 0.0))
            lines = LineCollection(segs, cmap="RdYlGn_r", linewidths=2.2)
            lines.set_array(np.asarray(colours))
            lines.set_clim(0, 130)
            ax.add_collection(lines)
            xy = np.array([pos[int(b)] for b in buses["element"]])
            band = TOLERANCE / 100.0
            over = (buses["value"] > 1.1 + band) | (buses["value"] < 0.9 - band)
            scatter = ax.scatter(
                xy[:, 0],
                xy[:, 1],
                c=buses["price"].to_numpy() / unit,
                cmap="viridis",
                vmin=vmin,
                vmax=vmax,
                s=np.where(over.to_numpy(), 60, 18),
                edgecolors=np.where(over.to_numpy(), "red", "none"),
                linewidths=1.5,
                zorder=3,
            )
            broken = int(over.sum()) + sum(1 for v in colours if v > 100.0 + TOLERANCE)
            ax.set_title(
                f"{mech} at {_clock(k, interval_s)}: {broken} limit(s) broken",
                fontsize="medium",
            )
            ax.set_axis_off()
            ax.autoscale()
    if lines is not None and scatter is not None:
        fig.colorbar(lines, ax=axes[:, 1], label="line loading %", shrink=0.6)
        fig.colorbar(scatter, ax=axes[:, 0], label="price, tokens/kWh", shrink=0.6)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _heatmap(data: ReportData, feeder: Feeder | None, path: Path, *, interval_s: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buses = data.grid_state.filter(pl.col("kind") == "bus")
    fig, axes = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    intervals = sorted(set(buses["interval"].to_list()))
    order = (
        [b.index for b in feeder.buses]
        if feeder is not None
        else sorted(set(buses["element"].to_list()))
    )
    image = None
    for ax, mech in zip(axes, ("uniform", "nodal"), strict=True):
        frame = buses.filter(pl.col("mechanism") == mech)
        grid = np.full((len(order), len(intervals)), np.nan)
        row = {b: i for i, b in enumerate(order)}
        col = {k: j for j, k in enumerate(intervals)}
        for k, e, v in frame.select("interval", "element", "value").iter_rows():
            grid[row[int(e)], col[int(k)]] = v
        hours = [(k - intervals[0]) * interval_s / 3600 for k in intervals] if intervals else [0]
        image = ax.imshow(
            grid,
            aspect="auto",
            cmap="coolwarm",
            vmin=0.88,
            vmax=1.12,
            extent=(hours[0], hours[-1] + interval_s / 3600, len(order), 0),
            interpolation="nearest",
        )
        ax.set(ylabel="bus (feeder order)", title=f"{mech}: voltage p.u. (band 0.9..1.1)")
    axes[-1].set_xlabel("hours from start")
    if image is not None:
        fig.colorbar(image, ax=axes, label="voltage p.u.")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _curtailment(data: ReportData, path: Path, *, interval_s: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cf = data.counterfactual.sort("interval")
    first = int(cf["interval"][0]) if cf.height else 0
    hours = (cf["interval"].to_numpy() - first) * interval_s / 3600
    width = interval_s / 3600 * 0.9
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    top.bar(
        hours,
        cf["curtailed_wh"].to_numpy() / 1000,
        width=width,
        color="orange",
        label="PV curtailed (sold uniform, not nodal)",
    )
    top.bar(
        hours,
        -cf["deferred_wh"].to_numpy() / 1000,
        width=width,
        color="purple",
        label="demand deferred (bought uniform, not nodal)",
    )
    top.set(ylabel="kWh per interval", title=GRID_PLOTS["curtailment.png"])
    top.legend(loc="upper left", fontsize="small")
    for mech, colour in (("uniform", "grey"), ("nodal", "seagreen")):
        bottom.plot(
            hours, cf[f"{mech}_sold_wh"].to_numpy() / 1000, color=colour, label=f"{mech}: sold"
        )
        bottom.plot(
            hours,
            cf[f"{mech}_bought_wh"].to_numpy() / 1000,
            color=colour,
            ls=":",
            label=f"{mech}: bought",
        )
    bottom.set(ylabel="kWh per interval", xlabel="hours from start")
    bottom.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_grid_plots(
    data: ReportData,
    folder: Path,
    *,
    feeder: Feeder | None,
    unit: int,
    interval_s: int,
) -> list[Path]:
    """Write the plots of :data:`GRID_PLOTS` that ``data`` (and ``feeder``) allow."""
    out: list[Path] = []
    if data.counterfactual.height == 0:
        return out
    if feeder is not None:
        _network(data, feeder, folder / "network.png", unit=unit, interval_s=interval_s)
        out.append(folder / "network.png")
    _heatmap(data, feeder, folder / "voltage_heatmap.png", interval_s=interval_s)
    _curtailment(data, folder / "curtailment.png", interval_s=interval_s)
    out += [folder / "voltage_heatmap.png", folder / "curtailment.png"]
    return out
