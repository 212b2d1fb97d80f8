"""Big feeders: case1354pegase with 10k orders through AC clearing (time, rounds, peak memory).

The base case of case1354pegase already breaks voltage and loading limits, so
they are widened first (as issue 15 asks); participants connect where the grid
has load. Run: ``python bench/big_feeder.py``.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from clearing import CONFIG, NODAL_AC, make_book

from grid import Feeder, check_schedule
from market.clearing import clear


def main() -> int:
    import pandapower.networks as pn

    print(f"load average {os.getloadavg()[0]:.1f}")
    t0 = time.perf_counter()
    net = pn.case1354pegase()
    net.bus["max_vm_pu"] = 1.2
    net.bus["min_vm_pu"] = 0.8
    net.line["max_loading_percent"] = 1000.0
    net.trafo["max_loading_percent"] = 1000.0
    net.bus["connectable"] = net.bus.index.isin(net.load.bus)
    feeder = Feeder.from_net(net, name="case1354pegase")
    t1 = time.perf_counter()
    base = check_schedule(feeder, np.zeros(feeder.n_bus))
    t2 = time.perf_counter()
    print(
        f"load {t1 - t0:.1f} s; {feeder.n_bus} buses, {len(feeder.branches)} branches; "
        f"base flow {t2 - t1:.2f} s, ok {base.ok}, vm {base.vm_min_pu:.3f}-{base.vm_max_pu:.3f}"
    )
    orders, parts = make_book(feeder, 10_000)
    for label in ("cold", "warm"):
        start = time.perf_counter()
        result = clear(feeder, orders, parts, CONFIG, options=NODAL_AC)
        st = result.stats
        print(
            f"10k orders, {label}: {time.perf_counter() - start:.1f} s, {result.status}, "
            f"{result.rounds} rounds; linearise {st.linearise_s:.1f} s, "
            f"solve {st.solve_s:.1f} s (HiGHS {st.solver_s:.1f} s), AC check {st.ac_check_s:.1f} s"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:.0f} MB; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
