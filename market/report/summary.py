"""The summary figures of a report: what an operator reads first."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from market.report.data import ReportData

__all__ = ["Summary", "summarise"]


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
    )
