"""A rolled interval's bundle carries the whole roll, and ``gridex verify`` clears it again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from grid import Feeder
from market._cli_verify import bundles_from_journal
from market.bundle import verify_bundle
from market.engine.engine import Engine, EngineConfig
from market.engine.settler import RecordingSettler
from market.engine.signing import Signer
from market.flex import StorageOrder
from market.forecast import ProfileForecast
from market.manifest import canonical
from market.orders import Order, Side

from . import outage

CONFIG = EngineConfig(verify_replay=True, flex_horizon_intervals=4)


def _settled_roll(make_engine: Callable[..., Engine], feeder: Feeder) -> Engine:
    """The outage case's two traders, plus a battery that charges from a cheap surplus
    in ``FIRST`` for a dear buyer in ``FIRST + 1``: every interval cleared in a roll on
    a profile forecast."""
    market = outage.start(
        make_engine,
        settler=RecordingSettler(),
        config=CONFIG,
        base_forecast=ProfileForecast(feeder),
    )
    engine = market.engine
    owner = Signer(f"0x{0x77:064x}")
    bus = engine.feeder.connectable_buses[-1].index
    engine.register_participant(owner.address, bus).result()
    battery = StorageOrder("bat", owner.address, 10_000, 0, 0, 10_000, 4000, 4000, 0.9, 0.9, 0, 1)
    engine.submit_flex_order(battery).result()
    cheap = Order("s2", market.seller, Side.SELL, outage.FIRST, 5000, 10_000)
    dear = Order("b2", market.buyer, Side.BUY, outage.FIRST + 1, 5000, 290_000)
    for order in (cheap, dear):
        engine.submit_order(order).result()
    outage.run(market, outage_minute=None, upload_at_ms=None)
    assert outage.FIRST in engine.state.flex_rolls
    assert engine.state.intervals[outage.FIRST].settlement is not None
    return engine


@pytest.fixture
def rolled(
    make_engine: Callable[..., Engine], engine_feeder: Feeder, tmp_path: Path
) -> tuple[Engine, Path]:
    engine = _settled_roll(make_engine, engine_feeder)
    engine.close()
    (folder,) = bundles_from_journal(tmp_path / "engine.db", tmp_path / "bundles", outage.FIRST)
    return engine, folder


def _forge(folder: Path, name: str, data: bytes) -> None:
    """Replace a bundle file and fix its hash in the index (a consistent forgery)."""
    (folder / name).write_bytes(data)
    index = json.loads((folder / "manifest.json").read_text())
    index["files"][name] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(index))


def test_a_rolled_interval_verifies_from_its_bundle(rolled: tuple[Engine, Path]) -> None:
    engine, folder = rolled
    index = json.loads((folder / "manifest.json").read_text())
    roll = index["inputs"]["roll"]
    assert roll["intervals"] == 4
    assert roll["bases_sha256"] is not None  # cleared on the forecast: every base published
    flex = json.loads((folder / "flex.json").read_bytes())
    assert [(v, b["order_id"], b["soc_wh"]) for v, b in flex] == [(1, "bat", 0)]
    # the firm fills are the battery's: the clearing of one interval alone has none
    result = json.loads((folder / "result.json").read_bytes())
    assert any(f["order_id"] == "bat/in" and f["filled_wh"] > 0 for f in result["fills"])
    assert verify_bundle(folder) == []
    # the hash on chain commits to the roll: it is the manifest the bundle rebuilds
    posted = engine.state.intervals[outage.FIRST].settlement
    assert posted is not None
    assert index["postings"][0]["result_hash"] == posted.result_hash.hex()


def test_a_changed_flex_order_is_caught_by_its_digest_and_the_clearing(
    rolled: tuple[Engine, Path],
) -> None:
    _, folder = rolled
    flex = json.loads((folder / "flex.json").read_bytes())
    flex[0][1]["soc_wh"] = 5000  # the battery said it was half full
    _forge(folder, "flex.json", canonical(flex))
    found = verify_bundle(folder)
    assert f"interval {outage.FIRST}: flex.json is not the roll input the manifest names" in found
    assert any("clearing recomputed from the inputs has hash" in line for line in found)
    assert any("is not horizon.json" in line for line in found)


def test_a_changed_later_order_is_caught(rolled: tuple[Engine, Path]) -> None:
    import polars as pl

    _, folder = rolled
    later = pl.read_parquet(folder / "horizon-orders.parquet")
    assert later["order_id"].to_list() == ["b2"]
    cheaper = later.with_columns(pl.lit(150_000, dtype=pl.Int64).alias("limit_price"))
    cheaper.write_parquet(folder / "horizon-orders.parquet")
    _forge(folder, "horizon-orders.parquet", (folder / "horizon-orders.parquet").read_bytes())
    found = verify_bundle(folder)
    assert any("horizon-orders.parquet is not the roll input" in line for line in found)


def test_the_journal_replays_a_roll_from_its_journaled_inputs(
    make_engine: Callable[..., Engine], engine_feeder: Feeder, tmp_path: Path
) -> None:
    """Replay clears each roll on the flexibility orders and bases the journal holds, not
    on the orders as they stand after it, nor on a forecast given at restart."""
    engine = _settled_roll(make_engine, engine_feeder)
    digest = engine.digest()
    engine.close()
    # restarted without a forecast: the journaled bases still clear every roll the same
    replayed = make_engine(settler=RecordingSettler(), config=CONFIG)
    assert replayed.digest() == digest


def test_the_day_without_flexibility_clears_the_ordinary_books_alone(
    rolled: tuple[Engine, Path], engine_feeder: Feeder, tmp_path: Path
) -> None:
    """By hand: without the battery, the buyer of ``FIRST + 1`` (5000 Wh at 0.29 tokens,
    under the 0.30 retail price) gets nothing; with it, what the roll filled (the
    battery's discharge, which a sum over all fills would count as served demand too)."""
    from market.report.plots_flex import write_flex_page
    from market.report.without_flex import without_flex

    engine, _ = rolled
    effect = without_flex(tmp_path / "engine.db", engine_feeder)
    assert effect is not None
    assert effect.intervals == len(engine.state.flex_rolls)
    assert effect.without.unserved_wh == 5000
    roll = json.loads(engine.state.flex_rolls[outage.FIRST + 1].horizon_json)
    assert roll["schedules"][0]["discharge_wh"][0] > 0
    fills = {f["order_id"]: f["filled_wh"] for f in roll["results"][0]["result"]["fills"]}
    assert fills["b2"] > 0
    assert effect.with_flex.unserved_wh == 5000 - fills["b2"]
    # interval by interval: the dear buyer's interval is where the battery discharged
    rows = {r.interval: r for r in effect.rows}
    assert sorted(rows) == sorted(engine.state.flex_rolls)
    dear = rows[outage.FIRST + 1]
    assert (dear.without.unserved_wh, dear.with_flex.unserved_wh) == (5000, 5000 - fills["b2"])
    assert dear.discharged_wh == fills["bat/out"] > 0
    assert rows[outage.FIRST].charged_wh > 0  # from the cheap surplus of FIRST
    page = write_flex_page(
        tmp_path / "engine.db", tmp_path / "report", interval_s=900, feeder=engine_feeder
    )
    assert page is not None
    text = page.path.read_text()
    assert f"{5000 / 1000:.1f} kWh of demand unserved" in text
    assert "flex_relief.png" in text
    assert (tmp_path / "report" / "flex_relief.png").exists()


def test_a_flex_order_of_an_unknown_kind_is_an_input_error(rolled: tuple[Engine, Path]) -> None:
    from market.errors import InputFileError

    _, folder = rolled
    flex = json.loads((folder / "flex.json").read_bytes())
    flex[0][1]["kind"] = "flywheel"
    _forge(folder, "flex.json", canonical(flex))
    with pytest.raises(InputFileError, match="cannot read the roll"):
        verify_bundle(folder)
