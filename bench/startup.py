"""Start-up times of the command lines, as a new user meets them.

Each case runs a fresh process several times and prints the fastest and the
median wall time (the first run of ``grid info`` is reported apart: it may
compile or fill caches). Cases:

- ``gridex --help``, ``gridex-meter --help``, ``gridex --version``, and the
  ``--help`` of the subcommands with the heaviest implementations
  (``backtest``: Dask, polars; ``demo``: eth_account, the engine), which
  import none of it (``tests/test_cli_startup.py`` checks the modules);
- ``gridex grid info cigre-lv`` (loads pandapower, builds the feeder, runs
  one AC power flow);
- ``gridex clear`` of six orders on cigre-lv (nodal clearing with its AC check);
- ``gridex serve`` on a port already taken: how long until it gives up
  (it should check the port before loading anything) and whether it left a
  journal behind.

``--root DIR`` measures another checkout of gridex (e.g. ``git worktree add
/tmp/base main``) with this environment's interpreter, to compare before and
after. Figures, not assertions: the machine is shared.

    python bench/startup.py [--runs 3] [--root DIR] [--help-only]

``--help-only`` runs the ``--help``/``--version`` cases alone (seconds, not
minutes, on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - start, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument(
        "--help-only", action="store_true", help="only the --help and --version cases"
    )
    args = parser.parse_args()
    root = args.root.resolve()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "proto")])}
    py = sys.executable
    gridex = [py, "-m", "market.cli"]
    meter = [py, "-m", "meter_adapter.cli"]
    print(f"gridex checkout: {root}; {args.runs} runs each; load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<44} {'first s':>8} {'fastest s':>10} {'median s':>9}")
    cases = {
        "gridex --help": [*gridex, "--help"],
        "gridex-meter --help": [*meter, "--help"],
        "gridex --version": [*gridex, "--version"],
        "gridex backtest --help": [*gridex, "backtest", "--help"],
        "gridex demo --help": [*gridex, "demo", "--help"],
    }
    if not args.help_only:
        cases["gridex grid info cigre-lv"] = [*gridex, "grid", "info", "cigre-lv"]
    with tempfile.TemporaryDirectory() as tmp:
        orders = Path(tmp) / "orders.csv"
        rows = ["order_id,participant,bus,side,quantity_wh,limit_price"]
        for i, (bus, side, qty, price) in enumerate(
            [(12, "sell", 2000, 90_000), (16, "sell", 1500, 100_000), (21, "sell", 1000, 95_000),
             (14, "buy", 1800, 250_000), (18, "buy", 1200, 280_000), (22, "buy", 900, 260_000)]
        ):  # fmt: skip
            rows.append(f"o{i},0x{i + 1:040x},{bus},{side},{qty},{price}")
        orders.write_text("\n".join(rows) + "\n")
        out = Path(tmp) / "result"
        if not args.help_only:
            cases["gridex clear (6 orders, cigre-lv)"] = [
                *gridex, "clear", "--grid", "cigre-lv", "--orders", str(orders), "--out", str(out)
            ]  # fmt: skip
        for name, argv in cases.items():
            runs = [_timed(argv, env, Path(tmp)) for _ in range(args.runs + 1)]
            times = [t for t, _ in runs]
            first, rest = times[0], times[1:]
            codes = sorted({c for _, c in runs})
            note = "" if codes == [0] else f"   (exit {codes})"
            print(
                f"{name:<44} {first:>8.2f} {min(rest):>10.2f} {statistics.median(rest):>9.2f}{note}"
            )
        if args.help_only:
            return
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            serve_dir = Path(tmp) / "serve"
            serve_dir.mkdir()
            db = serve_dir / "engine.db"
            argv = [*gridex, "serve", "--grid", "cigre-lv", "--db", str(db), "--port", str(port)]
            took, code = _timed(argv, env, serve_dir)
            left = sorted(p.name for p in serve_dir.iterdir())
            print(
                f"{'gridex serve, port in use (exit ' + str(code) + ')':<44} {took:>8.2f}"
                f"   journal left behind: {left or 'none'}"
            )


if __name__ == "__main__":
    main()
