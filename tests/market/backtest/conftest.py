"""A small backtest shared by the tests: two feeders (a built-in one and a file), two days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from market.backtest import BacktestSpec, resolve_feeders, run_backtest

#: The CLI flags of :func:`small_spec`'s backtest (the kill test starts it as a process).
SMALL_FLAGS = {
    "--days": "2",
    "--start": "2026-06-01",
    "--participants": "3",
    "--interval-s": "3600",
    "--pv-penetration": "1.0",
    "--ev-share": "0.5",
    "--seed": "7",
}


def write_tiny_feeder(path: Path) -> Path:
    """A four-bus LV feeder as a pandapower JSON file: 20/0.4 kV transformer, three cables."""
    import pandapower as pp

    net = pp.create_empty_network()
    mv = pp.create_bus(net, vn_kv=20.0, name="mv")
    lv = pp.create_bus(net, vn_kv=0.4, name="lv")
    pp.create_ext_grid(net, mv, vm_pu=1.0)
    pp.create_transformer(net, mv, lv, std_type="0.4 MVA 20/0.4 kV")
    previous = lv
    for i in range(3):
        bus = pp.create_bus(net, vn_kv=0.4, name=f"house {i}")
        pp.create_line(net, previous, bus, length_km=0.1, std_type="NAYY 4x150 SE")
        pp.create_load(net, bus, p_mw=0.004, q_mvar=0.001)
        previous = bus
    pp.to_json(net, str(path))
    return path


@pytest.fixture(scope="session")
def tiny_feeder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_feeder(tmp_path_factory.mktemp("feeders") / "tiny.json")


@pytest.fixture(scope="session")
def small_spec(tiny_feeder: Path) -> BacktestSpec:
    return BacktestSpec(
        feeders=tuple(resolve_feeders(["cigre-lv", str(tiny_feeder)])),
        start=dt.date(2026, 6, 1),
        days=2,
        participants=3,
        interval_s=3600,
        pv_penetration=1.0,
        ev_share=0.5,
        seed=7,
    )


@pytest.fixture(scope="session")
def reference(small_spec: BacktestSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small backtest run serially, in this process: the reference results."""
    folder = tmp_path_factory.mktemp("reference")
    outcome = run_backtest(small_spec, folder, serial=True)
    assert not outcome.failed, outcome.failed
    return folder
