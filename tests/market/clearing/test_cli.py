"""``gridex clear`` and its file formats, as an operator runs it."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from grid import load_feeder
from market.clearing import ClearingOptions, clear
from market.clearing.io import read_orders
from market.cli import main
from market.config import MarketConfig
from market.errors import InputFileError
from tests.market.clearing.nets import radial_net

HEADER = ["order_id", "participant", "bus", "side", "quantity_wh", "limit_price"]
ROWS = [
    ["s1", "0x" + "a" * 40, "3", "sell", "60000", "100000"],
    ["b1", "0x" + "B" * 40, "1", "buy", "100000", "250000"],
    ["b2", "0x" + "c" * 40, "5", "BUY", "3000", "320000"],
]


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def grid_file(tmp_path: Path) -> Path:
    import pandapower as pp

    path = tmp_path / "radial.json"
    pp.to_json(radial_net(), str(path))
    return path


def test_clear_writes_every_file(
    tmp_path: Path, grid_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = _csv(tmp_path / "orders.csv", HEADER, ROWS)
    out = tmp_path / "out"
    code = main(["clear", "--grid", str(grid_file), "--orders", str(orders), "--out", str(out)])
    assert code == 0, capsys.readouterr()
    fills = pl.read_csv(out / "fills.csv")
    assert {"order_id", "filled_wh", "price", "amount"} <= set(fills.columns)
    assert fills["order_id"].to_list() == ["s1", "b1", "b2"]
    prices = pl.read_csv(out / "prices.csv")
    assert {"bus", "price", "energy", "loss", "congestion", "voltage"} <= set(prices.columns)
    assert prices.height == 6
    trades = pl.read_csv(out / "trades.csv")
    assert trades["energy_wh"].sum() >= fills.filter(pl.col("side") == "buy")["filled_wh"].sum()
    summary = json.loads((out / "summary.json").read_text())
    (entry,) = summary["intervals"]
    assert summary["mechanism"] == "nodal"
    assert entry["status"] == "optimal/optimal"
    for key in ("welfare", "grid_import_wh", "grid_export_wh", "ac_check", "rounds", "timings_s"):
        assert key in entry
    assert entry["ac_check"]["passed"] is True


def test_parquet_with_intervals_and_options(tmp_path: Path, grid_file: Path) -> None:
    frame = pl.DataFrame(
        {
            "order_id": ["s1", "b1", "s1"],
            "participant": ["0x" + "a" * 40, "0x" + "b" * 40, "0x" + "a" * 40],
            "bus": [3, 1, 3],
            "side": ["sell", "buy", "sell"],
            "quantity_wh": [5000, 4000, 7000],
            "limit_price": [100_000, 250_000, 50_000],
            "interval": [11, 11, 12],
        }
    )
    frame.write_parquet(tmp_path / "orders.parquet")
    out = tmp_path / "out"
    args = ["clear", "--grid", str(grid_file), "--orders", str(tmp_path / "orders.parquet")]
    args += ["--out", str(out), "--mechanism", "uniform"]
    args += ["--retail-price", "310000", "--feed-in-price", "70000"]
    assert main(args) == 0
    fills = pl.read_csv(out / "fills.csv")
    assert fills["interval"].to_list() == [11, 11, 12]
    assert fills["filled_wh"].to_list() == [4000, 4000, 7000]
    prices = pl.read_csv(out / "prices.csv")
    by_interval = dict(prices.group_by("interval").agg(pl.col("price").unique()).iter_rows())
    assert by_interval == {11: [100_000], 12: [70_000]}  # marginal seller; then the feed-in price
    summary = json.loads((out / "summary.json").read_text())
    assert [e["interval"] for e in summary["intervals"]] == [11, 12]
    # the physical export: 7 kWh sold less the losses on the way (AC power flow)
    entry = summary["intervals"][1]
    assert entry["grid_export_wh"] == -round(entry["ac_check"]["ext_grid_change_wh"])
    assert 6900 < entry["grid_export_wh"] < 7000


def test_invalid_order_exits_2_naming_the_order(
    tmp_path: Path, grid_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [*ROWS, ["x9", "0x" + "d" * 40, "0", "buy", "5", "1"]]  # bus 0: the HV side
    orders = _csv(tmp_path / "orders.csv", HEADER, rows)
    code = main(
        ["clear", "--grid", str(grid_file), "--orders", str(orders), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "'x9'" in err
    assert "may not connect" in err


def test_bad_cells_name_row_and_column(tmp_path: Path) -> None:
    bad = [row.copy() for row in ROWS]
    bad[1][4] = "12.5"
    with pytest.raises(
        InputFileError,
        match=r"orders.csv row 2, column quantity_wh: expected a positive integer, got '12.5'",
    ):
        read_orders(_csv(tmp_path / "orders.csv", HEADER, bad))
    bad = [row.copy() for row in ROWS]
    bad[2][3] = "hold"
    with pytest.raises(InputFileError, match=r"row 3, column side: expected 'buy' or 'sell'"):
        read_orders(_csv(tmp_path / "orders.csv", HEADER, bad))
    bad = [row.copy() for row in ROWS]
    bad[0][1] = "alice"
    with pytest.raises(InputFileError, match=r"row 1, column participant"):
        read_orders(_csv(tmp_path / "orders.csv", HEADER, bad))
    two_buses = [*ROWS, ["s2", "0x" + "a" * 40, "4", "sell", "1", "1"]]
    with pytest.raises(
        InputFileError,
        match=r"row 4, column bus: participant 0x(a){40} is at bus 3 in row 1, got 4",
    ):
        read_orders(_csv(tmp_path / "orders.csv", HEADER, two_buses))


def test_missing_column_and_missing_file(
    tmp_path: Path, grid_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path / "orders.csv", HEADER[:-1], [r[:-1] for r in ROWS])
    with pytest.raises(InputFileError, match=r"missing column.*limit_price"):
        read_orders(path)
    code = main(
        ["clear", "--grid", str(grid_file), "--orders", str(path), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "limit_price" in capsys.readouterr().err
    with pytest.raises(InputFileError, match="no such file"):
        read_orders(tmp_path / "nope.csv")
    (tmp_path / "orders.xlsx").write_text("x")
    with pytest.raises(InputFileError, match=r"expected a \.csv or \.parquet"):
        read_orders(tmp_path / "orders.xlsx")


def test_summary_hash_is_the_result_bytes(tmp_path: Path, grid_file: Path) -> None:
    orders_path = _csv(tmp_path / "orders.csv", HEADER, ROWS)
    out = tmp_path / "out"
    args = ["clear", "--grid", str(grid_file), "--orders", str(orders_path), "--out", str(out)]
    assert main([*args, "--sensitivities", "dc", "--base-forecast", "static"]) == 0
    book = read_orders(orders_path)
    feeder = load_feeder(grid_file)
    result = clear(
        feeder,
        book.intervals[0],
        book.participants,
        MarketConfig(),
        options=ClearingOptions(sensitivities="dc"),
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["intervals"][0]["result_sha256"] == hashlib.sha256(result.to_json()).hexdigest()
    assert summary["base_forecast"] == "static"
    # by default each interval is cleared against the profile forecast's view of the feeder
    assert main([*args, "--sensitivities", "dc"]) == 0
    from market.forecast import ProfileForecast, ViewCache

    views = ViewCache(feeder, ProfileForecast(feeder))
    profiled = clear(
        views.at(0)[0],
        book.intervals[0],
        book.participants,
        MarketConfig(),
        options=ClearingOptions(sensitivities="dc"),
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["base_forecast"] == views.label
    profiled_sha = hashlib.sha256(profiled.to_json()).hexdigest()
    assert summary["intervals"][0]["result_sha256"] == profiled_sha
    assert profiled.to_json() != result.to_json()


def test_a_semicolon_file_gets_a_hint_about_the_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(";".join(HEADER) + "\n" + ";".join(str(v) for v in ROWS[0]) + "\n")
    with pytest.raises(InputFileError, match="seems to use ';' as its delimiter"):
        read_orders(path)
    comma = _csv(tmp_path / "ok.csv", HEADER[:-1], [r[:-1] for r in ROWS])
    with pytest.raises(InputFileError) as info:
        read_orders(comma)
    assert "delimiter" not in str(info.value)  # only when the header says so
    assert "missing column limit_price;" in str(info.value)  # singular for one


def test_books_recomputed_from_the_output_files(tmp_path: Path, grid_file: Path) -> None:
    """Money from fills × prices and energy from a fresh power flow, using only the files."""
    import numpy as np

    from grid import check_schedule

    orders = _csv(tmp_path / "orders.csv", HEADER, ROWS)
    out = tmp_path / "out"
    args = ["clear", "--grid", str(grid_file), "--orders", str(orders), "--out", str(out)]
    # the static base: the power flow below is of the feeder file as it is
    assert main([*args, "--grid-fee", "3000", "--base-forecast", "static"]) == 0
    fills = pl.read_csv(out / "fills.csv").to_dicts()
    prices = {r["bus"]: r for r in pl.read_csv(out / "prices.csv").to_dicts()}
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["intervals"][0]
    retail, feed_in, fee = summary["retail_price"], summary["feed_in_price"], 3000
    pay = receive = 0
    for f in fills:
        p = prices[f["bus"]]
        assert p["energy"] + p["loss"] + p["congestion"] + p["voltage"] == p["price"]
        if f["side"] == "buy":
            assert f["price"] == min(p["price"] + fee, f["limit_price"], retail)
            assert f["amount"] == f["filled_wh"] * f["price"] // 1000
            pay += f["amount"]
        else:
            assert f["price"] == max(p["price"], f["limit_price"], feed_in)
            assert f["amount"] == -((-f["filled_wh"] * f["price"]) // 1000)
            receive += f["amount"]
    imp, exp = entry["grid_import_wh"], entry["grid_export_wh"]
    assert entry["grid_import_amount"] == -((-imp * retail) // 1000)
    assert entry["grid_export_amount"] == exp * feed_in // 1000
    residual = pay - receive - entry["grid_import_amount"] + entry["grid_export_amount"]
    assert entry["operator_surplus"] == max(residual, 0)
    assert entry["grid_rounding_amount"] == min(residual, 0)
    # energy: the power flow of the fills, against the feeder without any market
    f = load_feeder(str(grid_file))
    inj = np.zeros(f.n_bus)
    for x in fills:
        sign = 1 if x["side"] == "sell" else -1
        inj[f.position_of(x["bus"])] += sign * x["filled_wh"] / 250_000  # Wh per 15 min → MW
    base, ac = check_schedule(f, np.zeros(f.n_bus)), check_schedule(f, inj)
    assert abs(imp - exp - (ac.ext_grid_p_mw - base.ext_grid_p_mw) * 250_000) <= 0.51
    sold = sum(x["filled_wh"] for x in fills if x["side"] == "sell")
    bought = sum(x["filled_wh"] for x in fills if x["side"] == "buy")
    assert entry["losses_wh"] == imp - exp - bought + sold
    assert abs(entry["losses_wh"] - (ac.losses_mw - base.losses_mw) * 250_000) <= 0.51


def test_dc_voltage_breach_is_not_cleared_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12: with dc the voltage rows were dropped silently and the run exited 0."""
    rows = [["s1", "0x" + "a" * 40, "19", "sell", "110000", "10000"]]
    orders = _csv(tmp_path / "orders.csv", HEADER, rows)
    out = tmp_path / "out"
    base = ["clear", "--grid", "cigre-lv", "--orders", str(orders), "--out", str(out)]
    base += ["--base-forecast", "static"]
    assert main([*base, "--sensitivities", "dc"]) == 1
    err = capsys.readouterr().err
    assert "not cleared" in err
    assert "vm_pu" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["constraints"] == ["lines", "trafos"]  # only what was enforced
    assert summary["intervals"][0]["termination"] == "ac_infeasible"
    assert pl.read_csv(out / "fills.csv")["filled_wh"].to_list() == [0]
    # asking dc for voltage is an input error, not a silent drop
    assert main([*base, "--sensitivities", "dc", "--constraints", "lines,voltage"]) == 2
    assert "voltage" in capsys.readouterr().err
