"""Benchmark: building sensitivities (dense vs sparse) and one AC validation per feeder.

Prints one row per feeder: buses, branches, the time to build ``ac`` and
``dc`` sensitivities with the sparse LU and with a dense solve, and the time
of one AC validation (``check_schedule``: a full ``runpp`` plus limit check).
Each figure is the median of several runs after one warm-up run (numba
compiles pandapower's Newton solver on first use).

Run: ``.venv/bin/python bench/grid_sensitivities.py``
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from grid import BUILTIN_FEEDERS, Feeder, check_schedule, linearise, load_feeder


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _large_feeder() -> Feeder:
    import pandapower.networks as pn

    return Feeder.from_net(pn.case1354pegase(), name="case1354pegase")


def main() -> None:
    feeders = [load_feeder(name) for name in BUILTIN_FEEDERS]
    feeders.append(_large_feeder())
    header = (
        f"{'feeder':<16} {'buses':>6} {'branches':>8} "
        f"{'ac sparse':>10} {'ac dense':>10} {'dc sparse':>10} {'dc dense':>10} {'AC check':>10}"
    )
    print("grid sensitivities: median wall time per call, milliseconds")
    print(header)
    print("-" * len(header))
    for feeder in feeders:
        repeat = 3 if feeder.n_bus > 500 else 7
        zero = np.zeros(feeder.n_bus)
        row = [
            _median_s(lambda f=feeder, m=mode, s=method: linearise(f, mode=m, method=s), repeat)
            for mode in ("ac", "dc")
            for method in ("sparse", "dense")
        ]
        check = _median_s(lambda f=feeder, z=zero: check_schedule(f, z), repeat)
        cells = " ".join(f"{t * 1000:>10.1f}" for t in [*row, check])
        print(f"{feeder.name:<16} {feeder.n_bus:>6} {len(feeder.branches):>8} {cells}")


if __name__ == "__main__":
    main()
