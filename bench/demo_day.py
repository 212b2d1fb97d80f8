"""The demo day end to end: wall time, where it goes, and the headline figures.

Runs ``gridex demo`` (the default ``sunny-congested`` scenario unless
``--scenario`` says otherwise) in this process, without the progress bar,
and prints the time per phase (:mod:`market.demo.timing`) and the figures the
issue quotes: self-sufficiency, traded kWh, violations avoided, curtailed kWh.

Usage: ``python bench/demo_day.py [--scenario sunny-congested|mild] [--intervals N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from market.demo.options import DemoOptions
from market.demo.run import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="sunny-congested")
    parser.add_argument("--intervals", type=int, default=None)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        outcome = run_demo(
            DemoOptions(
                scenario=args.scenario,
                intervals=args.intervals,
                report_dir=Path(folder) / "report",
            ),
            show_progress=False,
        )
        wall = time.perf_counter() - t0
    s = outcome.summary
    load = os.getloadavg()[0]
    print(
        f"scenario {args.scenario}: {s.intervals} intervals, wall {wall:.1f} s "
        f"(load average {load_before:.1f} before, {load:.1f} after, on {os.cpu_count()} cores)"
    )
    print("  (postings run on their own thread behind the clock: shares overlap)")
    for phase, seconds in sorted(outcome.timings.items(), key=lambda kv: -kv[1]):
        print(f"  {phase:<62} {seconds:7.1f} s  {seconds / wall:5.0%}")
    print(f"  self-sufficiency (metered)        {s.self_sufficiency:.1%}")
    print(f"  traded locally                    {s.local_wh / 1000:,.1f} kWh")
    print(
        f"  exported / imported via market    {s.export_wh / 1000:,.1f} / "
        f"{s.import_wh / 1000:,.1f} kWh"
    )
    print(
        f"  violations avoided                {s.events_avoided} intervals "
        f"({s.uniform_buses_broken} buses, {s.uniform_branches_broken} lines/trafos; "
        f"voltage up to {s.uniform_vm_max_pu:.3f} p.u., loading up to "
        f"{s.uniform_max_loading_percent:.0f} %)"
    )
    print(
        f"  nodal broke (cleared / metered)   {s.nodal_intervals_broken} / "
        f"{s.delivered_violations} intervals"
    )
    print(
        f"  curtailed PV / deferred demand    {s.curtailed_wh / 1000:,.1f} / "
        f"{s.deferred_wh / 1000:,.1f} kWh"
    )
    print(
        f"  books                             "
        f"{'balanced' if not outcome.book_problems else outcome.book_problems}"
    )


if __name__ == "__main__":
    main()
