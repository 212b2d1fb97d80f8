"""Request and reading-batch signatures (the scheme of ``docs/signing.md``).

The scheme itself lives in :mod:`gridex.signing`, its reference implementation
shared with the trader client and the home gateway (which may not import
:mod:`market`). This module re-exports it under the engine's names and maps
:class:`gridex.signing.SignatureError` to :class:`market.errors.AuthenticationError`
at this one boundary.
"""

from __future__ import annotations

from gridex import signing as _signing
from gridex.signing import (
    ADDRESS_KEY,
    ANY_ENGINE,
    BATCH_PREFIX,
    DISCOVERY_METHOD,
    NONCE_KEY,
    NONCE_RE,
    SIGNATURE_KEY,
    TIMESTAMP_KEY,
    Signer,
    address_of_public_key,
    batch_message,
    eip191_digest,
    keccak,
    request_message,
)

from market.errors import AuthenticationError

__all__ = [
    "ADDRESS_KEY",
    "ANY_ENGINE",
    "BATCH_PREFIX",
    "DISCOVERY_METHOD",
    "NONCE_KEY",
    "NONCE_RE",
    "SIGNATURE_KEY",
    "TIMESTAMP_KEY",
    "Signer",
    "address_of_public_key",
    "batch_message",
    "eip191_digest",
    "keccak",
    "recover_address",
    "recover_batch_signer",
    "recover_request_signer",
    "request_message",
]


def recover_address(message: bytes, signature: bytes) -> str:
    """The lower-case address whose key signed ``message`` (EIP-191 personal message).

    Raises:
        AuthenticationError: the signature is not 65 bytes, ``v`` is not 0, 1,
            27 or 28, or no public key recovers from it.
    """
    try:
        return _signing.recover_address(message, signature)
    except _signing.SignatureError as exc:
        raise AuthenticationError(str(exc)) from exc


def recover_request_signer(
    method: str, request: bytes, timestamp_ms: int, nonce: str, signature: bytes, *, engine_id: str
) -> str:
    """The lower-case address that signed a request for engine ``engine_id``.

    Raises:
        AuthenticationError: the signature is malformed.
    """
    message = request_message(method, request, timestamp_ms, nonce, engine_id=engine_id)
    return recover_address(message, signature)


def recover_batch_signer(batch: bytes, signature: bytes, *, engine_id: str) -> str:
    """The lower-case address that signed a serialized ReadingBatch for engine ``engine_id``.

    Raises:
        AuthenticationError: the signature is malformed.
    """
    return recover_address(batch_message(batch, engine_id=engine_id), signature)
