"""``gridex chain fund|mint|deposit|withdraw`` on a real Hardhat node."""

from __future__ import annotations

from pathlib import Path

import pytest
from gridex.keys import write_key_file
from gridex.signing import Signer

from contracts import Chain, Deployment, Ledger
from contracts.devnode import HARDHAT_DEV_KEYS, HardhatNode
from market.cli import main

pytestmark = pytest.mark.integration


def test_fund_mint_deposit_withdraw(
    chain_hardhat_node: HardhatNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = chain_hardhat_node.url
    operator = tmp_path / "operator.key"
    write_key_file(operator, Signer(HARDHAT_DEV_KEYS[2]))
    deployment = tmp_path / "deployment.json"
    assert main(["chain", "deploy", "--rpc-url", url, "--key", str(operator),
                 "--out", str(deployment)]) == 0  # fmt: skip
    capsys.readouterr()
    common = ["--rpc-url", url, "--deployment", str(deployment)]
    trader_key = tmp_path / "trader.key"
    trader = write_key_file(trader_key).address

    # the operator's one step: escrow for the trader, and gas money for its own transactions
    assert main(["chain", "fund", trader, "1_000", "--gas-wei", str(10**17),
                 "--key", str(operator), *common]) == 0  # fmt: skip
    assert f"{trader}: token 0, escrow 1000" in capsys.readouterr().out
    # the single steps: tokens to the trader's wallet, which it pays into escrow itself
    assert main(["chain", "mint", trader, "500", "--key", str(operator), *common]) == 0
    assert main(["chain", "deposit", "300", "--key", str(trader_key), *common]) == 0
    assert main(["chain", "withdraw", "100", "--key", str(trader_key), *common]) == 0
    out = capsys.readouterr().out
    assert f"{trader}: token 200, escrow 1300" in out  # after the deposit
    assert f"{trader}: token 300, escrow 1200" in out.splitlines()[-1]  # after the withdrawal
    ledger = Ledger(Chain.connect(url), Deployment.load(deployment))
    assert (ledger.token_balance(trader), ledger.escrow_balance(trader)) == (300, 1200)

    # refusals are one line, exit 1 (chain) or 2 (usage), never a traceback
    assert main(["chain", "withdraw", "10000", "--key", str(trader_key), *common]) == 1
    assert "insufficient escrow balance" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["chain", "fund", trader, "-5", "--key", str(operator), *common])
    assert usage.value.code == 2
    assert "must be positive" in capsys.readouterr().err
    assert main(["chain", "fund", "0x12", "5", "--key", str(operator), *common]) == 1
    assert "ADDRESS: must be 0x followed by 40 hex digits" in capsys.readouterr().err
