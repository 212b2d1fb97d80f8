"""Published bundles and ``gridex verify``: true bundles agree, tampered ones say where."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from eth_hash.auto import keccak

from contracts import Chain, Ledger, SettlementDriver, deploy
from market._cli_verify import bundles_from_journal, verify_journal
from market.bundle import ChainPostings, verify_bundle, write_bundle
from market.engine.clearing import MarketClearing
from market.engine.engine import Engine, EngineConfig
from market.engine.settler import RecordingSettler
from market.manifest import feeder_digest

from . import chain_outage, outage

CONFIG = EngineConfig(reading_skew_s=7200, reconciliation_window_s=4 * 3600)


@pytest.fixture
def settled(make_engine: Callable[..., Engine]) -> tuple[Engine, RecordingSettler]:
    """The outage interval: a provisional posting and a reconciliation."""
    settler = RecordingSettler()
    market = outage.start(make_engine, settler=settler, config=CONFIG)
    outage.run(market, outage_minute=3, upload_at_ms=outage.END_MS + 3_600_000)
    assert market.engine.state.intervals[outage.FIRST].version == 1
    return market.engine, settler


@pytest.fixture
def bundle(settled: tuple[Engine, RecordingSettler], tmp_path: Path) -> Path:
    engine = settled[0]
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
    frame.write_parquet(path)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_true_bundle_agrees(bundle: Path) -> None:
    assert verify_bundle(bundle) == []


def test_what_was_posted_is_the_hash_of_each_posting_manifest(
    settled: tuple[Engine, RecordingSettler], bundle: Path
) -> None:
    """The engine posts keccak-256 of each posting's published manifest (not the
    clearing's hash), and each version's manifest names the hash of the one before."""
    engine, settler = settled
    s = engine.state.intervals[outage.FIRST]
    v0 = (bundle / "posting-v0.json").read_bytes()
    v1 = (bundle / "posting-v1.json").read_bytes()
    (posted,) = {x.result_hash for x in settler.settlements if x.interval == outage.FIRST}
    (corrected,) = {x.result_hash for x in settler.corrections if x.interval == outage.FIRST}
    assert posted == keccak(v0) == s.settlement.result_hash
    assert corrected == keccak(v1) == s.corrections[0].result_hash
    assert s.settlement.result_hash != s.clearing.result_hash
    assert json.loads(v1)["previous_hash"] == keccak(v0).hex()
    manifest = json.loads(v0)
    assert manifest["outputs"]["clearing"]["result_hash"] == s.clearing.result_hash.hex()
    assert manifest["outputs"]["deltas"] == dict(s.settlement.deltas)
    # the provisional metering had the seller's meter incomplete and estimated
    assert manifest["inputs"]["metering"]["m-0"][3:] == [False, True]
    assert json.loads(v1)["inputs"]["metering"]["m-0"][3:] == [True, False]


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
    assert any("v1: the manifest rebuilt from the bundle hashes to" in line for line in found)
    assert any("posting-v1.json says inputs.metering.m-0" in line for line in found)
    assert not any(" v0:" in line for line in found)


def test_a_changed_fill_is_reported(bundle: Path) -> None:
    """The operator publishes a result with one fill changed (and its hash): the
    clearing recomputed from the inputs disagrees and names the fill."""
    result = json.loads((bundle / "result.json").read_bytes())
    result["fills"][0]["filled_wh"] -= 1
    forged = json.dumps(result, sort_keys=True, separators=(",", ":")).encode()
    (bundle / "result.json").write_bytes(forged)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["result.json"] = hashlib.sha256(forged).hexdigest()
    manifest["clearing"]["result_hash"] = keccak(forged).hex()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    found = verify_bundle(bundle)
    assert any("clearing recomputed" in line for line in found)
    assert any("fill of order" in line for line in found)
    # the postings named the true clearing: their rebuilt manifests no longer hash right
    assert any("v0: the manifest rebuilt from the bundle hashes to" in line for line in found)


def test_a_file_changed_behind_the_manifest_is_reported(bundle: Path) -> None:
    path = bundle / "orders.parquet"
    frame = pl.read_parquet(path).with_columns(pl.col("quantity_wh") + 1)
    frame.write_parquet(path)
    found = verify_bundle(bundle)
    assert "orders.parquet does not match the manifest's SHA-256" in found[0]
    assert any("orders.parquet is not the order book the manifest names" in line for line in found)
    assert any("clearing recomputed" in line for line in found)


def test_a_book_that_does_not_clear_again_is_a_difference_not_a_crash(bundle: Path) -> None:
    """Orders forged to negative quantities (the file's hash fixed) make the LP
    infeasible: verify reports that, and still checks the rest of the bundle."""
    path = bundle / "orders.parquet"
    _rewrite(path, pl.read_parquet(path).with_columns(pl.lit(-5).alias("quantity_wh")), bundle)
    found = verify_bundle(bundle)
    assert any(
        "the bundle's inputs do not clear again (InfeasibleClearingError" in f for f in found
    )
    assert any("orders.parquet is not the order book the manifest names" in f for f in found)
    # the postings are still recomputed (without the clearing's payments) and differ
    assert any(" v0: " in f and "posted" in f and "recomputed" in f for f in found)


@pytest.fixture
def embedded_ledger() -> Ledger:
    chain = Chain.embedded()
    return Ledger(chain, deploy(chain))


def test_only_the_chain_catches_a_bundle_forged_throughout(
    make_engine: Callable[..., Engine], embedded_ledger: Ledger, tmp_path: Path
) -> None:
    """On the embedded EVM: bundles written from the journal agree with the chain;
    an operator that changes a reading and makes every hash in the bundle fit is
    caught by the hash the contract holds (and by the recomputed deltas)."""
    engine = chain_outage.settle_on_chain(make_engine, embedded_ledger)
    engine.close()
    chain = ChainPostings(embedded_ledger)
    assert [e.result_hash for e in chain.of(outage.FIRST)] == [
        "0x" + engine.state.intervals[outage.FIRST].settlement.result_hash.hex(),
        "0x" + engine.state.intervals[outage.FIRST].corrections[0].result_hash.hex(),
    ]
    folders = bundles_from_journal(tmp_path / "engine.db", tmp_path / "bundles")
    assert len(folders) > 1  # the intervals around the outage settled too
    assert [line for f in folders for line in verify_bundle(f, chain=chain)] == []
    (folder,) = [f for f in folders if f.name == f"interval-{outage.FIRST}"]
    # a posting the journal knows nothing of is reported too
    foreign = outage.FIRST + 1000
    deltas = {chain_outage.GRID_ACCOUNT: -5, chain_outage.PARTICIPANTS[0]: 5}
    SettlementDriver(embedded_ledger).settle_interval(foreign, deltas, 0, b"\x07" * 32)
    _, found = verify_journal(tmp_path / "engine.db", tmp_path / "again", ledger=embedded_ledger)
    assert found == [f"interval {foreign}: posted on chain, but not settled in the journal"]
    chain = ChainPostings(embedded_ledger)
    chain_outage.forge_reading(folder)
    found = verify_bundle(folder)
    assert not any("SHA-256" in line or "hashes to" in line for line in found)
    found = verify_bundle(folder, chain=chain)
    assert any("v0: the chain holds hash" in line for line in found)
    assert any("v1: the chain holds hash" in line for line in found)
