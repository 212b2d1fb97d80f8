"""Big books: where the time of a 100k- and a 1M-order clearing goes, and the peak memory.

Each book size runs in its own subprocess (so one size's memory peak does not
hide the next one's) and prints, for the ``nodal`` mechanism on ``cigre-lv``
with ``ac`` sensitivities, every constraint and the AC check (the default
options; the feeder is small, so the AC check costs little next to the
book):

* ``valid``: :func:`market.validation.validate_orders` on its own, with the
  garbage collector held as :func:`~market.clearing.clear` holds it (the
  clearing repeats it inside ``build``);
* ``build``, ``solve``, ``highs`` (HiGHS's own run time), ``extract``, ``ac``
  and ``total`` seconds from :class:`~market.clearing.SolverStats`, of one
  warm :func:`market.clearing.clear` call, and ``highs%``, HiGHS's share of
  the total;
* ``rows``: seconds to materialise every fill, trade and payment row after
  the call (they are built lazily, on first access);
* ``rss0`` and ``peak``: the process's resident memory before the call and
  its peak (``ru_maxrss``) after it, MB; the book's ``Order`` objects are in
  both.

Books are those of ``bench/clearing.py`` (buy and sell volumes each about 1.5
times the feeder's base load, so a big book is many small orders), generated
with numpy.

Usage::

    python bench/big_books.py                   # 100k and 1M orders
    python bench/big_books.py --sizes 100000 --feeder cigre-lv
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from grid import Feeder, load_feeder
from market.config import MarketConfig
from market.orders import Order, Participant, Side

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)


def make_book(f: Feeder, n: int, seed: int = 7) -> tuple[list[Order], dict[str, Participant]]:
    """``n`` orders by ``n // 2`` participants on ``f``'s connectable buses."""
    rng = np.random.default_rng(seed)
    buses = np.array([b.index for b in f.connectable_buses])
    load_kwh = (
        max(-float(f.base_p_mw[f.base_p_mw < 0].sum()), 0.05) * 1000 * CONFIG.interval_s / 3600
    )
    mean_wh = 1.5 * load_kwh * 1000 / (n / 2)
    n_people = max(n // 2, 1)
    people = [f"0x{i:040x}" for i in range(n_people)]
    bus_of = rng.choice(buses, n_people).tolist()
    parts = {a: Participant(a, b) for a, b in zip(people, bus_of, strict=True)}
    sell = rng.random(n) < 0.5
    qty = np.maximum(1, (mean_wh * rng.uniform(0.2, 1.8, n)).astype(np.int64)).tolist()
    price = np.where(
        sell, rng.integers(40_000, 250_000, n), rng.integers(150_000, 350_000, n)
    ).tolist()
    who = rng.integers(0, n_people, n).tolist()
    side = [Side.SELL if s else Side.BUY for s in sell.tolist()]
    orders = [
        Order(f"o{i}", people[w], s, 0, q, p)
        for i, (w, s, q, p) in enumerate(zip(who, side, qty, price, strict=True))
    ]
    return orders, parts


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(feeder: str, n: int) -> dict[str, float]:
    """One size, in this process: the figures of the module docstring."""
    from market.clearing import ClearingOptions, clear
    from market.clearing._cache import zero_point
    from market.validation import validate_orders

    f = load_feeder(feeder)
    zero_point(f, "ac")
    orders, parts = make_book(f, n)
    options = ClearingOptions(sensitivities="ac")
    clear(f, orders[:1000], parts, CONFIG, options=options)  # warm-up: imports, caches
    gc.disable()
    t0 = time.perf_counter()
    problems = validate_orders(orders, config=CONFIG, participants=parts, feeder=f, interval=0)
    valid_s = time.perf_counter() - t0
    gc.enable()
    assert not problems, problems[:3]
    rss0 = _rss_mb()
    result = clear(f, orders, parts, CONFIG, options=options)
    t0 = time.perf_counter()
    n_rows = len(tuple(result.fills)) + len(tuple(result.trades)) + len(tuple(result.payments))
    rows_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = result.stats
    return {
        "orders": n,
        "valid": valid_s,
        "build": s.build_s,
        "solve": s.solve_s,
        "highs": s.solver_s,
        "extract": s.extract_s,
        "ac": s.ac_check_s,
        "total": s.total_s,
        "rows": rows_s,
        "n_rows": n_rows,
        "rounds": result.rounds,
        "ok": float(result.ok),
        "rss0": rss0,
        "peak": peak,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeder", default="cigre-lv")
    parser.add_argument("--sizes", nargs="+", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the subprocess's size
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.feeder, args.one)))
        return 0
    print(
        f"# feeder {args.feeder}, nodal, ac sensitivities, AC check; {os.getloadavg()[0]:.2f} load"
    )
    head = (
        f"{'orders':>8} {'valid':>6} {'build':>6} {'solve':>6} {'highs':>6} {'extract':>7} "
        f"{'ac':>6} {'total':>7} {'highs%':>6} {'rows':>6} {'rounds':>6} {'ok':>3} "
        f"{'rss0':>6} {'peak':>6}"
    )
    print(head)
    print("-" * len(head))
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--feeder", args.feeder, "--one", str(n)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{n:>8} {r['valid']:>6.3f} {r['build']:>6.3f} {r['solve']:>6.3f} {r['highs']:>6.3f} "
            f"{r['extract']:>7.3f} {r['ac']:>6.3f} {r['total']:>7.3f} "
            f"{100 * r['highs'] / r['total']:>5.0f}% {r['rows']:>6.3f} {r['rounds']:>6} "
            f"{'yes' if r['ok'] else 'no':>3} {r['rss0']:>6.0f} {r['peak']:>6.0f}"
        )
    print(f"# load after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
