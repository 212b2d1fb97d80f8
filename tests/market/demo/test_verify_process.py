"""The demo's verifier process: what it raises comes back to the demo, and it stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import ChainConnectionError, Deployment
from market.demo.verify_process import VerifyProcess

NOWHERE = Deployment(chain_id=1, token="0x" + "11" * 20, settlement="0x" + "22" * 20, block=0)


def test_an_error_in_the_child_is_raised_with_its_type(tmp_path: Path) -> None:
    verifier = VerifyProcess("cigre-lv")
    try:
        # nothing listens on port 9: connecting to the chain fails in the child
        verifier.start(
            tmp_path / "engine.db",
            tmp_path / "bundles",
            rpc_url="http://127.0.0.1:9",
            deployment_json=NOWHERE.to_json(),
        )
        with pytest.raises(ChainConnectionError, match=r"127\.0\.0\.1:9"):
            verifier.result()
    finally:
        verifier.close()


def test_closing_before_the_day_ends_stops_the_child() -> None:
    never = VerifyProcess("cigre-lv")
    never.close()  # not launched: nothing to stop
    assert never._process.pid is None

    verifier = VerifyProcess("cigre-lv")
    verifier.launch()
    verifier.close()
    assert not verifier._process.is_alive()
    assert verifier._process.exitcode is not None
