"""Rolling-horizon benchmark: flexibility cleared jointly with a day of single-interval orders.

kerber-dorfnetz (or ``--feeder``), a 96-interval horizon whose base load
follows the profile forecast (:class:`market.forecast.ProfileForecast`,
a June day), 20 batteries, 10 EVs (evening arrival, morning departure),
10 heat pumps (three windows a day) and 100 single-interval orders per
interval (PV sellers by daylight, households buying, prices drawn around a
day curve). For each of ``--rolls`` gate closures it clears the horizon
ahead, AC check included, and prints:

* LP size (rows, columns, nonzeros) and rounds (LP solves) of the roll;
* seconds per re-clear (wall clock, everything: layout, linearisations,
  LP, integer fills, every interval's AC power flow, results);
* welfare of the joint clearing and of clearing each interval alone on the
  same orders (flexibility at its inflexible profile: batteries idle, EVs
  and heat pumps at full power from the start of their windows), and the
  gain.

Usage::

    python bench/flex.py                         # the issue's case
    python bench/flex.py --intervals 24 --rolls 1 --sensitivities dc
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np

from grid import Feeder, load_feeder
from market.clearing import ClearingOptions
from market.clearing.horizon import HorizonResult, clear_horizon
from market.config import MarketConfig
from market.flex import EnergyWindow, EvOrder, FlexOrder, ShiftableLoadOrder, StorageOrder, advance
from market.forecast import ProfileForecast, ViewCache
from market.orders import Order, Participant, Side

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)


def day_start(interval_s: int) -> int:
    """Interval id of 2026-06-21 00:00 Europe/Berlin (22:00 UTC the day before)."""
    start = dt.datetime(2026, 6, 20, 22, 0, tzinfo=dt.UTC)
    return int(start.timestamp()) // interval_s


def participants(f: Feeder, n: int, rng: np.random.Generator) -> dict[str, Participant]:
    buses = [b.index for b in f.connectable_buses]
    return {
        f"0x{i + 1:040x}": Participant(f"0x{i + 1:040x}", int(rng.choice(buses))) for i in range(n)
    }


def orders_for(t: int, iv: int, addrs: list[str], rng: np.random.Generator, n: int) -> list[Order]:
    hour = (t * CONFIG.interval_s / 3600.0) % 24
    sun = max(0.0, np.sin((hour - 6.0) / 12.0 * np.pi))
    evening = 1.0 + 0.6 * np.exp(-(((hour - 19.0) / 2.0) ** 2))
    out: list[Order] = []
    for k in range(n):
        who = addrs[k % len(addrs)]
        if k % 2 == 0 and sun > 0.05:
            qty = int(rng.integers(200, 1500) * sun) + 1
            price = int(rng.integers(60_000, 140_000))
            out.append(Order(f"s{iv}-{k}", who, Side.SELL, iv, qty, price))
        else:
            qty = int(rng.integers(100, 800) * evening)
            price = int(rng.integers(150_000, 300_000) * min(evening, 1.2))
            out.append(Order(f"b{iv}-{k}", who, Side.BUY, iv, qty, min(price, 350_000)))
    return out


def flex_fleet(addrs: list[str], first: int, rng: np.random.Generator) -> list[FlexOrder]:
    per_day = 86_400 // CONFIG.interval_s
    fleet: list[FlexOrder] = []
    for i in range(20):
        cap = int(rng.choice([5_000, 10_000, 13_500]))
        fleet.append(
            StorageOrder(
                f"bat{i}",
                addrs[i],
                cap,
                cap // 2,
                cap // 10,
                cap,
                int(rng.choice([3_000, 5_000])),
                int(rng.choice([3_000, 5_000])),
                0.95,
                0.95,
                cap // 2,
                20_000,
            )
        )
    for i in range(10):
        arrive = first + int(per_day * 17.5 / 24) + int(rng.integers(0, 8))
        leave = first + per_day + int(per_day * 7 / 24)
        fleet.append(
            EvOrder(
                f"ev{i}",
                addrs[20 + i],
                int(rng.integers(8_000, 30_000)),
                11_000,
                arrive,
                leave,
                400_000,
            )
        )
    for i in range(10):
        windows = tuple(
            EnergyWindow(
                first + a * per_day // 24,
                first + b * per_day // 24,
                int(rng.integers(2_000, 5_000)),
            )
            for a, b in ((0, 8), (8, 16), (16, 24))
        )
        fleet.append(ShiftableLoadOrder(f"hp{i}", addrs[30 + i], windows, 3_000, 350_000))
    return fleet


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--feeder", default="kerber-dorfnetz")
    ap.add_argument("--intervals", type=int, default=96)
    ap.add_argument("--rolls", type=int, default=3)
    ap.add_argument("--orders", type=int, default=100)
    ap.add_argument("--sensitivities", choices=("ac", "dc"), default="ac")
    args = ap.parse_args()
    rng = np.random.default_rng(16)
    f = load_feeder(args.feeder)
    parts = participants(f, 140, rng)
    addrs = sorted(parts)
    views = ViewCache(
        f, ProfileForecast(f, annual_kwh=3500.0), keep=args.intervals + args.rolls + 1
    )
    first = day_start(CONFIG.interval_s)
    n_total = args.intervals + args.rolls
    book = [orders_for(t, first + t, addrs[40:], rng, args.orders) for t in range(n_total)]
    fleet = flex_fleet(addrs, first, rng)
    opts = ClearingOptions(sensitivities=args.sensitivities)
    print(
        f"{args.feeder}: {f.n_bus} buses, horizon {args.intervals} × {CONFIG.interval_s} s, "
        f"{len(fleet)} flexibility orders, {args.orders} orders per interval, {args.sensitivities}"
    )
    t0 = time.perf_counter()
    feeders = [views.at(first + t)[0] for t in range(n_total)]
    print(f"feeder views: {time.perf_counter() - t0:.2f} s (once)")
    for roll in range(args.rolls):
        iv = first + roll
        window = slice(roll, roll + args.intervals)
        t1 = time.perf_counter()
        joint: HorizonResult = clear_horizon(
            feeders[window], book[window], fleet, parts, CONFIG, first_interval=iv, options=opts
        )
        t2 = time.perf_counter()
        alone = clear_horizon(
            feeders[window],
            book[window],
            fleet,
            parts,
            CONFIG,
            first_interval=iv,
            options=opts,
            myopic=True,
        )
        ok = sum(r.status.ok for r in joint.results)
        print(
            f"roll {roll}: LP {joint.rows} rows × {joint.columns} cols, {joint.nonzeros} nnz; "
            f"{joint.rounds} rounds; {t2 - t1:.2f} s per re-clear (AC check of every interval); "
            f"{ok}/{len(joint.results)} intervals cleared; welfare joint {joint.welfare:,.0f} vs "
            f"single-interval {alone.welfare:,.0f} "
            f"(+{joint.welfare - alone.welfare:,.0f} base units; from the published books "
            f"{joint.books_welfare:,.0f} vs {alone.books_welfare:,.0f})"
        )
        nxt: list[FlexOrder] = []
        for o, s in zip(fleet, joint.schedules, strict=True):
            a = advance(o, iv, s.charge_wh[0], s.discharge_wh[0])
            if a is not None:
                nxt.append(a)
        fleet = nxt


if __name__ == "__main__":
    main()
