"""A gateway installs little: importing meter_adapter pulls in none of the engine's stack."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import meter_adapter

FORBIDDEN = ("grid", "market", "contracts", "pandapower", "pyomo", "web3")
ROOT = Path(__file__).parents[2]


def all_modules() -> list[str]:
    return ["meter_adapter"] + [
        info.name for info in pkgutil.walk_packages(meter_adapter.__path__, "meter_adapter.")
    ]


def test_every_module_is_covered() -> None:
    names = all_modules()
    assert "meter_adapter.simulation.server" in names
    assert "meter_adapter.commands.simulate" in names


def test_importing_meter_adapter_imports_no_engine_package() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {all_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "import meter_adapter.cli\n"
        "meter_adapter.cli.build_parser()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded = json.loads(result.stdout)
    offenders = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert "pymodbus" in loaded
    assert "pvlib" in loaded
