"""Published bundles and ``gridex verify``: true bundles agree, tampered ones say where."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from eth_hash.auto import keccak

from market.bundle import feeder_digest, verify_bundle, write_bundle
from market.engine.clearing import MarketClearing
from market.engine.engine import Engine, EngineConfig
from market.engine.settler import RecordingSettler

from . import outage

CONFIG = EngineConfig(reading_skew_s=7200, reconciliation_window_s=4 * 3600)


@pytest.fixture
def bundle(make_engine: Callable[..., Engine], tmp_path: Path) -> Path:
    """The bundle of the outage interval: a provisional posting and a reconciliation."""
    market = outage.start(make_engine, settler=RecordingSettler(), config=CONFIG)
    outage.run(market, outage_minute=3, upload_at_ms=outage.END_MS + 3_600_000)
    engine = market.engine
    assert engine.state.intervals[outage.FIRST].version == 1
    return write_bundle(
        tmp_path / "bundle",
        engine.state,
        outage.FIRST,
        feeder_name="cigre-lv",
        feeder_sha256=feeder_digest(engine.feeder),
        market=engine.market,
        mechanism="nodal",
        operator=engine.lifecycle._operator,
        options=MarketClearing().options,
    ).parent


def _rewrite(path: Path, frame: pl.DataFrame, folder: Path) -> None:
    """Replace a bundle file and fix its hash in the manifest (a consistent forgery)."""
    import hashlib

    frame.write_parquet(path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_true_bundle_agrees(bundle: Path) -> None:
    assert verify_bundle(bundle) == []


def test_a_changed_reading_is_reported(bundle: Path) -> None:
    path = bundle / "metered.parquet"
    frame = pl.read_parquet(path)
    frame = frame.with_columns(
        pl.when((pl.col("version") == 1) & (pl.col("meter_id") == "m-0"))
        .then(pl.col("export_wh") + 100)
        .otherwise(pl.col("export_wh"))
        .alias("export_wh")
    )
    _rewrite(path, frame, bundle)
    found = verify_bundle(bundle)
    assert any("v1:" in line and "posted" in line and "recomputed" in line for line in found)
    assert any("hash does not follow" in line for line in found)


def test_a_changed_fill_is_reported(bundle: Path) -> None:
    """The operator publishes a result with one fill changed (and its hash): the
    clearing recomputed from the inputs disagrees and names the fill."""
    result = json.loads((bundle / "result.json").read_bytes())
    text = json.dumps(result)
    fills = result["fills"]
    fills[0]["filled_wh"] -= 1
    forged = json.dumps(result, sort_keys=True, separators=(",", ":")).encode()
    assert json.dumps(result) != text
    (bundle / "result.json").write_bytes(forged)
    manifest = json.loads((bundle / "manifest.json").read_text())
    import hashlib

    manifest["files"]["result.json"] = hashlib.sha256(forged).hexdigest()
    manifest["clearing"]["result_hash"] = keccak(forged).hex()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    found = verify_bundle(bundle)
    assert any("clearing recomputed" in line for line in found)
    assert any("fill of order" in line for line in found)


def test_a_file_changed_behind_the_manifest_is_reported(bundle: Path) -> None:
    path = bundle / "orders.parquet"
    frame = pl.read_parquet(path).with_columns(pl.col("quantity_wh") + 1)
    frame.write_parquet(path)
    found = verify_bundle(bundle)
    assert "orders.parquet does not match the manifest's SHA-256" in found[0]
    assert any("clearing recomputed" in line for line in found)
