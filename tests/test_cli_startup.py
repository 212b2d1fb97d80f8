"""Both command lines answer ``--help`` without importing the heavy stack (issue 10, fast start).

Which modules a fresh interpreter holds after ``--help`` is deterministic,
so this checks that rather than a time (start-up times live in
``bench/startup.py``). Every subcommand's ``--help`` is covered too: they
share one parser, so a subcommand module that imports eth_account, pandapower
or Dask at module level fails here whichever command is asked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]

#: Packages that cost a second or more between them and no ``--help`` needs.
HEAVY = (
    "eth_account",
    "web3",
    "pandapower",
    "pandas",
    "numba",
    "dask",
    "distributed",
    "polars",
    "pyomo",
    "highspy",
    "scipy",
    "grpc",
    "pymodbus",
    "pvlib",
)

_PROBE = """
import json, sys
from {module} import build_parser, main
parser = build_parser()
commands = list(parser._subparsers._group_actions[0].choices)
for argv in [["--help"], *[[c, "--help"] for c in commands]]:
    try:
        main(argv)
    except SystemExit as exc:
        assert exc.code == 0, (argv, exc.code)
print(json.dumps({{"commands": commands, "modules": sorted(sys.modules)}}))
"""


def _help_modules(module: str) -> tuple[list[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    out = json.loads(done.stdout.splitlines()[-1])
    return out["commands"], out["modules"]


@pytest.mark.parametrize(
    ("module", "some_commands"),
    [
        ("market.cli", {"backtest", "demo", "serve", "clear", "grid"}),
        ("meter_adapter.cli", {"run", "simulate", "keygen"}),
    ],
)
def test_help_imports_no_heavy_package(module: str, some_commands: set[str]) -> None:
    commands, modules = _help_modules(module)
    assert some_commands <= set(commands)  # the probe did reach the subcommands
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
