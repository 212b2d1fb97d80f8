"""``gridex verify --rpc-url --deployment`` against a real node (Hardhat).

The outage interval of issue 13 is settled by an engine on Hardhat (a
provisional posting and a reconciliation); ``gridex verify`` then checks the
journal's bundles against the contract's record on that node, and reports a
reading and a fill an operator changed after posting, exiting 1.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak

from contracts import Chain, Ledger, deploy
from contracts.devnode import HARDHAT_CHAIN_ID, HARDHAT_DEV_KEYS, HardhatNode
from grid import load_feeder
from market.engine.clock import SimClock
from market.engine.engine import Engine
from market.engine.signing import Signer
from tests.market.engine import chain_outage, outage
from tests.market.engine.conftest import OPERATOR_KEY, T0_MS

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []
    feeder = load_feeder("cigre-lv")

    def make(**kwargs: Any) -> Engine:
        kwargs.setdefault("clock", SimClock(T0_MS))
        kwargs.setdefault("operators", [Signer(OPERATOR_KEY).address])
        engine = Engine(feeder, tmp_path / "engine.db", **kwargs)
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "market.cli", "verify", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_verify_checks_the_postings_on_a_json_rpc_node(
    chain_hardhat_node: HardhatNode, make_engine: Callable[..., Engine], tmp_path: Path
) -> None:
    chain = Chain.connect(
        chain_hardhat_node.url, operator_key=HARDHAT_DEV_KEYS[0], expected_chain_id=HARDHAT_CHAIN_ID
    )
    deployment = deploy(chain)
    deployment.save(tmp_path / "deployment.json")
    engine = chain_outage.settle_on_chain(make_engine, Ledger(chain, deployment))
    engine.close()
    node = ["--rpc-url", chain_hardhat_node.url, "--deployment", str(tmp_path / "deployment.json")]

    done = _verify("--db", str(tmp_path / "engine.db"), "--out", str(tmp_path / "b"), *node)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all agree" in done.stdout
    assert f"against {chain_hardhat_node.url}" in done.stdout
    assert "interval-" in done.stderr  # one progress line per interval

    # an operator republishes the bundle with a reading changed and every hash fitted
    forged = tmp_path / "b" / f"interval-{outage.FIRST}"
    chain_outage.forge_reading(forged)
    done = _verify(str(forged), *node)
    assert done.returncode == 1
    assert f"interval {outage.FIRST} v0: the chain holds hash" in done.stdout
    assert f"interval {outage.FIRST} v1: the chain holds hash" in done.stdout

    # ... or with one fill of the published result changed
    done = _verify("--db", str(tmp_path / "engine.db"), "--out", str(tmp_path / "c"), *node)
    assert done.returncode == 0, done.stdout + done.stderr
    bundle = tmp_path / "c" / f"interval-{outage.FIRST}"
    result = json.loads((bundle / "result.json").read_bytes())
    result["fills"][0]["filled_wh"] -= 1
    text = json.dumps(result, sort_keys=True, separators=(",", ":")).encode()
    (bundle / "result.json").write_bytes(text)
    index = json.loads((bundle / "manifest.json").read_text())
    index["files"]["result.json"] = hashlib.sha256(text).hexdigest()
    index["clearing"]["result_hash"] = keccak(text).hex()
    (bundle / "manifest.json").write_text(json.dumps(index))
    done = _verify(str(bundle), *node)
    assert done.returncode == 1
    assert "fill of order" in done.stdout
    assert "the chain holds hash" in done.stdout


def test_verify_names_a_missing_deployment(tmp_path: Path) -> None:
    done = _verify(str(tmp_path), "--rpc-url", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert "--rpc-url: needs --deployment" in done.stderr
