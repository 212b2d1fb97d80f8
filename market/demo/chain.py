"""The demo's chain: contracts deployed, escrows funded, one settler for the engine.

Without a node of the caller's, the chain is the embedded EVM in a child
process (:class:`contracts.pyevm_node.PyEvmNode`): its postings then execute
on the other core instead of holding the engine's GIL, and ``gridex verify``
can read the same chain from a process of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market.engine.settler import ChainSettler

if TYPE_CHECKING:
    from contracts.pyevm_node import PyEvmNode

__all__ = ["DemoChain", "open_chain", "start_node"]

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
    rpc_url: str  # where another process reads the same chain

    def escrow_balances(self, accounts: Iterable[str]) -> dict[str, int]:
        """Escrow balance per lower-case address, base units."""
        return {a: int(self.ledger.escrow_balance(a)) for a in accounts}


def start_node(operator_key: str) -> PyEvmNode:
    """The embedded EVM's child process, funding the operator of ``operator_key``."""
    from contracts import load_account
    from contracts.pyevm_node import PyEvmNode

    node = PyEvmNode(operator=load_account(operator_key).address)
    node.start()
    return node


def open_chain(
    participants: list[str],
    *,
    rpc_url: str | None,
    key_file: Path | None,
    operator_key: str,
    node: PyEvmNode | None = None,
) -> DemoChain:
    """Deploy the contracts and fund every escrow.

    Args:
        participants: lower-case addresses to fund.
        rpc_url: JSON-RPC node, or None for the embedded EVM ``node``.
        key_file: the operator's key file for ``rpc_url`` (a 0x-hex private key, or a
            JSON keystore as ``gridex chain`` reads it).
        operator_key: the operator's key on the embedded EVM.
        node: the embedded EVM (:func:`start_node` with ``operator_key``), when
            ``rpc_url`` is None; the caller stops it.

    Raises:
        ChainError: deployment or funding failed, or the key file is unreadable or
            not a key (``ChainConfigError``).
    """
    from contracts import Chain, ChainConfigError, Ledger, SettlementDriver, deploy, load_account
    from contracts.cli import read_key_file

    if rpc_url is not None and key_file is not None:
        account = read_key_file(key_file)
        operator_key = "0x" + bytes(account.key).hex()
        chain = Chain.connect(rpc_url, operator_key=account)
    elif node is not None:
        account = load_account(operator_key)
        rpc_url = node.url
        chain = Chain.connect(rpc_url, operator_key=account, **node.connect_options)
    else:
        raise ChainConfigError(
            "the demo's chain: give rpc_url and key_file (a real node) or node (the embedded EVM)"
        )
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
        rpc_url=rpc_url,
    )
