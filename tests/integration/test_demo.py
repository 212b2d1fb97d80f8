"""End to end: a shortened demo day through the same code path as ``make demo``.

Checks the books the way an auditor would: for every interval, metered
energy, trades, imbalance and settlement agree (``check_books``, recomputed
from the journal); token balances on chain equal the payments of the
clearing results; the report files exist and hold those numbers; and
``gridex report`` rebuilds the same tables from the engine's journal.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from contracts.devnode import HARDHAT_DEV_KEYS, HardhatNode
from market.cli import main
from market.demo.options import DemoOptions
from market.demo.run import VERIFY, DemoOutcome, run_demo
from market.report import PLOTS, SCHEMAS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> DemoOutcome:
    folder = tmp_path_factory.mktemp("demo") / "report"
    options = DemoOptions(
        scenario="mild",
        participants=6,
        modbus_devices=2,
        start=dt.date(2026, 6, 21),
        start_hour=9,
        intervals=4,
        report_dir=folder,
    )
    return run_demo(options, show_progress=False)


def test_books_balance_to_the_last_unit(outcome: DemoOutcome) -> None:
    assert outcome.book_problems == ()
    intervals = outcome.data.intervals
    assert intervals.height == 4
    assert intervals["ac_passed"].all()
    assert (intervals["gas_used"] > 0).all()


def test_the_verify_process_checked_every_interval(outcome: DemoOutcome) -> None:
    """The day was verified (in its own process) from one bundle per settled interval."""
    bundles = sorted(p.name for p in (outcome.report_dir / "bundles").iterdir())
    assert bundles == [f"interval-{k}" for k in outcome.data.intervals["interval"].sort()]
    assert outcome.timings[VERIFY] > 0


def test_every_home_streamed_readings_and_traded(outcome: DemoOutcome) -> None:
    data = outcome.data
    assert data.readings["participant"].n_unique() == 6
    assert data.metered["participant"].n_unique() == 6
    assert data.orders.height > 0
    # at 09:00-10:00 in June the PV homes sell and the others buy
    assert set(data.orders["side"].unique()) == {"buy", "sell"}


def test_settlements_carry_the_clearing_payments(outcome: DemoOutcome) -> None:
    data = outcome.data
    deltas = data.settlements.group_by("interval").agg(
        pl.col("delta").sum().alias("sum"), pl.col("fee").first()
    )
    assert (deltas["sum"] + deltas["fee"] == 0).all()
    # every participant's settled change = clearing payment + imbalance at tariffs,
    # checked by check_books; here: the sellers' fills are paid
    sold = data.fills.filter(pl.col("side") == "sell")["amount"].sum()
    assert sold > 0


def test_report_files_hold_the_numbers(outcome: DemoOutcome) -> None:
    folder = outcome.report_dir
    for name in SCHEMAS:
        frame = pl.read_parquet(folder / f"{name}.parquet")
        assert frame.equals(getattr(outcome.data, name)), name
    for name in PLOTS:
        assert (folder / name).stat().st_size > 10_000
    assert not [p.name for p in folder.iterdir() if p.name.endswith(("-wal", "-shm"))]
    assert not list(folder.parent.glob(".report.*")), "no work folder left beside the report"
    page = (folder / "index.html").read_text()
    for label, value in outcome.summary.rows():
        assert f"<td>{label}</td><td>{value}</td>" in page.replace("&#x27;", "'")


def test_gridex_report_rebuilds_the_same_tables(outcome: DemoOutcome, tmp_path: Path) -> None:
    out = tmp_path / "rebuilt"
    assert main(["report", "--db", str(outcome.journal), "--out", str(out)]) == 0
    for name in SCHEMAS:
        rebuilt = pl.read_parquet(out / f"{name}.parquet")
        assert rebuilt.equals(getattr(outcome.data, name)), name


def test_report_on_a_missing_journal_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--db", str(tmp_path / "none.db"), "--out", str(tmp_path)]) == 2
    assert "no such journal file" in capsys.readouterr().err


def test_demo_flags_are_validated(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--participants", "0"]) == 2
    assert "participants: must be 1..500" in capsys.readouterr().err


def test_demo_settles_on_a_real_json_rpc_node(
    chain_hardhat_node: HardhatNode, tmp_path: Path
) -> None:
    key = tmp_path / "operator.key"
    key.write_text(HARDHAT_DEV_KEYS[0] + "\n")
    key.chmod(0o600)  # key files are owner-only (gridex.keys)
    options = DemoOptions(
        scenario="mild",
        participants=4,
        modbus_devices=1,
        start_hour=10,
        intervals=2,
        report_dir=tmp_path / "report",
        rpc_url=chain_hardhat_node.url,
        key_file=key,
    )
    outcome = run_demo(options, show_progress=False)
    assert outcome.book_problems == ()
    assert outcome.data.settlements["tx_hash"].str.starts_with("0x").all()
    assert outcome.summary.gas_used > 0


def test_gridex_verify_recomputes_every_settled_interval_of_the_journal(
    outcome: DemoOutcome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``gridex verify --db`` (one feeder loaded for all bundles) agrees with the run."""
    assert main(["verify", "--db", str(outcome.journal), "--out", str(tmp_path / "b")]) == 0
    settled = outcome.data.settlements["interval"].n_unique()
    assert f"{settled} interval(s) verified" in capsys.readouterr().out


def test_a_short_flexible_day_publishes_the_battery_page(tmp_path: Path) -> None:
    """``--flex`` through the demo's whole path: rolls verify, the books balance and the
    index links ``flex.html`` with the day without flexibility beside it."""
    options = DemoOptions(
        participants=12,
        modbus_devices=1,
        start=dt.date(2026, 6, 21),
        start_hour=10,
        intervals=3,
        flex=True,
        report_dir=tmp_path / "report",
    )
    done = run_demo(options, show_progress=False)
    assert done.book_problems == ()
    page = (done.report_dir / "flex.html").read_text()
    assert "<h2>The day without flexibility</h2>" in page
    assert (done.report_dir / "flex_relief.png").stat().st_size > 0
    assert '<a href="flex.html">' in (done.report_dir / "index.html").read_text()
