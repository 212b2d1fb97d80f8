"""The one place where web3, eth-tester and transport exceptions become ours.

Every call into web3 from this package runs inside :func:`mapped_errors`, which
re-raises third-party exceptions as :class:`~contracts.errors.ChainError`
subclasses (``raise ... from``), keeping the revert reason and the hash of
the transaction concerned.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from eth_abi.abi import decode as abi_decode
from eth_tester.exceptions import TransactionFailed
from eth_tester.exceptions import ValidationError as TesterValidationError
from eth_utils.exceptions import ValidationError as EvmValidationError
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3Exception,
    Web3RPCError,
)

from contracts.errors import (
    ChainConnectionError,
    ChainError,
    ChainRPCError,
    ContractRevertError,
    TransactionTimeoutError,
)

__all__ = ["map_error", "mapped_errors", "revert_reason"]

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_HARDHAT_REASON = re.compile(r"reverted with reason string '(.*)'", re.DOTALL)
_REVERT_PREFIX = "execution reverted"


def revert_reason(message: str, data: object = None) -> str:
    """The revert reason in a node's error ``message`` / ``data``, or the message itself."""
    decoded = _decode_error_data(data)
    if decoded is not None:
        return decoded
    match = _HARDHAT_REASON.search(message)
    if match:
        return match.group(1)
    if message.startswith(_REVERT_PREFIX):
        rest = message[len(_REVERT_PREFIX) :].lstrip(": ")
        return rest or "reverted without a reason"
    return message


def _decode_error_data(data: object) -> str | None:
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, bytes):
        raw = data
    elif isinstance(data, str) and data.startswith("0x"):
        try:
            raw = bytes.fromhex(data[2:])
        except ValueError:
            return None
    else:
        return None
    if raw[:4] != _ERROR_SELECTOR:
        return None
    try:
        (reason,) = abi_decode(["string"], raw[4:])
    except Exception:  # malformed revert data: fall back to the message
        return None
    return str(reason)


def _looks_like_revert(message: str) -> bool:
    lowered = message.lower()
    return "revert" in lowered or "vm exception" in lowered


def map_error(  # noqa: PLR0911 - one flat dispatch on the exception type reads best
    exc: BaseException, *, tx_hash: str | None = None
) -> ChainError | None:
    """Our error for a third-party ``exc``, or ``None`` if it is not one we map."""
    if isinstance(exc, ChainError):
        return None
    if isinstance(exc, TransactionFailed):
        return ContractRevertError(
            revert_reason(str(exc.args[0]) if exc.args else ""), tx_hash=tx_hash
        )
    if isinstance(exc, ContractLogicError):
        return ContractRevertError(revert_reason(exc.message or "", exc.data), tx_hash=tx_hash)
    if isinstance(exc, TimeExhausted):
        return TransactionTimeoutError(str(exc), tx_hash=tx_hash)
    if isinstance(exc, ProviderConnectionError):
        return ChainConnectionError(str(exc))
    if isinstance(exc, Web3RPCError):
        error = exc.rpc_response.get("error") if exc.rpc_response else None
        message = str(error.get("message", exc.message)) if isinstance(error, dict) else exc.message
        data = error.get("data") if isinstance(error, dict) else None
        if _looks_like_revert(message):
            return ContractRevertError(revert_reason(message, data), tx_hash=tx_hash)
        return ChainRPCError(message, tx_hash=tx_hash)
    if isinstance(exc, TesterValidationError | EvmValidationError):  # py-evm rejected the tx
        return ChainRPCError(str(exc), tx_hash=tx_hash)
    if isinstance(exc, Web3Exception):
        return ChainError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError):  # requests' ConnectionError and Timeout are OSErrors
        return ChainConnectionError(f"{type(exc).__name__}: {exc}")
    return None


@contextmanager
def mapped_errors(*, tx_hash: str | None = None) -> Iterator[None]:
    """Run the body with third-party chain exceptions mapped to ours."""
    try:
        yield
    except Exception as exc:
        mapped = map_error(exc, tx_hash=tx_hash)
        if mapped is None:
            raise
        raise mapped from exc
