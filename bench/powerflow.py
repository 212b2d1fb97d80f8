"""Power-flow benchmark: the fast AC power flow against pandapower's ``runpp``.

Per built-in feeder, on the same case (the base plus a seeded market
injection at every connectable bus): the median time of ``runpp`` on the
working network (:func:`grid.powerflow.run_ac`), of the fast flow alone
(:func:`grid.powerflow.solve_ac`) and of a whole :func:`grid.check_schedule`,
and the ratio ``runpp / fast``. Then a demo-sized clearing (60 orders on
cigre-lv and on kerber-dorfnetz, the demo's feeder; nodal, AC sensitivities,
AC check) against one ``runpp`` of that feeder in the same process. Ratios
within one run are the reliable figures on a loaded machine; the load average
is printed with them.

Usage::

    python bench/powerflow.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from clearing import CONFIG, NODAL_AC, make_book

from grid import BUILTIN_FEEDERS, Feeder, check_schedule, load_feeder
from grid.powerflow import run_ac, solve_ac
from market.clearing import clear


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _injection(feeder: Feeder) -> np.ndarray:
    rng = np.random.default_rng(3)
    inj = np.zeros(feeder.n_bus)
    for bus in feeder.connectable_buses:
        inj[bus.position] = rng.normal(0.0, 0.004 if bus.vn_kv < 1.0 else 0.15)
    return inj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'feeder':24} {'buses':>5} {'runpp ms':>9} {'fast ms':>8} {'check ms':>9} {'x':>6}")
    for name in BUILTIN_FEEDERS:
        f = load_feeder(name)
        inj = _injection(f)
        check_schedule(f, inj)  # builds the model

        def pp_run(f: Feeder = f, inj: np.ndarray = inj) -> None:
            with f.lock():
                run_ac(f, inj)

        def fast_run(f: Feeder = f, inj: np.ndarray = inj) -> None:
            with f.lock():
                solve_ac(f, inj)

        pp_s = _median_s(pp_run, max(args.repeat // 4, 3))
        fast_s = _median_s(fast_run, args.repeat)

        def check_run(f: Feeder = f, inj: np.ndarray = inj) -> None:
            check_schedule(f, inj)

        check_s = _median_s(check_run, args.repeat)
        print(
            f"{name:24} {f.n_bus:5d} {pp_s * 1e3:9.2f} {fast_s * 1e3:8.3f} "
            f"{check_s * 1e3:9.3f} {pp_s / fast_s:6.1f}"
        )
    for name in ("cigre-lv", "kerber-dorfnetz"):
        f = load_feeder(name)
        orders, parts = make_book(f, 60)
        result = clear(f, orders, parts, CONFIG, options=NODAL_AC)  # warm: zero point, model
        clear_s = _median_s(
            lambda f=f, orders=orders, parts=parts: clear(
                f, orders, parts, CONFIG, options=NODAL_AC
            ),
            args.repeat,
        )
        zeros = np.zeros(f.n_bus)

        def pp_zero(f: Feeder = f, zeros: np.ndarray = zeros) -> None:
            with f.lock():
                run_ac(f, zeros)

        pp_s = _median_s(pp_zero, max(args.repeat // 4, 3))
        print(
            f"demo clearing (60 orders, {name}, AC check, ok {result.ok}, "
            f"{result.rounds} rounds): {clear_s * 1e3:.1f} ms; one runpp {pp_s * 1e3:.1f} ms; "
            f"ratio {clear_s / pp_s:.2f}x runpp"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
