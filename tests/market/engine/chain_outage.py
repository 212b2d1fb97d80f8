"""The outage case of issue 13 settled on a real Settlement contract (any chain).

:func:`settle_on_chain` funds the two participants and the operator's account,
runs :mod:`outage` with a :class:`market.engine.settler.ChainSettler` (a
provisional posting, then a reconciliation when the buffer arrives) and
returns the engine; :func:`forge_reading` is an operator that republishes a
bundle with one reading changed and every hash in the bundle made to fit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from contracts import Ledger, SettlementDriver
from market.engine.engine import Engine, EngineConfig
from market.engine.settler import ChainSettler
from market.engine.signing import Signer
from market.manifest import canonical, manifest_hash

from . import outage

ESCROW = 10**9
#: The participants :func:`outage.start` registers (``conftest.register``'s keys).
PARTICIPANTS = [Signer(f"0x{i + 1:064x}").address for i in range(2)]
#: The account that takes the grid's side (not the chain's operator key, whose
#: address may be one of the participants' on a development chain).
GRID_ACCOUNT = Signer("0x" + "33" * 32).address


def settle_on_chain(make_engine: Callable[..., Engine], ledger: Ledger) -> Engine:
    """The outage interval settled on ``ledger``'s contract: version 0, then version 1."""
    ledger.mint(ledger.chain.operator.address, ESCROW * 3)
    for account in [*PARTICIPANTS, GRID_ACCOUNT]:
        ledger.deposit_for(account, ESCROW)
    config = EngineConfig(
        reading_skew_s=7200, reconciliation_window_s=4 * 3600, operator_account=GRID_ACCOUNT
    )
    market = outage.start(
        make_engine, settler=ChainSettler(SettlementDriver(ledger)), config=config
    )
    outage.run(market, outage_minute=3, upload_at_ms=outage.END_MS + 3_600_000)
    engine = market.engine
    s = engine.state.intervals[outage.FIRST]
    assert s.version == 1, s.failure
    return engine


def forge_reading(bundle: Path, *, meter_id: str = "m-0", extra_wh: int = 100) -> None:
    """Change ``meter_id``'s export in every posting's metering by ``extra_wh`` and
    rewrite the posting manifests, their chained hashes and the index so that
    the bundle is consistent in itself."""
    path = bundle / "metered.parquet"
    frame = pl.read_parquet(path).with_columns(
        pl.when(pl.col("meter_id") == meter_id)
        .then(pl.col("export_wh") + extra_wh)
        .otherwise(pl.col("export_wh"))
        .alias("export_wh")
    )
    frame.write_parquet(path)
    index: dict[str, Any] = json.loads((bundle / "manifest.json").read_text())
    previous = b""
    for posting in index["postings"]:
        name = f"posting-v{posting['version']}.json"
        manifest = json.loads((bundle / name).read_bytes())
        manifest["inputs"]["metering"][meter_id][2] += extra_wh
        manifest["previous_hash"] = previous.hex()
        (bundle / name).write_bytes(canonical(manifest))
        posting["previous_hash"] = previous.hex() if previous else ""
        previous = manifest_hash(manifest)
        posting["result_hash"] = previous.hex()
    for name in index["files"]:
        index["files"][name] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(index))
