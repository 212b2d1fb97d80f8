"""The README's walkthrough, run exactly as written, so the README cannot drift.

The blocks of the README section "Walkthrough: every role on one machine" run
in order as one bash script (``set -euo pipefail``) in a fresh folder, with
the README's Python snippet saved as ``trader.py``, against a Hardhat node
this test starts on 127.0.0.1. The test only says where the node and the
engine listen (``RPC``, ``ENGINE``: the README's own variables, so a free
port can be used on a shared machine) and puts ``.venv/bin`` first on PATH.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.devnode import HardhatNode

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
SECTION = "## Walkthrough: every role on one machine"


def readme_blocks() -> tuple[list[str], str]:
    """The walkthrough's ``sh`` blocks, in order, and the trader's Python snippet."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end >= 0 else len(text)]
    shell = re.findall(r"```sh\n(.*?)```", section, re.S)
    python = re.findall(r"```python\n(.*?)```", text, re.S)
    snippets = [p for p in python if 'key_file="trader.key"' in p]
    assert len(snippets) == 1, "the README has one trader snippet with key_file='trader.key'"
    return shell, snippets[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_blocks_are_found() -> None:
    shell, python = readme_blocks()
    assert len(shell) == 4
    assert "gridex serve" in shell[0]
    assert "TraderClient" in python


def test_readme_walkthrough_runs_as_written(
    chain_hardhat_node: HardhatNode, tmp_path: Path
) -> None:
    shell, python = readme_blocks()
    (tmp_path / "trader.py").write_text(python, encoding="utf-8")
    script = "set -euo pipefail\n" + "\n".join(shell)
    engine = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "RPC": chain_hardhat_node.url,
        "ENGINE": engine,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "proto")]),
    }
    env.pop("GRIDEX_KEY_PASSWORD", None)
    run = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    logs = {name: (tmp_path / name).read_text() for name in ("serve.log", "meter.log")
            if (tmp_path / name).exists()}  # fmt: skip
    detail = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}\nlogs:\n{logs}"
    assert run.returncode == 0, detail
    out = run.stdout
    assert "ORDER_STATUS_OPEN" in out, detail
    assert re.search(r"participant 0x[0-9a-f]{40} registered at bus 12", out), detail
    assert re.search(r"engine clock now \d+ ms", out), detail
    assert "gridex serve: stopped; the journal engine.db is complete" in logs["serve.log"], detail

    # settled on chain: the Settlement contract accepted intervals with the engine's hashes
    from contracts import Chain, Deployment, Ledger

    ledger = Ledger(
        Chain.connect(chain_hardhat_node.url), Deployment.load(tmp_path / "deployment.json")
    )
    on_chain = {e.interval_id: e.result_hash for e in ledger.settled_events()}
    first_open = int(re.findall(r"orders for intervals (\d+)\.\.", out)[0])
    assert first_open in on_chain, detail  # the interval of the trader's order
    # ... with the hash the engine journaled (its posting manifest's)
    import sqlite3

    with sqlite3.connect(f"file:{tmp_path / 'engine.db'}?mode=ro", uri=True) as db:
        bodies = [json.loads(b) for (b,) in db.execute(
            "SELECT body FROM journal WHERE kind = 'settled'")]  # fmt: skip
    journaled = {b["interval"]: "0x" + b["result_hash"].removeprefix("0x") for b in bodies}
    assert on_chain[first_open] == journaled[first_open]
    trader = (tmp_path / "trader.key").read_text().split("address ")[1].split()[0]
    # a lone buyer is not matched against the grid (it pays retail through imbalance
    # anyway), so the escrow holds what was funded: nothing was lost or double-counted
    assert ledger.escrow_balance(trader) <= 5_000_000
    # anyone can check the operator: every settled interval recomputed and found on chain
    assert re.search(r"\d+ interval\(s\) verified against .* all agree", out), detail
    # the report was built from the journal, complete
    assert (tmp_path / "report" / "index.html").is_file()
    assert not list((tmp_path / "report").glob("*-wal")), "no SQLite side files in the report"
