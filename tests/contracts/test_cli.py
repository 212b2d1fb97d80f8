"""``gridex chain``: argument handling, key files, settlement files (embedded chain)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from eth_account import Account

from contracts import ChainConfigError, Deployment
from contracts import cli as chain_cli
from contracts.errors import SettlementError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gridex")
    chain_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_deploy_on_the_embedded_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deployment.json"
    assert _run(["chain", "deploy", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    printed = Deployment.from_json(captured.out)
    assert Deployment.load(out) == printed
    assert printed.token != printed.settlement
    assert "embedded chain" in captured.err


def test_balances_and_settle_file_need_a_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment = tmp_path / "d.json"
    deployment.write_text("{}")
    assert _run(["chain", "balances", "--deployment", str(deployment)]) == 1
    assert "--rpc-url is required" in capsys.readouterr().err


def test_key_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    account = Account.from_key(b"\x07" * 32)
    plain = tmp_path / "key.txt"
    plain.write_text("# the operator\n" + account.key.hex() + "\n")  # what gridex keygen writes
    plain.chmod(0o600)
    assert chain_cli.read_key_file(plain).address == account.address

    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "pw", iterations=2)))
    monkeypatch.delenv("GRIDEX_KEY_PASSWORD", raising=False)
    with pytest.raises(ChainConfigError, match="GRIDEX_KEY_PASSWORD"):
        chain_cli.read_key_file(keystore)
    monkeypatch.setenv("GRIDEX_KEY_PASSWORD", "wrong")
    with pytest.raises(ChainConfigError, match="cannot decrypt"):
        chain_cli.read_key_file(keystore)
    monkeypatch.setenv("GRIDEX_KEY_PASSWORD", "pw")
    assert chain_cli.read_key_file(keystore).address == account.address

    with pytest.raises(ChainConfigError, match=r"key file .*missing: No such file"):
        chain_cli.read_key_file(tmp_path / "missing")
    (tmp_path / "junk").write_text("not a key")
    (tmp_path / "junk").chmod(0o600)
    with pytest.raises(ChainConfigError, match=r"key file .*junk: private_key: expected 64 hex"):
        chain_cli.read_key_file(tmp_path / "junk")


def test_settlement_files(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    one = {"interval_id": 3, "deltas": {"0x" + "11" * 20: 0}, "result_hash": "0x" + "22" * 32}
    path.write_text(json.dumps(one))
    assert chain_cli._read_settlements(path) == [{**one, "fee": 0}]
    engine_form = {"interval": 4, "deltas": {}, "fee": 5, "result_hash": "0x" + "33" * 32}
    path.write_text(json.dumps([one, engine_form]))  # as market.settlement writes it
    entries = chain_cli._read_settlements(path)
    assert [(e["interval_id"], e["fee"]) for e in entries] == [(3, 0), (4, 5)]
    for broken in ("{", json.dumps({"deltas": {}}), json.dumps([{**one, "deltas": [1]}])):
        path.write_text(broken)
        with pytest.raises(SettlementError):
            chain_cli._read_settlements(path)
