"""Request and reading-batch signatures: the reference implementation of ``docs/signing.md``.

Hand-written (not generated) and shared by everything that signs or checks a
gridex signature: the engine (:mod:`market.engine.signing` re-exports it and
maps :class:`SignatureError` to its own ``AuthenticationError``), the Python
trader client and the home gateway (:mod:`meter_adapter`). It depends only on
``safe-pysha3`` (keccak-256 in C: ~3 µs for a request's hash where
``eth_hash``'s pycryptodome backend takes ~17 µs, and a request needs three)
and ``coincurve`` (libsecp256k1), never on the engine's stack.

A request to the engine is signed by the participant's Ethereum key. The
signed text is::

    gridex.v1 request
    <engine id: the engine the request is for, e.g. cigre-lv>
    <full method, e.g. /gridex.v1.MarketService/SubmitOrder>
    <timestamp, Unix ms, decimal>
    <nonce>
    <keccak-256 of the serialized request message, 64 lower-case hex digits>

(lines joined by a single ``\\n``, no trailing newline), signed as an EIP-191
personal message (``personal_sign``, ethers' ``signMessage``). The metadata
carries :data:`ADDRESS_KEY`, :data:`TIMESTAMP_KEY`, :data:`NONCE_KEY` and
:data:`SIGNATURE_KEY`. A gateway signs
``b"gridex.v1 reading batch\\n" + engine_id + b"\\n" + batch`` the same way, so a
batch too is valid at one engine only. Signatures are 65 bytes ``r || s || v`` with ``v`` 27 or 28
(0 or 1 is accepted too).

secp256k1 runs in libsecp256k1 (coincurve): signing takes ~40 µs and
recovering ~50 µs (eth-keys' wrappers around the same library take ~4x
longer), which order-entry throughput and per-batch gateway cost depend on.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence

import coincurve
from sha3 import keccak_256

__all__ = [
    "ADDRESS_KEY",
    "ANY_ENGINE",
    "BATCH_PREFIX",
    "DISCOVERY_METHOD",
    "ENGINE_ID_RE",
    "NONCE_KEY",
    "NONCE_RE",
    "SIGNATURE_KEY",
    "TIMESTAMP_KEY",
    "SignatureError",
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

#: Metadata key of the signer's address (0x + 40 hex digits).
ADDRESS_KEY = "x-gridex-address"
#: Metadata key of the signing time, Unix ms, decimal.
TIMESTAMP_KEY = "x-gridex-timestamp-ms"
#: Metadata key of the nonce: 8 to 64 characters of ``[0-9A-Za-z_-]``.
NONCE_KEY = "x-gridex-nonce"
#: Metadata key of the signature: 0x + 130 hex digits (r || s || v).
SIGNATURE_KEY = "x-gridex-signature"
#: Prefix of the message a gateway signs, followed by the engine id, ``\n`` and the batch.
BATCH_PREFIX = b"gridex.v1 reading batch\n"

NONCE_RE = re.compile(r"^[0-9A-Za-z_-]{8,64}$")
ENGINE_ID_RE = re.compile(r"^[0-9A-Za-z._:-]{1,64}$")
#: The engine id a client signs its first call with, before it knows the engine's:
#: accepted for :data:`DISCOVERY_METHOD` only.
ANY_ENGINE = "*"
#: The one method an engine accepts signed for :data:`ANY_ENGINE`: it returns the engine id.
DISCOVERY_METHOD = "/gridex.v1.MarketService/GetMarketInfo"
_REQUEST_HEADER = "gridex.v1 request"


def keccak(data: bytes) -> bytes:
    """keccak-256 of ``data`` (Ethereum's hash, not NIST SHA3-256), 32 bytes."""
    digest: bytes = keccak_256(data).digest()
    return digest


class SignatureError(ValueError):
    """A signature is malformed: wrong length, bad ``v``, or no public key recovers."""


def request_message(
    method: str, request: bytes, timestamp_ms: int, nonce: str, *, engine_id: str
) -> bytes:
    """The text a request signature covers, UTF-8 encoded (before EIP-191 framing).

    Raises:
        ValueError: ``engine_id`` is not 1 to 64 of ``[0-9A-Za-z._:-]``, nor
            :data:`ANY_ENGINE` for :data:`DISCOVERY_METHOD`.
    """
    if not ENGINE_ID_RE.match(engine_id) and not (
        engine_id == ANY_ENGINE and method == DISCOVERY_METHOD
    ):
        raise ValueError(f"engine_id: must be 1 to 64 of [0-9A-Za-z._:-], got {engine_id!r}")
    digest = keccak(request).hex()
    return f"{_REQUEST_HEADER}\n{engine_id}\n{method}\n{timestamp_ms}\n{nonce}\n{digest}".encode()


def batch_message(batch: bytes, *, engine_id: str) -> bytes:
    """The bytes a gateway's batch signature for engine ``engine_id`` covers (before EIP-191).

    Raises:
        ValueError: ``engine_id`` is not 1 to 64 of ``[0-9A-Za-z._:-]`` (``*`` included:
            a batch is always for one engine).
    """
    if not ENGINE_ID_RE.match(engine_id):
        raise ValueError(f"engine_id: must be 1 to 64 of [0-9A-Za-z._:-], got {engine_id!r}")
    return BATCH_PREFIX + engine_id.encode() + b"\n" + batch


def eip191_digest(message: bytes) -> bytes:
    """keccak-256 of the EIP-191 personal message framing of ``message`` (32 bytes)."""
    return keccak(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def address_of_public_key(public_key: coincurve.PublicKey) -> str:
    """Lower-case Ethereum address of a secp256k1 public key."""
    return "0x" + keccak(public_key.format(compressed=False)[1:])[-20:].hex()


def recover_address(message: bytes, signature: bytes) -> str:
    """The lower-case address whose key signed ``message`` (EIP-191 personal message).

    Raises:
        SignatureError: the signature is not 65 bytes, ``v`` is not 0, 1,
            27 or 28, or no public key recovers from it.
    """
    if len(signature) != 65:
        raise SignatureError(f"signature: must be 65 bytes, got {len(signature)}")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise SignatureError(f"signature: v must be 27 or 28, got {signature[64]}")
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), eip191_digest(message), hasher=None
        )
    except (ValueError, TypeError) as exc:  # coincurve raises ValueError for bad points
        raise SignatureError("signature: does not recover to a public key") from exc
    return address_of_public_key(public_key)


def recover_request_signer(
    method: str, request: bytes, timestamp_ms: int, nonce: str, signature: bytes, *, engine_id: str
) -> str:
    """The lower-case address that signed a request for engine ``engine_id``.

    Raises:
        SignatureError: the signature is malformed.
    """
    message = request_message(method, request, timestamp_ms, nonce, engine_id=engine_id)
    return recover_address(message, signature)


def recover_batch_signer(batch: bytes, signature: bytes, *, engine_id: str) -> str:
    """The lower-case address that signed a serialized ReadingBatch for engine ``engine_id``.

    Raises:
        SignatureError: the signature is malformed.
    """
    return recover_address(batch_message(batch, engine_id=engine_id), signature)


class Signer:
    """Signs requests and reading batches with one Ethereum private key.

    Args:
        private_key: 32 raw bytes, or 64 hex digits with or without ``0x``.

    Raises:
        ValueError: the key is malformed or not a valid secp256k1 scalar.
    """

    def __init__(self, private_key: bytes | str) -> None:
        if isinstance(private_key, str):
            text = private_key.removeprefix("0x")
            if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
                raise ValueError("private_key: expected 64 hex digits")
            private_key = bytes.fromhex(text)
        if len(private_key) != 32:
            raise ValueError(f"private_key: expected 32 bytes, got {len(private_key)}")
        self._key = coincurve.PrivateKey(private_key)
        self._address = address_of_public_key(self._key.public_key)

    @classmethod
    def generate(cls) -> Signer:
        """A signer with a fresh random key."""
        return cls(secrets.token_bytes(32))

    def __repr__(self) -> str:
        return f"Signer({self._address})"  # never the key

    @property
    def address(self) -> str:
        """Lower-case address of the key."""
        return self._address

    @property
    def private_key_hex(self) -> str:
        """The private key as 0x + 64 hex digits."""
        return "0x" + self._key.secret.hex()

    def sign(self, message: bytes) -> bytes:
        """65-byte EIP-191 personal-message signature ``r || s || v`` (v = 27 or 28)."""
        raw = self._key.sign_recoverable(eip191_digest(message), hasher=None)
        return raw[:64] + bytes([raw[64] + 27])

    def sign_batch(self, batch: bytes, *, engine_id: str) -> bytes:
        """Signature of a serialized ReadingBatch for engine ``engine_id``.

        For ``SignedReadingBatch.signature``; no other engine accepts it.
        """
        return self.sign(batch_message(batch, engine_id=engine_id))

    def request_metadata(
        self,
        method: str,
        request: bytes,
        *,
        engine_id: str,
        timestamp_ms: int | None = None,
        nonce: str | None = None,
    ) -> Sequence[tuple[str, str]]:
        """gRPC metadata that signs one call of ``method`` with ``request`` (serialized).

        Args:
            method: full method name, e.g. ``/gridex.v1.MarketService/SubmitOrder``.
            request: the serialized request message, exactly as sent.
            engine_id: the engine the call is for (``gridex serve --engine-id``,
                by default its feeder's name); no other engine accepts it.
            timestamp_ms: signing time, Unix ms (default: the wall clock, which
                the engine checks even when its market runs on a simulated clock).
            nonce: a fresh nonce (default: 32 random hex digits).
        """
        if timestamp_ms is None:
            timestamp_ms = time.time_ns() // 1_000_000
        if nonce is None:
            nonce = secrets.token_hex(16)
        message = request_message(method, request, timestamp_ms, nonce, engine_id=engine_id)
        signature = self.sign(message)
        return (
            (ADDRESS_KEY, self._address),
            (TIMESTAMP_KEY, str(timestamp_ms)),
            (NONCE_KEY, nonce),
            (SIGNATURE_KEY, "0x" + signature.hex()),
        )
