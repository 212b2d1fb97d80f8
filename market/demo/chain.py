"""The demo's chain: contracts deployed, escrows funded, one settler for the engine."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from market.engine.settler import ChainSettler

__all__ = ["DemoChain", "open_chain"]

logger = logging.getLogger(__name__)

#: Escrow each participant starts with, base units (50 tokens at 6 decimals).
PARTICIPANT_DEPOSIT = 50_000_000
#: Escrow of the operator, who takes the grid's side (10,000 tokens).
OPERATOR_DEPOSIT = 10_000_000_000


@dataclass
class DemoChain:
    """A chain with the contracts deployed and the escrows funded."""

    chain: Any
    ledger: Any
    settler: ChainSettler
    operator_key: str
    operator: str
    deposits: dict[str, int]

    def escrow_balances(self, accounts: Iterable[str]) -> dict[str, int]:
        """Escrow balance per lower-case address, base units."""
        return {a: int(self.ledger.escrow_balance(a)) for a in accounts}


def open_chain(
    participants: list[str], *, rpc_url: str | None, key_file: Path | None, operator_key: str
) -> DemoChain:
    """Deploy the contracts and fund every escrow.

    Args:
        participants: lower-case addresses to fund.
        rpc_url: JSON-RPC node, or None for the embedded EVM.
        key_file: the operator's key file for ``rpc_url`` (a 0x-hex private key, or a
            JSON keystore as ``gridex chain`` reads it).
        operator_key: the operator's key on the embedded EVM.

    Raises:
        ChainError: deployment or funding failed, or the key file is unreadable or
            not a key (``ChainConfigError``).
    """
    from contracts import Chain, Ledger, SettlementDriver, deploy, load_account
    from contracts.cli import read_key_file

    if rpc_url is not None and key_file is not None:
        account = read_key_file(key_file)
        operator_key = "0x" + bytes(account.key).hex()
        chain = Chain.connect(rpc_url, operator_key=account)
    else:
        account = load_account(operator_key)
        chain = Chain.embedded(operator_key=account)
    operator = account.address.lower()
    deployment = deploy(chain)
    ledger = Ledger(chain, deployment)
    deposits = dict.fromkeys(participants, PARTICIPANT_DEPOSIT)
    deposits[operator] = OPERATOR_DEPOSIT
    ledger.mint(operator, sum(deposits.values()))
    for address, amount in deposits.items():
        ledger.deposit_for(address, amount)
    logger.info("deployed %s, funded %d escrows", deployment, len(deposits))
    return DemoChain(
        chain=chain,
        ledger=ledger,
        settler=ChainSettler(SettlementDriver(ledger)),
        operator_key=operator_key,
        operator=operator,
        deposits=deposits,
    )
