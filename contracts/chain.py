"""One interface to an embedded EVM or a JSON-RPC node, with local signing.

:class:`Chain` holds a :class:`web3.Web3`, the operator's key (optional for a
read-only connection) and the transaction machinery every other module uses:
nonces come from the chain (``pending``), transactions are signed locally
(EIP-1559) and sent raw, receipts are polled, and failures become
:mod:`contracts.errors` types carrying the revert reason and the tx hash.

Two ways to get one::

    chain = Chain.embedded()                      # in-process py-evm, no setup
    chain = Chain.connect("http://127.0.0.1:8545", operator_key=key)

Embedded: the operator is a prefunded development key unless one is given;
``prefund`` gives more addresses ETH at genesis (no transaction needed);
:meth:`Chain.fund` sends ETH for gas later. Gas limits there are the block gas
limit (eth-tester charges only gas used; its ``estimate_gas`` re-executes a
transaction a dozen times). On a JSON-RPC node gas comes from
``eth_estimateGas``, which also surfaces a revert before anything is sent.

Threads: signing and sending hold :attr:`Chain.send_lock` (an RLock), so two
threads sharing a :class:`Chain` never draw the same nonce; on the embedded
chain every request is serialised as well (py-evm is not thread-safe). The
objects built on a chain keep no other state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint

from contracts._boundary import map_error, mapped_errors
from contracts.errors import (
    ChainConfigError,
    ChainConnectionError,
    ChainError,
    ChainRPCError,
    ContractRevertError,
    TransactionTimeoutError,
)

if TYPE_CHECKING:
    from eth_tester import EthereumTester
    from web3.contract.contract import ContractConstructor, ContractFunction
    from web3.types import TxParams, TxReceipt

__all__ = ["Chain", "Key", "SignedTx", "load_account"]

logger = logging.getLogger(__name__)

Key = str | bytes | LocalAccount
"""A private key as 0x-hex text or 32 bytes, or an eth-account ``LocalAccount``."""

_GWEI = 10**9
# What nodes say when a resent transaction, or another with its nonce, is already in.
_BENIGN_RESEND = (
    "already known",
    "known transaction",
    "already imported",
    "nonce too low",
    "invalid transaction nonce",  # py-evm: "Expected n+1, but got n"
)


class _SerialTesterProvider(EthereumTesterProvider):
    """eth-tester provider that lets one request at a time into py-evm."""

    def __init__(self, tester: EthereumTester) -> None:
        super().__init__(tester)
        self._request_lock = threading.RLock()

    def make_request(self, method: Any, params: Any) -> Any:
        with self._request_lock:
            return super().make_request(method, params)


def embedded_tester(
    operator: str | None, prefund: Iterable[str] = (), prefund_wei: int = 10**21
) -> EthereumTester:
    """A fresh eth-tester chain on py-evm: ``operator`` (default: eth-tester's first
    development key) starts with 10**24 wei, each ``prefund`` address with ``prefund_wei``."""
    from eth_tester import EthereumTester

    from contracts._pyevm import IndexedPyEVMBackend

    genesis = IndexedPyEVMBackend.generate_genesis_state(num_accounts=1)
    (default_address,) = genesis
    if operator is not None:
        genesis[bytes.fromhex(Web3.to_checksum_address(operator)[2:])] = dict(
            genesis.pop(default_address)
        )
    for address in prefund:
        key = bytes.fromhex(Web3.to_checksum_address(address)[2:])
        genesis.setdefault(key, {"balance": 0, "storage": {}, "code": b"", "nonce": 0})
        genesis[key] = {**genesis[key], "balance": genesis[key]["balance"] + prefund_wei}
    return EthereumTester(IndexedPyEVMBackend(genesis_state=genesis))


def load_account(key: Key) -> LocalAccount:
    """The signing account for ``key``.

    Raises:
        ChainConfigError: ``key`` is not a valid secp256k1 private key.
    """
    if isinstance(key, LocalAccount):
        return key
    try:
        return cast(LocalAccount, Account.from_key(key.strip() if isinstance(key, str) else key))
    except (ValueError, TypeError) as exc:
        raise ChainConfigError("not a valid private key") from exc


def _hex(value: bytes) -> str:
    return HexBytes(value).to_0x_hex()


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction, ready to send (and to resend unchanged)."""

    tx_hash: str
    raw: bytes
    sender: str
    nonce: int
    params: Mapping[str, Any]  # the unsigned fields, kept to replay a revert for its reason


class Chain:
    """A connection to one EVM chain and the operator's signing key.

    Use :meth:`embedded` or :meth:`connect` rather than the constructor.
    """

    def __init__(
        self,
        w3: Web3,
        *,
        kind: Literal["embedded", "rpc"],
        operator: LocalAccount | None,
        tester: EthereumTester | None = None,
        priority_fee_wei: int,
        poll_interval_s: float,
        estimate_gas: bool,
    ) -> None:
        self._w3 = w3
        self._estimate_gas = estimate_gas
        self._kind = kind
        self._operator = operator
        self._tester = tester
        self._priority_fee_wei = priority_fee_wei
        self._poll_interval_s = poll_interval_s
        self._lock = threading.RLock()
        with mapped_errors():
            self._chain_id = int(w3.eth.chain_id)

    # -- construction -------------------------------------------------------

    @classmethod
    def embedded(
        cls,
        *,
        operator_key: Key | None = None,
        prefund: Iterable[str] = (),
        prefund_wei: int = 10**21,
    ) -> Chain:
        """A fresh in-process chain (eth-tester on py-evm); it lives as long as this object.

        Args:
            operator_key: the operator's key; default: eth-tester's first
                development key. Either way the operator starts with 10**24 wei.
            prefund: addresses that get ``prefund_wei`` wei at genesis.
            prefund_wei: ETH (in wei) each ``prefund`` address starts with.
        """
        operator = load_account(operator_key) if operator_key is not None else None
        tester = embedded_tester(
            operator.address if operator is not None else None, prefund, prefund_wei
        )
        if operator is None:
            operator = load_account(tester.backend.account_keys[0].to_bytes())
        w3 = Web3(_SerialTesterProvider(tester))
        return cls(
            w3,
            kind="embedded",
            operator=operator,
            tester=tester,
            priority_fee_wei=1,
            poll_interval_s=0.0,
            estimate_gas=False,
        )

    @classmethod
    def connect(
        cls,
        rpc_url: str,
        *,
        operator_key: Key | None = None,
        expected_chain_id: int | None = None,
        request_timeout_s: float = 10.0,
        priority_fee_wei: int = _GWEI,
        poll_interval_s: float = 0.05,
        estimate_gas: bool = True,
        trust_env: bool = True,
    ) -> Chain:
        """A JSON-RPC node over HTTP; without ``operator_key`` the chain is read-only.

        ``trust_env=False`` ignores proxy and netrc settings of the environment
        (requests reads them on every request), for a node on 127.0.0.1.
        ``estimate_gas=False`` gives every transaction the block gas limit, as on
        the embedded chain: for a node that charges only the gas used and whose
        ``eth_estimateGas`` is slow (eth-tester's re-executes a transaction a
        dozen times); a revert then shows in the receipt, not before sending.

        Raises:
            ChainConnectionError: the node does not answer.
            ChainConfigError: its chain id is not ``expected_chain_id``.
        """
        session = None  # web3 keeps one session per thread
        if not trust_env:  # then one for all threads: requests' pool is thread-safe
            session = requests.Session()
            session.trust_env = False
        provider = HTTPProvider(
            rpc_url,
            session=session,
            request_kwargs={"timeout": request_timeout_s},
            exception_retry_configuration=None,  # the driver decides what to retry
            # web3 asks the chain id before every call and transaction (its
            # validation); a node's chain id does not change under a connection
            cache_allowed_requests=True,
            cacheable_requests={RPCEndpoint("eth_chainId")},
        )
        w3 = Web3(provider)
        operator = load_account(operator_key) if operator_key is not None else None
        try:
            chain = cls(
                w3,
                kind="rpc",
                operator=operator,
                priority_fee_wei=priority_fee_wei,
                poll_interval_s=poll_interval_s,
                estimate_gas=estimate_gas,
            )
        except ChainConnectionError as exc:
            raise ChainConnectionError(f"no JSON-RPC node answers at {rpc_url}: {exc}") from exc
        if expected_chain_id is not None and chain.chain_id != expected_chain_id:
            raise ChainConfigError(
                f"{rpc_url} serves chain id {chain.chain_id}, expected {expected_chain_id}"
            )
        return chain

    # -- properties ---------------------------------------------------------

    @property
    def send_lock(self) -> threading.RLock:
        """Held from nonce lookup to broadcast; hold it yourself to sign and send in steps."""
        return self._lock

    @property
    def w3(self) -> Web3:
        """The underlying web3 instance (calls on it are not error-mapped)."""
        return self._w3

    @property
    def kind(self) -> Literal["embedded", "rpc"]:
        return self._kind

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @property
    def tester(self) -> EthereumTester | None:
        """The eth-tester instance of an embedded chain (snapshots, manual mining), else None."""
        return self._tester

    @property
    def operator(self) -> LocalAccount:
        """The operator's account.

        Raises:
            ChainConfigError: the chain was opened read-only.
        """
        if self._operator is None:
            raise ChainConfigError("this chain is read-only: no operator key was given")
        return self._operator

    @property
    def has_operator(self) -> bool:
        return self._operator is not None

    # -- reads --------------------------------------------------------------

    def eth_balance(self, address: str) -> int:
        """ETH balance of ``address`` in wei."""
        with mapped_errors():
            return int(self._w3.eth.get_balance(Web3.to_checksum_address(address)))

    def block_number(self) -> int:
        with mapped_errors():
            return int(self._w3.eth.block_number)

    def nonces(self, address: str) -> tuple[int, int]:
        """``(mined, pending)`` transaction counts; they differ while some are in flight."""
        with mapped_errors():
            checksum = Web3.to_checksum_address(address)
            mined = int(self._w3.eth.get_transaction_count(checksum, "latest"))
            pending = int(self._w3.eth.get_transaction_count(checksum, "pending"))
        return mined, pending

    # -- transactions -------------------------------------------------------

    def sign(
        self,
        call: ContractFunction | ContractConstructor | None = None,
        *,
        signer: Key | None = None,
        to: str | None = None,
        value_wei: int = 0,
    ) -> SignedTx:
        """Build and sign one transaction: a contract call/deployment, or plain ETH to ``to``.

        The nonce is the signer's pending transaction count. On a JSON-RPC node
        the gas is estimated first, so a transaction that would revert raises
        here and is never sent.

        Raises:
            ContractRevertError: (JSON-RPC only) the transaction would revert.
            ChainConfigError: no signer and the chain is read-only.
        """
        account = load_account(signer) if signer is not None else self.operator
        with self._lock, mapped_errors():
            latest = self._w3.eth.get_block("latest")
            base_fee = int(latest.get("baseFeePerGas", 0))
            params: dict[str, Any] = {
                "from": account.address,
                "chainId": self._chain_id,
                "nonce": int(self._w3.eth.get_transaction_count(account.address, "pending")),
                "maxPriorityFeePerGas": self._priority_fee_wei,
                "maxFeePerGas": 2 * base_fee + self._priority_fee_wei,
                "value": value_wei,
            }
            if call is not None:
                params["gas"] = 1  # placeholder, so web3 does not estimate on its own
                params = dict(call.build_transaction(cast("TxParams", params)))
            else:
                if to is None:
                    raise ChainConfigError("a plain transfer needs a recipient")
                params["to"] = Web3.to_checksum_address(to)
            params["gas"] = self._gas_limit(params, int(latest["gasLimit"]))
        signed = account.sign_transaction(params)
        return SignedTx(
            tx_hash=_hex(signed.hash),
            raw=bytes(signed.raw_transaction),
            sender=account.address,
            nonce=int(params["nonce"]),
            params=params,
        )

    def _gas_limit(self, params: dict[str, Any], block_gas_limit: int) -> int:
        if not self._estimate_gas:
            return block_gas_limit
        probe = {k: v for k, v in params.items() if k != "gas"}
        estimate = int(self._w3.eth.estimate_gas(cast("TxParams", probe)))
        return min(block_gas_limit, estimate * 6 // 5 + 10_000)

    def broadcast(self, tx: SignedTx, *, resend: bool = False) -> None:
        """Hand ``tx`` to the node.

        With ``resend=True`` the node saying it already has the transaction, or
        that its nonce is used, is not an error: the caller then looks for the
        receipt.

        Raises:
            ContractRevertError: the node rejected it as reverting (Hardhat in
                automine mode mines it and then reports the revert).
            ChainRPCError: any other rejection.
        """
        try:
            with self._lock:
                self._w3.eth.send_raw_transaction(tx.raw)
        except Exception as exc:
            mapped = map_error(exc, tx_hash=tx.tx_hash)
            if mapped is None:
                raise
            benign = isinstance(mapped, ChainRPCError) and any(
                text in mapped.message.lower() for text in _BENIGN_RESEND
            )
            if resend and benign:
                logger.debug("resend of %s: %s", tx.tx_hash, mapped)
                return
            raise mapped from exc

    def receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt of ``tx_hash`` if it is mined, else None."""
        try:
            with mapped_errors(tx_hash=tx_hash):
                return self._w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except ChainRPCError as exc:
            if isinstance(exc.__cause__, TransactionNotFound):
                return None
            raise

    def wait_for_receipt(self, tx_hash: str, *, timeout_s: float) -> TxReceipt | None:
        """Poll for the receipt of ``tx_hash`` for up to ``timeout_s``; None if not mined."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.receipt(tx_hash)
            if found is not None or time.monotonic() >= deadline:
                return found
            time.sleep(self._poll_interval_s or 0.01)

    def check_succeeded(self, tx: SignedTx, receipt: TxReceipt) -> TxReceipt:
        """``receipt`` if its status is success.

        Raises:
            ContractRevertError: the transaction reverted; the reason comes from
                replaying it as a call on the state before its block.
        """
        if int(receipt["status"]) == 1:
            return receipt
        reason = "reverted (reason unavailable)"
        probe = {k: v for k, v in tx.params.items() if k not in ("gas", "nonce")}
        try:
            with mapped_errors(tx_hash=tx.tx_hash):
                self._w3.eth.call(
                    cast("TxParams", probe), block_identifier=int(receipt["blockNumber"]) - 1
                )
        except ContractRevertError as exc:
            reason = exc.reason
        except ChainError as exc:
            logger.debug("replaying %s for its revert reason failed: %s", tx.tx_hash, exc)
        raise ContractRevertError(reason, tx_hash=tx.tx_hash)

    def transact(
        self,
        call: ContractFunction | ContractConstructor | None = None,
        *,
        signer: Key | None = None,
        to: str | None = None,
        value_wei: int = 0,
        timeout_s: float = 60.0,
    ) -> TxReceipt:
        """Sign, send and wait for one transaction; the plain path for everything but settling.

        Raises:
            ContractRevertError: it reverted (with the reason and, once sent, the tx hash).
            TransactionTimeoutError: not mined within ``timeout_s``.
        """
        with self._lock:
            tx = self.sign(call, signer=signer, to=to, value_wei=value_wei)
            self.broadcast(tx)
        receipt = self.wait_for_receipt(tx.tx_hash, timeout_s=timeout_s)
        if receipt is None:
            raise TransactionTimeoutError(f"not mined within {timeout_s} s", tx_hash=tx.tx_hash)
        return self.check_succeeded(tx, receipt)

    def fund(self, address: str, amount_wei: int = 10**18) -> TxReceipt:
        """Send ``amount_wei`` of ETH from the operator to ``address`` (gas money)."""
        return self.transact(to=address, value_wei=amount_wei)
