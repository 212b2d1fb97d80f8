"""The summary figures of a report: what an operator reads first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from market.report.data import ReportData

__all__ = ["Summary", "story", "summarise"]


@dataclass(frozen=True)
class Summary:
    """Headline figures of a run (energy Wh, money base units, prices per kWh).

    Attributes:
        intervals: intervals cleared.
        participants: participants with at least one order or reading.
        local_wh: energy traded between participants.
        import_wh: energy bought from the external grid.
        export_wh: energy sold to the external grid.
        self_sufficiency: share of the participants' metered import that
            their own metered export covered in the same interval,
            ``Σ_k min(import_k, export_k) / Σ_k import_k``, 0..1: what the
            community drew from itself rather than from the upstream grid.
        metered_import_wh: the participants' metered import.
        metered_export_wh: the participants' metered export.
        price_mean: volume-weighted mean price paid by buyers in local trades.
        price_min: lowest price any filled order paid or received (what a
            household met; bus prices where nobody traded may lie outside
            the tariffs, fills never do).
        price_max: highest price any filled order paid or received.
        retail_price: the external grid's import price.
        feed_in_price: the external grid's export price.
        ac_failures: intervals whose final AC check did not pass.
        delivered_violations: intervals in which what was metered broke a
            grid limit (an AC power flow of the metered injections).
        events_avoided: intervals where copper-plate (uniform) clearing of
            the same book would have broken a grid limit.
        settled_volume: Σ of positive balance changes settled on chain.
        gas_used: gas of all settlement transactions.
        wall_s: wall time of the run, s (0 when unknown).
        uniform_intervals_broken: intervals in which the copper-plate
            schedule breaks a limit in the AC power flow.
        uniform_buses_broken: distinct buses outside the voltage band under it.
        uniform_branches_broken: distinct lines and transformers over their limit.
        uniform_vm_max_pu: highest voltage under it.
        uniform_vm_min_pu: lowest voltage under it.
        uniform_max_loading_percent: highest line or transformer loading under it.
        nodal_intervals_broken: intervals in which gridex's nodal schedule
            breaks a limit in the same power flow.
        curtailed_wh: sell energy the copper plate fills and nodal does not.
        deferred_wh: buy energy the copper plate fills and nodal does not.
        congestion_rent: Σ congestion price parts × energy withdrawn, base units.
        voltage_rent: Σ voltage price parts × energy withdrawn, base units.
        price_spread_max: widest spread of nodal prices between buses in
            one interval, base units per kWh.
    """

    intervals: int
    participants: int
    local_wh: int
    import_wh: int
    export_wh: int
    self_sufficiency: float
    metered_import_wh: int
    metered_export_wh: int
    price_mean: float
    price_min: int
    price_max: int
    retail_price: int
    feed_in_price: int
    ac_failures: int
    delivered_violations: int
    events_avoided: int
    settled_volume: int
    gas_used: int
    wall_s: float
    uniform_intervals_broken: int = 0
    uniform_buses_broken: int = 0
    uniform_branches_broken: int = 0
    uniform_vm_max_pu: float = 1.0
    uniform_vm_min_pu: float = 1.0
    uniform_max_loading_percent: float = 0.0
    nodal_intervals_broken: int = 0
    curtailed_wh: int = 0
    deferred_wh: int = 0
    congestion_rent: int = 0
    voltage_rent: int = 0
    price_spread_max: int = 0

    def rows(self, *, token_decimals: int = 6) -> list[tuple[str, str]]:
        """(label, value) pairs for a table, formatted for people."""
        unit = 10**token_decimals

        def kwh(wh: int) -> str:
            return f"{wh / 1000:,.1f} kWh"

        def per_kwh(price: float) -> str:
            return f"{price / unit:.4f} tokens/kWh"

        return [
            ("intervals", f"{self.intervals}"),
            ("participants", f"{self.participants}"),
            ("traded locally", kwh(self.local_wh)),
            ("imported from the grid", kwh(self.import_wh)),
            ("exported to the grid", kwh(self.export_wh)),
            (
                "metered import / export",
                f"{kwh(self.metered_import_wh)} / {kwh(self.metered_export_wh)}",
            ),
            ("self-sufficiency (metered)", f"{self.self_sufficiency:.1%}"),
            ("mean local price", per_kwh(self.price_mean)),
            ("local price range", f"{per_kwh(self.price_min)} .. {per_kwh(self.price_max)}"),
            ("retail / feed-in", f"{per_kwh(self.retail_price)} / {per_kwh(self.feed_in_price)}"),
            ("grid-limit events avoided", f"{self.events_avoided} intervals"),
            (
                "copper plate (uniform) would have broken",
                f"{self.uniform_intervals_broken} intervals, {self.uniform_buses_broken} buses "
                f"(voltage {self.uniform_vm_min_pu:.3f}..{self.uniform_vm_max_pu:.3f} p.u.), "
                f"{self.uniform_branches_broken} lines/transformers "
                f"(up to {self.uniform_max_loading_percent:.0f} %)",
            ),
            ("gridex nodal schedule broke", f"{self.nodal_intervals_broken} intervals"),
            (
                "curtailed PV / deferred demand",
                f"{kwh(self.curtailed_wh)} / {kwh(self.deferred_wh)}",
            ),
            (
                "congestion / voltage rent",
                f"{self.congestion_rent / unit:,.2f} / {self.voltage_rent / unit:,.2f} tokens",
            ),
            ("widest price spread between buses", per_kwh(self.price_spread_max)),
            ("AC check failures (cleared schedule)", f"{self.ac_failures}"),
            ("intervals over a limit (as metered)", f"{self.delivered_violations}"),
            ("tokens settled", f"{self.settled_volume / unit:,.2f}"),
            ("gas used", f"{self.gas_used:,}"),
            ("wall time", f"{self.wall_s:.1f} s"),
        ]


def summarise(
    data: ReportData, *, retail_price: int, feed_in_price: int, wall_s: float = 0.0
) -> Summary:
    """Compute the headline figures of ``data``."""
    iv = data.intervals
    local = int(iv["local_wh"].sum())
    imported = int(iv["import_wh"].sum())
    buys = data.fills.filter((pl.col("side") == "buy") & (pl.col("filled_wh") > 0))
    bought_wh = int(buys["filled_wh"].sum())
    price_mean = float(buys["amount"].sum()) * 1000 / bought_wh if bought_wh else 0.0
    per = data.metered.group_by("interval").agg(
        pl.col("import_wh").sum(), pl.col("export_wh").sum()
    )
    metered_import = int(per["import_wh"].sum())
    covered = int(per.select(pl.min_horizontal("import_wh", "export_wh")).to_series().sum())
    participants = pl.concat(
        [data.orders.select("participant"), data.metered.select("participant")]
    ).n_unique()
    traded = data.fills.filter(pl.col("filled_wh") > 0)
    return Summary(
        intervals=iv.height,
        participants=participants,
        local_wh=local,
        import_wh=imported,
        export_wh=int(iv["export_wh"].sum()),
        self_sufficiency=covered / metered_import if metered_import else 0.0,
        metered_import_wh=metered_import,
        metered_export_wh=int(per["export_wh"].sum()),
        price_mean=price_mean,
        price_min=int(traded.select(pl.col("price").min()).item() or 0),
        price_max=int(traded.select(pl.col("price").max()).item() or 0),
        retail_price=retail_price,
        feed_in_price=feed_in_price,
        ac_failures=int((~iv["ac_passed"]).sum()),
        delivered_violations=int((iv["delivered_violations"] > 0).sum()),
        events_avoided=int(((iv["uniform_violations"] > 0) & iv["ac_passed"]).sum()),
        settled_volume=int(iv["settled_volume"].sum()),
        gas_used=int(iv["gas_used"].sum()),
        wall_s=wall_s,
        **_counterfactual(data),
    )


def _counterfactual(data: ReportData) -> dict[str, Any]:
    cf = data.counterfactual
    if cf.height == 0:
        return {}
    broken = {
        m: (pl.col(f"{m}_buses_over") + pl.col(f"{m}_lines_over") + pl.col(f"{m}_trafos_over") > 0)
        | ~pl.col(f"{m}_converged")
        for m in ("uniform", "nodal")
    }
    state = data.grid_state.filter(pl.col("mechanism") == "uniform")
    buses = state.filter(
        (pl.col("kind") == "bus") & ((pl.col("value") > 1.1) | (pl.col("value") < 0.9))
    )
    branches = state.filter((pl.col("kind") != "bus") & (pl.col("value") > 100.0))
    loading = cf.select(
        pl.max_horizontal("uniform_max_line_loading_percent", "uniform_max_trafo_loading_percent")
    ).to_series()
    return {
        "uniform_intervals_broken": int(cf.select(broken["uniform"].sum()).item()),
        "uniform_buses_broken": buses["element"].n_unique(),
        "uniform_branches_broken": branches.select("kind", "element").unique().height,
        "uniform_vm_max_pu": float(cf["uniform_vm_max_pu"].max() or 1.0),  # type: ignore[arg-type]
        "uniform_vm_min_pu": float(cf["uniform_vm_min_pu"].min() or 1.0),  # type: ignore[arg-type]
        "uniform_max_loading_percent": float(loading.max() or 0.0),  # type: ignore[arg-type]
        "nodal_intervals_broken": int(cf.select(broken["nodal"].sum()).item()),
        "curtailed_wh": int(cf["curtailed_wh"].sum()),
        "deferred_wh": int(cf["deferred_wh"].sum()),
        "congestion_rent": int(cf["congestion_rent"].sum()),
        "voltage_rent": int(cf["voltage_rent"].sum()),
        "price_spread_max": int(
            cf.select((pl.col("nodal_price_max") - pl.col("nodal_price_min")).max()).item() or 0
        ),
    }


def story(summary: Summary, *, token_decimals: int = 6) -> str:
    """One paragraph saying what happened that day, for the page and the terminal."""
    s = summary
    unit = 10**token_decimals
    traded = f"{s.local_wh / 1000:,.1f} kWh changed hands between neighbours"
    nodal = (
        "no limit"
        if s.nodal_intervals_broken == 0
        else f"limits in {s.nodal_intervals_broken} intervals"
    )
    if s.uniform_intervals_broken == 0:
        return (
            f"Over {s.intervals} intervals {traded}; the grid never bound: a copper-plate "
            f"market clearing the same orders would have broken no limit either "
            f"(voltage {s.uniform_vm_min_pu:.3f}..{s.uniform_vm_max_pu:.3f} p.u., loading up to "
            f"{s.uniform_max_loading_percent:.0f} %)."
        )
    return (
        f"Over {s.intervals} intervals {traded}. Clearing the same orders on a copper plate, "
        f"as every anchor local market does, would have broken the grid in "
        f"{s.uniform_intervals_broken} intervals: {s.uniform_buses_broken} buses outside the "
        f"voltage band (from {s.uniform_vm_min_pu:.3f} to {s.uniform_vm_max_pu:.3f} p.u.) and "
        f"{s.uniform_branches_broken} lines or transformers overloaded (up to "
        f"{s.uniform_max_loading_percent:.0f} % of their rating). gridex's nodal clearing broke "
        f"{nodal} in the same AC power flow; keeping them curtailed "
        f"{s.curtailed_wh / 1000:,.1f} kWh "
        f"of PV and deferred {s.deferred_wh / 1000:,.1f} kWh of demand, and bus prices differed "
        f"by up to {s.price_spread_max / unit:.3f} tokens/kWh within one interval "
        f"(congestion rent {s.congestion_rent / unit:,.2f}, voltage rent "
        f"{s.voltage_rent / unit:,.2f} tokens)."
    )
