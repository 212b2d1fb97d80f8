"""Operator report: tables, summary figures computed by hand, plots and page."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from market.report import PLOTS, SCHEMAS, ReportData, summarise, write_report

A = "0x" + "a" * 40
B = "0x" + "b" * 40


def _interval(i: int, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "interval": i,
        "start_s": i * 900,
        "local_wh": 1000,
        "import_wh": 500,
        "export_wh": 0,
        "losses_wh": 10,
        "price_min": 90_000,
        "price_mean": 100_000.0,
        "price_max": 110_000,
        "max_line_loading_percent": 50.0,
        "max_trafo_loading_percent": 60.0,
        "vm_min_pu": 0.95,
        "vm_max_pu": 1.02,
        "rounds": 1,
        "ac_passed": True,
        "uniform_violations": 0,
        "operator_surplus": 3,
        "settled_volume": 100,
        "gas_used": 50_000,
        "delivered_max_line_loading_percent": 40.0,
        "delivered_max_trafo_loading_percent": 70.0,
        "delivered_vm_min_pu": 0.94,
        "delivered_vm_max_pu": 1.03,
        "delivered_violations": 0,
    }
    row.update(over)
    return row


def _data() -> ReportData:
    return ReportData.from_rows(
        intervals=[_interval(0), _interval(1, uniform_violations=2, import_wh=0)],
        orders=[
            {"interval": 0, "participant": A, "order_id": "s", "side": "sell", "bus": 3,
             "quantity_wh": 1000, "limit_price": 80_000},
            {"interval": 0, "participant": B, "order_id": "b", "side": "buy", "bus": 4,
             "quantity_wh": 1500, "limit_price": 200_000},
        ],
        fills=[
            {"interval": 0, "participant": A, "order_id": "s", "side": "sell", "bus": 3,
             "filled_wh": 1000, "price": 100_000, "amount": 100_000},
            {"interval": 0, "participant": B, "order_id": "b", "side": "buy", "bus": 4,
             "filled_wh": 1500, "price": 120_000, "amount": 180_000},
        ],
        prices=[
            {"interval": 0, "bus": 3, "price": 90_000, "energy": 90_000, "loss": 0,
             "congestion": 0, "voltage": 0},
            {"interval": 1, "bus": 4, "price": 140_000, "energy": 100_000, "loss": 0,
             "congestion": 40_000, "voltage": 0},
        ],
        metered=[
            {"interval": 0, "participant": A, "import_wh": 0, "export_wh": 1000,
             "production_wh": 1500},
            {"interval": 0, "participant": B, "import_wh": 1500, "export_wh": 0,
             "production_wh": -1},
        ],
        balances=[{"interval": 0, "account": A, "balance": 100_000}],
    )  # fmt: skip


def test_summary_figures_by_hand() -> None:
    s = summarise(_data(), retail_price=300_000, feed_in_price=80_000, wall_s=1.5)
    assert s.intervals == 2
    assert s.participants == 2
    assert s.local_wh == 2000
    assert s.import_wh == 500
    # interval 0: 1500 Wh imported, 1000 Wh exported by neighbours at the same time
    assert s.self_sufficiency == pytest.approx(1000 / 1500)
    assert (s.metered_import_wh, s.metered_export_wh) == (1500, 1000)
    assert s.price_mean == pytest.approx(180_000 * 1000 / 1500)
    # over what filled orders paid or received, not bus prices where nobody traded
    assert (s.price_min, s.price_max) == (100_000, 120_000)
    assert s.events_avoided == 1
    assert s.delivered_violations == 0
    assert s.gas_used == 100_000
    assert s.settled_volume == 200


def test_write_report_writes_tables_plots_and_page(tmp_path: Path) -> None:
    data = _data()
    summary = write_report(
        data, tmp_path, title="test run", retail_price=300_000, feed_in_price=80_000
    )
    for name in SCHEMAS:
        frame = pl.read_parquet(tmp_path / f"{name}.parquet")
        assert frame.equals(getattr(data, name))
    for name in PLOTS:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    page = (tmp_path / "index.html").read_text()
    for label, value in summary.rows():
        assert label in page
        assert value in page
    assert ReportData.read(tmp_path).fills.equals(data.fills)


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="price_mean"):
        ReportData(
            **{
                name: pl.DataFrame(schema=schema)
                if name != "intervals"
                else pl.DataFrame(schema={k: v for k, v in schema.items() if k != "price_mean"})
                for name, schema in SCHEMAS.items()
            }
        )


def _journal(tmp_path: Path) -> Path:
    from grid import load_feeder
    from market.engine.clock import SimClock
    from market.engine.engine import Engine

    db = tmp_path / "engine.db"
    engine = Engine(load_feeder("cigre-lv"), db, clock=SimClock(1944000 * 900_000))
    engine.start()
    engine.close()
    return db


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE journal SET body = 'not json' WHERE kind = 'start'", "body is not JSON"),
        ("UPDATE journal SET body = '{}' WHERE kind = 'start'", "the start entry is malformed"),
        ("UPDATE journal SET body = '[1]' WHERE kind = 'start'", "the start entry is malformed"),
    ],
)
def test_a_corrupt_journal_is_an_input_error(tmp_path: Path, sql: str, message: str) -> None:
    import sqlite3

    from market.errors import InputFileError
    from market.report.journal import read_journal

    db = _journal(tmp_path)
    assert read_journal(db).feeder  # intact: it replays
    with sqlite3.connect(db) as conn:
        conn.execute(sql)
    conn.close()
    with pytest.raises(InputFileError, match=message):
        read_journal(db)
