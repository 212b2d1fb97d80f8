"""Deploy EnergyToken + Settlement, and the record of where they are.

A :class:`Deployment` is a small JSON document (chain id, the two addresses,
the block the settlement contract was created in) that the CLI writes with
``gridex chain deploy --out FILE`` and reads with ``--deployment FILE``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from contracts._compile import compiled
from contracts.chain import Chain
from contracts.errors import ChainConfigError

__all__ = [
    "DEFAULT_CHANGE_DELAY_S",
    "DEFAULT_TOKEN_NAME",
    "DEFAULT_TOKEN_SYMBOL",
    "Deployment",
    "deploy",
]

DEFAULT_TOKEN_NAME = "gridex energy token"
DEFAULT_TOKEN_SYMBOL = "GXE"
DEFAULT_CHANGE_DELAY_S = 2 * 86_400
"""Default wait, s, before a proposed operator or owner of Settlement can take over."""


@dataclass(frozen=True)
class Deployment:
    """Where the two contracts live on one chain."""

    chain_id: int
    token: str  # EnergyToken address (checksummed)
    settlement: str  # Settlement address (checksummed)
    block: int  # block in which Settlement was created; event scans start here

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        """Parse :meth:`to_json` output.

        Raises:
            ChainConfigError: not a deployment document.
        """
        try:
            data: Any = json.loads(text)
            return cls(
                chain_id=int(data["chain_id"]),
                token=Web3.to_checksum_address(data["token"]),
                settlement=Web3.to_checksum_address(data["settlement"]),
                block=int(data["block"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ChainConfigError(f"not a gridex deployment document: {exc}") from exc

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Deployment:
        """Read a deployment file.

        Raises:
            ChainConfigError: the file is missing or malformed.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ChainConfigError(f"cannot read deployment file {path}: {exc}") from exc
        return cls.from_json(text)


def deploy(
    chain: Chain,
    *,
    operator: str | None = None,
    token_name: str = DEFAULT_TOKEN_NAME,
    token_symbol: str = DEFAULT_TOKEN_SYMBOL,
    change_delay_s: int = DEFAULT_CHANGE_DELAY_S,
) -> Deployment:
    """Deploy a fresh EnergyToken and Settlement from the chain's operator key.

    The deploying key owns both contracts (it mints and sets the operator);
    ``operator`` (default: the same key) is the address allowed to settle.
    ``change_delay_s`` is how long a proposed operator or owner waits, after
    the proposal is on chain, before it can take over (``>= 0``).

    Raises:
        ContractRevertError: a constructor reverted.
        ChainConfigError: the chain is read-only.
    """
    if type(change_delay_s) is not int or not 0 <= change_delay_s < 2**64:
        raise ChainConfigError(f"change_delay_s: must be an integer >= 0, got {change_delay_s!r}")
    token_artifact = compiled("EnergyToken")
    settlement_artifact = compiled("Settlement")
    w3 = chain.w3
    token_factory = w3.eth.contract(abi=token_artifact.abi, bytecode=token_artifact.bytecode)
    token_receipt = chain.transact(token_factory.constructor(token_name, token_symbol))
    token_address = Web3.to_checksum_address(str(token_receipt["contractAddress"]))
    settlement_factory = w3.eth.contract(
        abi=settlement_artifact.abi, bytecode=settlement_artifact.bytecode
    )
    settle_as = Web3.to_checksum_address(operator or chain.operator.address)
    receipt = chain.transact(
        settlement_factory.constructor(token_address, settle_as, change_delay_s)
    )
    return Deployment(
        chain_id=chain.chain_id,
        token=token_address,
        settlement=Web3.to_checksum_address(str(receipt["contractAddress"])),
        block=int(receipt["blockNumber"]),
    )
