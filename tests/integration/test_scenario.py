"""The default scenario (sunny-congested): the grid binds, and only the copper plate breaks it.

Two shortened runs of the default day through the same code path as ``make
demo``: late morning (PV at its peak) and the evening (cars and heat
pumps). Across them the uniform counterfactual must break at least one
voltage limit and one loading limit in the AC power flow, while gridex's
nodal schedule breaks none, neither as cleared nor as metered (the homes
follow their dispatch). A wrong implementation caught here: clearing
against the static base instead of the forecast, a nodal LP that drops the
voltage or branch rows, homes that export what they did not sell, or a
counterfactual that reuses the nodal schedule.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from market.cli import main
from market.demo.options import DemoOptions
from market.demo.run import DemoOutcome, run_demo
from market.report import counterfactual
from market.report.journal import read_journal, report_from_journal
from market.report.plots_grid import GRID_PLOTS

pytestmark = pytest.mark.integration

#: (UTC start hour, intervals): noon PV peak, evening car charging
WINDOWS = {"noon": (10, 3), "evening": (17, 3)}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DemoOutcome]:
    out = {}
    for name, (hour, count) in WINDOWS.items():
        options = DemoOptions(
            modbus_devices=1,
            start=dt.date(2026, 6, 21),
            start_hour=hour,
            intervals=count,
            report_dir=tmp_path_factory.mktemp(name) / "report",
        )
        out[name] = run_demo(options, show_progress=False)
    return out


def _traded(outcome: DemoOutcome) -> pl.DataFrame:
    """Counterfactual rows of intervals that had orders (a shortened run's first has none)."""
    with_orders = outcome.data.orders["interval"].unique()
    return outcome.data.counterfactual.filter(pl.col("interval").is_in(with_orders.to_list()))


def test_the_default_is_the_congested_day(outcomes: dict[str, DemoOutcome]) -> None:
    options = DemoOptions()
    assert options.scenario == "sunny-congested"
    assert options.feeder == "kerber-extrem-dorfnetz"
    for outcome in outcomes.values():
        assert outcome.book_problems == ()


def test_copper_plate_breaks_voltage_and_loading_limits(
    outcomes: dict[str, DemoOutcome],
) -> None:
    cf = pl.concat([_traded(o) for o in outcomes.values()])
    assert cf.height > 0
    assert int(cf["uniform_buses_over"].sum()) >= 1
    assert int((cf["uniform_lines_over"] + cf["uniform_trafos_over"]).sum()) >= 1
    assert float(cf["uniform_vm_max_pu"].max()) > 1.1  # type: ignore[arg-type]
    # and the summary says so
    noon = outcomes["noon"].summary
    assert noon.uniform_intervals_broken >= 1
    assert noon.curtailed_wh > 0


def test_nodal_breaks_no_limit_as_cleared_or_as_metered(
    outcomes: dict[str, DemoOutcome],
) -> None:
    for name, outcome in outcomes.items():
        cf = _traded(outcome)
        broken = cf["nodal_buses_over"] + cf["nodal_lines_over"] + cf["nodal_trafos_over"]
        assert cf["nodal_converged"].all(), name
        assert int(broken.sum()) == 0, name
        iv = outcome.data.intervals.filter(pl.col("interval").is_in(cf["interval"].to_list()))
        assert iv["ac_passed"].all(), name
        assert int(iv["delivered_violations"].sum()) == 0, name
        assert outcome.summary.nodal_intervals_broken == 0


def test_the_page_draws_the_network_and_says_what_happened(
    outcomes: dict[str, DemoOutcome],
) -> None:
    folder = outcomes["noon"].report_dir
    for name in GRID_PLOTS:
        assert (folder / name).stat().st_size > 10_000, name
    page = (folder / "index.html").read_text()
    assert "would have broken the grid in" in page
    assert 'src="network.png"' in page


def test_gridex_report_rebuilds_the_counterfactual(
    outcomes: dict[str, DemoOutcome], tmp_path: Path
) -> None:
    outcome = outcomes["evening"]
    out = tmp_path / "rebuilt"
    assert main(["report", "--db", str(outcome.journal), "--out", str(out)]) == 0
    for name in ("counterfactual", "grid_state", "intervals"):
        rebuilt = pl.read_parquet(out / f"{name}.parquet")
        assert rebuilt.equals(getattr(outcome.data, name)), name
    assert (out / "network.png").exists()


def _without_flows(journal: Path, copy: Path) -> Path:
    """A copy of ``journal`` as the engine wrote it before it journaled flows."""
    shutil.copy(journal, copy)
    db = sqlite3.connect(copy)
    with db:
        for seq, body in db.execute("SELECT seq, body FROM journal WHERE kind = 'cleared'"):
            entry = json.loads(body)
            entry.pop("flows", None)
            db.execute("UPDATE journal SET body = ? WHERE seq = ?", (json.dumps(entry), seq))
    db.close()
    return copy


def test_the_report_reads_the_engines_flows_and_they_equal_a_new_power_flow(
    outcomes: dict[str, DemoOutcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nodal schedule's AC flow is journaled by the engine, read instead of run
    again, and equal to check_schedule run afresh on an old-style journal.

    Caught: flows of another schedule (an earlier round's, the base case),
    arrays out of order, a limit rule unlike check_schedule's, a report that
    still runs the nodal flow, or one that cannot read a journal without flows.
    """
    outcome = outcomes["evening"]
    cleared = outcome.data.intervals["interval"].to_list()
    # every reported interval's flow is journaled (and those cleared for later ones)
    assert set(cleared) <= set(read_journal(outcome.journal).flows)
    calls: list[int] = []
    real = counterfactual.check_schedule

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(counterfactual, "check_schedule", counted)
    journaled, _ = report_from_journal(outcome.journal)
    with_flows = len(calls)
    old = _without_flows(outcome.journal, tmp_path / "old.db")
    assert not read_journal(old).flows
    recomputed, _ = report_from_journal(old)
    # the old journal runs one more power flow per cleared interval: the nodal one
    assert len(calls) - with_flows == with_flows + len(cleared)
    for name in ("counterfactual", "grid_state", "intervals"):
        assert getattr(journaled, name).equals(getattr(outcome.data, name)), name
        assert_frame_equal(
            getattr(recomputed, name), getattr(journaled, name), rel_tol=1e-9, abs_tol=1e-9
        )
