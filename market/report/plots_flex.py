"""A battery's day from the journal's flexibility rolls: SoC, firm fills, the price it saw.

Reads the ``flex_roll`` entries of an engine journal (see
:mod:`market.engine._flex`); for one storage order it takes, per roll, the
firm interval's charge and discharge, the state of charge after it and the
price at its bus, and writes ``flex_battery.png`` and ``flex.html`` (a short
page with the plot and whether the battery charged around noon and
discharged in the evening peak) into the report folder. Given the feeder, the
page adds the day without flexibility (:mod:`market.report.without_flex`):
which limits bound without it, how much energy they held back with and
without, and ``flex_relief.png`` of the loadings and that energy per interval.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.report.without_flex import FlexEffect, IntervalEffect, Relief

__all__ = ["BatteryDay", "FlexPage", "battery_day", "local_hours", "write_flex_page"]

#: Local time of the demo day (Europe/Berlin in summer), hours after UTC.
LOCAL_OFFSET_H = 2
NOON_HOURS = (10.0, 16.0)
EVENING_HOURS = (17.0, 22.0)


@dataclass(frozen=True)
class BatteryDay:
    """One battery's firm schedule over the rolls, in interval order."""

    participant: str
    order_id: str
    intervals: tuple[int, ...]
    charge_wh: tuple[int, ...]
    discharge_wh: tuple[int, ...]
    soc_wh: tuple[int, ...]
    price: tuple[int, ...]

    def local_hours(self, interval_s: int) -> list[float]:
        """Local start hour of each interval (hours since the local midnight of the first)."""
        return local_hours(self.intervals, interval_s)

    def energy_between(self, hours: tuple[float, float], interval_s: int) -> tuple[int, int]:
        """Charge and discharge (Wh) in intervals starting within local ``hours`` of any day."""
        c = d = 0
        for h, ci, di in zip(
            self.local_hours(interval_s), self.charge_wh, self.discharge_wh, strict=True
        ):
            if hours[0] <= h % 24 < hours[1]:
                c, d = c + ci, d + di
        return c, d


@dataclass(frozen=True)
class FlexPage:
    """The page written, and the limits the day without flexibility had at their bound."""

    path: Path
    reliefs: tuple[Relief, ...] = ()


def local_hours(intervals: Sequence[int], interval_s: int) -> list[float]:
    """Local start hour of each interval (hours since the local midnight of the first)."""
    t0 = intervals[0] * interval_s
    midnight = (t0 + LOCAL_OFFSET_H * 3600) // 86_400 * 86_400 - LOCAL_OFFSET_H * 3600
    return [(k * interval_s - midnight) / 3600.0 for k in intervals]


def battery_day(journal: Path, participant: str | None = None) -> BatteryDay | None:
    """The firm day of ``participant``'s storage order (default: the first in the first roll)."""
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT body, blob FROM journal WHERE kind = 'flex_roll' ORDER BY seq"
        ).fetchall()
    finally:
        db.close()
    pick: tuple[str, str] | None = None
    ivs: list[int] = []
    cs: list[int] = []
    ds: list[int] = []
    socs: list[int] = []
    prices: list[int] = []
    for body_text, blob in rows:
        body = json.loads(body_text)
        roll = json.loads(blob)
        for (p, oid, _), s in zip(body["flex"], roll["schedules"], strict=True):
            if s["kind"] != "storage" or (participant is not None and p != participant):
                continue
            if pick is None:
                pick = (p, oid)
            if (p, oid) != pick:
                continue
            firm = roll["results"][0]["result"]
            bus = next((f["bus"] for f in firm["fills"] if f["participant"] == p), None)
            price = next((q["price"] for q in firm["prices"] if q["bus"] == bus), 0)
            ivs.append(int(body["interval"]))
            cs.append(int(s["charge_wh"][0]))
            ds.append(int(s["discharge_wh"][0]))
            socs.append(int(s["soc_wh"][0]))
            prices.append(int(price))
    if pick is None:
        return None
    return BatteryDay(
        pick[0], pick[1], tuple(ivs), tuple(cs), tuple(ds), tuple(socs), tuple(prices)
    )


def write_flex_page(
    journal: Path, out_dir: Path, *, interval_s: int, feeder: Any = None
) -> FlexPage | None:
    """Write ``flex_battery.png`` and ``flex.html``; the page, or None without a battery.

    With ``feeder`` the page also compares the rolled intervals with the day
    without flexibility (:func:`market.report.without_flex.without_flex`).
    """
    day = battery_day(journal)
    if day is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = day.local_hours(interval_s)
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    ax.step(hours, [s / 1000 for s in day.soc_wh], where="post", label="state of charge")
    ax.bar(hours, [c / 1000 for c in day.charge_wh], width=0.2, label="charged (firm)")
    ax.bar(hours, [-d / 1000 for d in day.discharge_wh], width=0.2, label="discharged (firm)")
    ax.set_ylabel("kWh")
    ax.legend(loc="upper left")
    bx.step(hours, day.price, where="post", color="tab:red")
    bx.set_ylabel("price at its bus (base units / kWh)")
    bx.set_xlabel("local hour")
    fig.suptitle(f"{day.order_id!r} of {day.participant[:10]}…: state of charge, firm fills, price")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "flex_battery.png", dpi=100)
    plt.close(fig)
    noon_c, noon_d = day.energy_between(NOON_HOURS, interval_s)
    eve_c, eve_d = day.energy_between(EVENING_HOURS, interval_s)
    noon = noon_c > 0 and noon_c >= noon_d
    evening = eve_d > 0 and eve_d >= eve_c
    start = dt.datetime.fromtimestamp(day.intervals[0] * interval_s, tz=dt.UTC)
    lines = [
        f"<p>Firm schedule of one battery over {len(day.intervals)} rolls from "
        f"{start:%Y-%m-%d %H:%M} UTC.</p>",
        f"<p>Charged from noon PV (10:00–16:00 local): <b>{'yes' if noon else 'no'}</b> "
        f"({noon_c} Wh charged, {noon_d} Wh discharged). Discharged at the evening peak "
        f"(17:00–22:00 local): <b>{'yes' if evening else 'no'}</b> ({eve_d} Wh discharged, "
        f"{eve_c} Wh charged).</p>",
        "<img src='flex_battery.png' alt='battery state of charge and price'>",
    ]
    found: tuple[Relief, ...] = ()
    if feeder is None:
        lines.append("<p>The day without flexibility was not cleared (no feeder given).</p>")
    else:
        from market.report.without_flex import reliefs, without_flex

        effect = without_flex(journal, feeder)
        if effect is not None:
            found = tuple(reliefs(effect.rows))
            lines += _without_section(effect, found, out_dir, interval_s)
    page = out_dir / "flex.html"
    page.write_text(
        "<!doctype html><meta charset='utf-8'><title>gridex: flexibility</title>"
        f"<h1>Flexibility: {html.escape(day.order_id)}</h1>" + "".join(lines),
        encoding="utf-8",
    )
    return FlexPage(page, found)


def _without_section(
    effect: FlexEffect, found: Sequence[Relief], out_dir: Path, interval_s: int
) -> list[str]:
    """The day without flexibility: figures, the limits it relieved, and their plot."""
    a, b = effect.with_flex, effect.without
    out = [
        "<h2>The day without flexibility</h2>",
        f"<p>The same ordinary orders cleared without any flexibility, interval by interval "
        f"on the same bases ({effect.intervals} intervals): "
        f"{b.unsold_wh / 1000:.1f} kWh of PV offered but not sold (curtailed) against "
        f"{a.unsold_wh / 1000:.1f} kWh with it; {b.unserved_wh / 1000:.1f} kWh of demand "
        f"unserved against {a.unserved_wh / 1000:.1f} kWh; a grid limit bound in "
        f"{b.binding} intervals against {a.binding} (congestion and voltage rent "
        f"{b.rent:,} against {a.rent:,} base units).</p>",
    ]
    if not found:
        out.append("<p>No limit was at its bound in the day without flexibility.</p>")
    for r in found:
        verdict = "<b>relieved</b>" if r.relieved else "<b>not relieved</b>"
        out.append(
            f"<p>{verdict}: the {html.escape(r.limit)} was at its limit in "
            f"{len(r.intervals)} intervals of the day without flexibility "
            f"({_spans(r.intervals, interval_s)} local), where the limits held back "
            f"{r.held_back_without_wh / 1000:.1f} kWh (PV unsold and demand unserved). "
            f"With flexibility, which charged {r.charged_wh / 1000:.1f} kWh and discharged "
            f"{r.discharged_wh / 1000:.1f} kWh in those intervals, they held back "
            f"{r.held_back_with_wh / 1000:.1f} kWh; the limit was still at its bound in "
            f"{r.still_at_limit} of them.</p>"
        )
    _relief_plot(effect.rows, out_dir / "flex_relief.png", interval_s)
    out.append("<img src='flex_relief.png' alt='loadings and energy not traded, with and without'>")
    return out


def _spans(intervals: Sequence[int], interval_s: int) -> str:
    """Runs of consecutive intervals as local ``HH:MM–HH:MM`` (end exclusive), comma-separated."""
    runs: list[list[int]] = []
    for k in sorted(intervals):
        if runs and k == runs[-1][1]:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1])

    def hhmm(k: int) -> str:
        at = dt.datetime.fromtimestamp(k * interval_s + LOCAL_OFFSET_H * 3600, tz=dt.UTC)
        return f"{at:%H:%M}"

    return ", ".join(f"{hhmm(a)}–{hhmm(b)}" for a, b in runs)


def _relief_plot(rows: Sequence[IntervalEffect], path: Path, interval_s: int) -> None:
    """Loadings and the energy offered or bid but not traded per interval, without and with."""
    import matplotlib.pyplot as plt

    hours = local_hours([r.interval for r in rows], interval_s)
    fig, (ax, bx) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    steps = [
        (ax, [getattr(r.without if way == "without" else r.with_flex, key) for r in rows],
         color, "--" if way == "without" else "-", f"{name}, {way} flexibility")
        for name, key, color in (
            ("transformer", "trafo_loading_percent", "tab:red"),
            ("highest line", "line_loading_percent", "tab:purple"),
        )
        for way in ("without", "with")
    ]  # fmt: skip
    steps += [
        (bx, [r.without.held_back_wh / 1000 for r in rows], "tab:gray", "--",
         "not traded (PV unsold + demand unserved), without"),
        (bx, [r.with_flex.held_back_wh / 1000 for r in rows], "tab:green", "-",
         "not traded, with flexibility"),
    ]  # fmt: skip
    for axes, values, color, style, label in steps:
        axes.step(hours, values, where="post", color=color, linestyle=style, label=label)
    ax.set_ylabel("loading (%)")
    ax.legend(loc="upper right", fontsize="small")
    for values, color, label in (
        ([r.charged_wh / 1000 for r in rows], "tab:blue", "flexibility charged"),
        ([-r.discharged_wh / 1000 for r in rows], "tab:orange", "flexibility discharged"),
    ):
        bx.bar(hours, values, width=0.2, align="edge", color=color, label=label)
    bx.set_ylabel("kWh per interval")
    bx.set_xlabel("local hour")
    bx.legend(loc="upper center", fontsize="small")
    fig.suptitle(
        "The day with and without flexibility: loadings, and energy offered but not traded"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
