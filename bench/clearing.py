"""Clearing benchmark: the fast path, the pyomo path and pandapower's own DC OPF.

For each feeder and book size it prints, for the ``nodal`` mechanism with
``ac`` sensitivities, every constraint and the AC check:

* ``lin`` (re-linearisation in later rounds), ``build``, ``solve``,
  ``extract``, ``ac`` and ``total`` seconds of the fast
  path (best of ``--repeats`` warm runs) and of the pyomo path (one run);
* ``highs``: HiGHS's own run time, and ``tot/highs`` the ratio of the total to it;
* ``rundcopp``: pandapower's DC OPF on the same instance (every order a
  controllable sgen or load with a linear cost, the external grid a
  piecewise-linear one) and ``x``, how many times slower it is than the fast
  path on the same DC problem (``dc`` sensitivities, lines and transformers,
  no AC check, no order validation — ``rundcopp`` validates nothing either;
  both best of ``--repeats``), whose price difference to ``rundcopp`` is
  ``dlmp``. Building the pandapower network is not timed.

Every row also shows the successive linearisation: ``rounds`` (LP solves),
``st`` (``ok``: cleared and AC-feasible; ``INF``: not cleared) and the final
AC mismatch of the LP's prediction: ``dflow`` (largest branch-flow error, %
of the branch's limit), ``dvm`` (largest voltage error, 1e-4 p.u.) and
``dslack`` (external-grid energy error, Wh).

``--overvoltage`` adds the LV overvoltage case: a sunny-noon book on an LV
feeder in which 70 % of the orders are PV sellers on the half of the buses
farthest from the transformer (by voltage sensitivity), offering about four
times the base load, so the voltage band binds; the rest are buyers near the
transformer. It runs on ``--ov-feeders`` (default cigre-lv and the 116-bus
kerber-dorfnetz) at ``--ov-sizes`` (default 1k and 10k orders).

Books are scaled to the feeder: buy and sell volumes are each about 1.5 times
the base load's energy per interval, whatever the number of orders, so a big
book means many small orders, not an impossible load. Warm runs reuse the
feeder's zero-injection linearisation (cached per feeder, as in the engine);
``lin`` is the one-off cost of computing it.

Usage::

    python bench/clearing.py                     # full table (several minutes)
    python bench/clearing.py --sizes 100 1000 --feeders cigre-lv
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from grid import Feeder, load_feeder
from market.clearing import ClearingOptions, ClearingResult, clear
from market.clearing._cache import zero_point
from market.config import MarketConfig
from market.orders import Order, Participant, Side

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)
NODAL_AC = ClearingOptions(sensitivities="ac")
NODAL_DC = ClearingOptions(
    sensitivities="dc", constraints="lines,trafos", ac_check=False, validate=False
)


def make_book(f: Feeder, n: int, seed: int = 7) -> tuple[list[Order], dict[str, Participant]]:
    """``n`` orders on ``f``'s connectable buses, volumes scaled to the feeder."""
    rng = np.random.default_rng(seed)
    buses = [b.index for b in f.connectable_buses]
    load_kwh = (
        max(-float(f.base_p_mw[f.base_p_mw < 0].sum()), 0.05) * 1000 * CONFIG.interval_s / 3600
    )
    mean_wh = 1.5 * load_kwh * 1000 / (n / 2)
    n_people = max(n // 2, 1)
    people = [f"0x{i:040x}" for i in range(n_people)]
    parts = {a: Participant(a, int(rng.choice(buses))) for a in people}
    sides = rng.random(n) < 0.5
    qty = np.maximum(1, (mean_wh * rng.uniform(0.2, 1.8, n)).astype(np.int64))
    buy_price = rng.integers(150_000, 350_000, n)
    sell_price = rng.integers(40_000, 250_000, n)
    who = rng.integers(0, n_people, n)
    orders = [
        Order(
            f"o{i}",
            people[who[i]],
            Side.SELL if sides[i] else Side.BUY,
            0,
            int(qty[i]),
            int(sell_price[i] if sides[i] else buy_price[i]),
        )
        for i in range(n)
    ]
    return orders, parts


def make_overvoltage_book(
    f: Feeder, n: int, seed: int = 11
) -> tuple[list[Order], dict[str, Participant]]:
    """The LV overvoltage case (module docstring): far PV sellers, near buyers."""
    rng = np.random.default_rng(seed)
    sens = zero_point(f, "ac")
    conn = [b for b in f.connectable_buses if b.vn_kv < 1.0] or list(f.connectable_buses)
    rise = np.array([sens.dvm_dp[b.position, b.position] for b in conn])
    order = np.argsort(rise)
    near = [conn[i].index for i in order[: len(conn) // 2]]
    far = [conn[i].index for i in order[len(conn) // 2 :]]
    load_kwh = (
        max(-float(f.base_p_mw[f.base_p_mw < 0].sum()), 0.05) * 1000 * CONFIG.interval_s / 3600
    )
    sides = rng.random(n) < 0.7
    n_sell = max(int(sides.sum()), 1)
    mean_sell = 4.0 * load_kwh * 1000 / n_sell
    mean_buy = 1.0 * load_kwh * 1000 / max(n - n_sell, 1)
    orders, parts = [], {}
    for i in range(n):
        addr = f"0x{i:040x}"
        sell = bool(sides[i])
        parts[addr] = Participant(addr, int(rng.choice(far if sell else near)))
        mean = mean_sell if sell else mean_buy
        qty = max(1, int(mean * rng.uniform(0.2, 1.8)))
        price = int(rng.integers(20_000, 120_000) if sell else rng.integers(150_000, 300_000))
        orders.append(Order(f"o{i}", addr, Side.SELL if sell else Side.BUY, 0, qty, price))
    return orders, parts


def rundcopp(
    f: Feeder, orders: list[Order], parts: dict[str, Participant], repeats: int
) -> tuple[float, Any]:
    """Seconds of ``pandapower.rundcopp`` on the instance and its bus prices (None: failed)."""
    import pandapower as pp

    net = copy.deepcopy(f.net)
    mw_per_kwh = 3.6 / CONFIG.interval_s
    sells = [o for o in orders if o.side == Side.SELL]
    buys = [o for o in orders if o.side == Side.BUY]
    for group, table in ((sells, "sgen"), (buys, "load")):
        if not group:
            continue
        bus = [parts[o.participant].bus for o in group]
        p_max = [o.quantity_wh / 1000 * mw_per_kwh for o in group]
        create = pp.create_sgens if table == "sgen" else pp.create_loads
        idx = create(net, bus, p_mw=0.0, min_p_mw=0.0, max_p_mw=p_max, controllable=True)
        sign = 1 if table == "sgen" else -1
        pp.create_poly_costs(net, idx, table, cp1_eur_per_mw=[sign * o.limit_price for o in group])
    for table in ("line", "trafo"):
        if "max_loading_percent" not in net[table]:
            net[table]["max_loading_percent"] = 100.0
    net.ext_grid["min_p_mw"] = -1e4
    net.ext_grid["max_p_mw"] = 1e4
    base = -float(f.base_p_mw.sum())
    eg = int(net.ext_grid.index[net.ext_grid.in_service][0])
    pp.create_pwl_cost(
        net,
        eg,
        "ext_grid",
        [[-1e4, base, CONFIG.feed_in_price], [base, 1e4, CONFIG.retail_price]],
    )
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        try:
            pp.rundcopp(net)
        except Exception:  # pandapower raises OPFNotConverged and numerical errors alike
            return time.perf_counter() - t0, None
        best = min(best, time.perf_counter() - t0)
    return best, np.asarray(net.res_bus.loc[f.bus_indices, "lam_p"])


@dataclass
class Row:
    feeder: str
    orders: int
    path: str
    result: ClearingResult
    rundcopp_s: float | None = None
    speedup: float | None = None
    dlmp: float | None = None


def best_of(repeats: int, run: Any) -> ClearingResult:
    results = [run() for _ in range(repeats)]
    return min(results, key=lambda r: r.stats.total_s)


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _status(r: ClearingResult) -> str:
    if r.ok and (r.ac is None or r.ac.passed):
        return "ok"
    return "INF" if r.status.has_solution or r.status.ac_failed else "err"


def _mismatch(r: ClearingResult) -> str:
    ac = r.ac
    if ac is None or not ac.converged:
        return f"{'-':>6} {'-':>5} {'-':>6}"
    flow = getattr(ac, "flow_mismatch", float("nan")) * 100
    vm = getattr(ac, "vm_mismatch_pu", float("nan")) * 1e4
    slack = getattr(ac, "slack_mismatch_wh", float("nan"))
    return f"{flow:>6.2f} {vm:>5.1f} {slack:>6.0f}"


def overvoltage_rows(feeders: list[str], sizes: list[int], repeats: int) -> list[Row]:
    """The LV overvoltage case on each feeder and book size (fast path, best of runs)."""
    rows = []
    for name in feeders:
        f = load_feeder(name)
        zero_point(f, "ac")
        for n in sizes:
            orders, parts = make_overvoltage_book(f, n)
            opts = ClearingOptions(sensitivities="ac", validate=False)
            run = lambda: clear(f, orders, parts, CONFIG, options=opts, allow_non_optimal=True)  # noqa: B023, E731 - called before the loop moves on
            run()  # warm-up
            rows.append(Row(f"{name}/ov", n, "fast", best_of(min(repeats, 2), run)))
            print(f"#   overvoltage {name} {n} orders done", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeders", nargs="+", default=["cigre-lv", "mv-oberrhein"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 1000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--overvoltage", action="store_true", help="add the LV overvoltage case")
    parser.add_argument("--ov-feeders", nargs="+", default=["cigre-lv", "kerber-dorfnetz"])
    parser.add_argument("--ov-sizes", nargs="+", type=int, default=[1000, 10_000])
    parser.add_argument("--pyomo-max", type=int, default=100_000, help="largest book for pyomo")
    parser.add_argument(
        "--rundcopp-max", type=int, default=10_000, help="largest book for rundcopp"
    )
    args = parser.parse_args(argv)

    rows: list[Row] = []
    warm = load_feeder("cigre-lv")  # first pyomo import and model build are not representative
    clear(warm, *make_book(warm, 10), CONFIG, options=ClearingOptions(solver="pyomo"))
    for name in args.feeders:
        f = load_feeder(name)
        t0 = time.perf_counter()
        zero_point(f, "ac")
        zero_point(f, "dc")
        lin_s = time.perf_counter() - t0
        print(
            f"# {name}: {f.n_bus} buses, {len(f.branches)} branches, lin {lin_s:.3f} s",
            file=sys.stderr,
        )
        for n in args.sizes:
            orders, parts = make_book(f, n)
            clear(f, orders, parts, CONFIG, options=NODAL_AC)  # warm-up
            repeats = args.repeats if n < 10_000 else min(args.repeats, 2) if n == 10_000 else 1
            fast = best_of(repeats, lambda: clear(f, orders, parts, CONFIG, options=NODAL_AC))  # noqa: B023 - called before the loop moves on
            row = Row(name, n, "fast", fast)
            if n <= args.rundcopp_max:
                dc = best_of(repeats, lambda: clear(f, orders, parts, CONFIG, options=NODAL_DC))  # noqa: B023 - called before the loop moves on
                pp_s, lam = rundcopp(f, orders, parts, repeats)
                row.rundcopp_s = pp_s
                row.speedup = pp_s / dc.stats.total_s
                if lam is not None:
                    row.dlmp = float(np.nanmax(np.abs(lam - [p.lmp for p in dc.prices])))
            rows.append(row)
            if n <= args.pyomo_max:
                ref_opts = ClearingOptions(sensitivities="ac", solver="pyomo")
                ref = clear(f, orders, parts, CONFIG, options=ref_opts)
                rows.append(Row(name, n, "pyomo", ref))
            print(f"#   {n} orders done", file=sys.stderr)

    if args.overvoltage:
        rows += overvoltage_rows(args.ov_feeders, args.ov_sizes, args.repeats)

    head = (
        f"{'feeder':<13} {'orders':>7} {'path':<6} {'lin':>6} {'build':>7} {'solve':>7} "
        f"{'extract':>7} {'ac':>6} {'total':>7} {'highs':>7} {'tot/highs':>9} {'rounds':>6} "
        f"{'st':>3} {'dflow%':>6} {'dvm':>5} {'dslack':>6} "
        f"{'rundcopp':>8} {'x':>6} {'dlmp':>6}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        s = r.result.stats
        print(
            f"{r.feeder:<13} {r.orders:>7} {r.path:<6} {s.linearise_s:>6.3f} {s.build_s:>7.3f} "
            f"{s.solve_s:>7.3f} {s.extract_s:>7.3f} {s.ac_check_s:>6.3f} {s.total_s:>7.3f} "
            f"{s.solver_s:>7.3f} {s.total_s / max(s.solver_s, 1e-9):>9.1f} {r.result.rounds:>6} "
            f"{_status(r.result):>3} {_mismatch(r.result)} "
            f"{fmt(r.rundcopp_s, 2):>8} {fmt(r.speedup, 0):>6} {fmt(r.dlmp, 1):>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
