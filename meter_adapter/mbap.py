"""Strict Modbus TCP (MBAP) framing of register reads: pure functions, no I/O.

A request is a 12-byte frame: the MBAP header ``transaction id (2) |
protocol id = 0 (2) | length (2) | unit id (1)`` and the PDU ``function code
(1) | address (2) | count (2)``. Only function codes 3 (read holding
registers) and 4 (read input registers) can be encoded.

A response is accepted only if it is *exactly* the answer to that request:

- the same transaction id (a device that answers 0, or an old id, is refused),
  protocol id 0 and the same unit id;
- either a normal answer — MBAP length ``3 + 2·count``, the request's
  function code, byte count ``2·count``, then the registers and nothing else —
  or an exception answer — MBAP length 3, the function code with bit 7 set,
  one exception code;
- not one byte more or less (junk after the registers, inside the PDU or
  covered by the length field is refused, never read shifted).

Anything else raises :class:`FramingError` whose :attr:`~FramingError.kind`
names the rule broken. :func:`check_header` and :func:`decode_body` are the
two halves a stream reader needs (the header says how many bytes follow);
:func:`decode_response` checks a whole frame at once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from meter_adapter.errors import DecodeError, ModbusExceptionError, ReadOnlyViolationError

__all__ = [
    "EXCEPTION_NAMES",
    "HEADER_SIZE",
    "READ_FUNCTION_CODES",
    "FramingError",
    "FramingErrorKind",
    "ReadRequest",
    "check_header",
    "decode_body",
    "decode_response",
]

HEADER_SIZE = 7
"""Bytes of the MBAP header, unit id included."""

READ_FUNCTION_CODES = frozenset({3, 4})
"""The only function codes the adapter ever sends: read holding / input registers."""

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "server device failure",
    0x05: "acknowledge (processing, ask again later)",
    0x06: "server device busy",
    0x0A: "gateway path unavailable",
    0x0B: "gateway target device failed to respond (wrong unit id?)",
}

FramingErrorKind = Literal[
    "truncated",
    "trailing_bytes",
    "transaction_id",
    "protocol_id",
    "unit_id",
    "length",
    "function_code",
    "byte_count",
]

_HEADER = struct.Struct(">HHHB")
_EXCEPTION_LENGTH = 3  # unit id, function code, exception code


class FramingError(DecodeError):
    """A response frame does not answer the request exactly.

    Attributes:
        kind: which rule it broke (``transaction_id``, ``length``, ...).
    """

    def __init__(self, kind: FramingErrorKind, message: str) -> None:
        super().__init__(f"framing error ({kind}): {message}")
        self.kind: FramingErrorKind = kind


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRequest:
    """One register read as sent.

    Attributes:
        transaction_id: 1..65535 (0 is never sent, so an answer with id 0 is
            always refused).
        unit_id: Modbus unit id, 0..255.
        function_code: 3 or 4.
        address: first register, 0..65535.
        count: registers to read, 1..125.
    """

    transaction_id: int
    unit_id: int
    function_code: int
    address: int
    count: int

    def __post_init__(self) -> None:
        if self.function_code not in READ_FUNCTION_CODES:
            raise ReadOnlyViolationError(f"refusing to encode function code {self.function_code}")
        if not 1 <= self.transaction_id <= 0xFFFF:
            raise ValueError(f"transaction_id: must be 1..65535, got {self.transaction_id}")
        if not 0 <= self.unit_id <= 0xFF:
            raise ValueError(f"unit_id: must be 0..255, got {self.unit_id}")
        if not 1 <= self.count <= 125 or not 0 <= self.address <= 0x10000 - self.count:
            raise ValueError(f"span: {self.count} registers at {self.address} is not one read")

    def encode(self) -> bytes:
        """The 12-byte request frame."""
        return _HEADER.pack(self.transaction_id, 0, 6, self.unit_id) + struct.pack(
            ">BHH", self.function_code, self.address, self.count
        )

    @property
    def response_length(self) -> int:
        """MBAP length field of the normal answer: unit id, function code, byte count, data."""
        return 3 + 2 * self.count


def check_header(request: ReadRequest, header: bytes) -> int:
    """Check a response's MBAP header; return how many PDU bytes follow it.

    Raises:
        FramingError: Too short, or a field that does not answer ``request``.
    """
    if len(header) < HEADER_SIZE:
        raise FramingError("truncated", f"header has {len(header)} of {HEADER_SIZE} bytes")
    transaction_id, protocol_id, length, unit_id = _HEADER.unpack_from(header)
    if transaction_id != request.transaction_id:
        raise FramingError(
            "transaction_id", f"answer has id {transaction_id}, request {request.transaction_id}"
        )
    if protocol_id != 0:
        raise FramingError("protocol_id", f"protocol id {protocol_id}, not 0")
    if unit_id != request.unit_id:
        raise FramingError("unit_id", f"answer from unit {unit_id}, request to {request.unit_id}")
    if length not in (request.response_length, _EXCEPTION_LENGTH):
        raise FramingError(
            "length",
            f"MBAP length {length}; {request.count} registers need {request.response_length} "
            f"(or {_EXCEPTION_LENGTH} for an exception)",
        )
    return int(length) - 1


def decode_body(request: ReadRequest, body: bytes) -> list[int]:
    """Decode the PDU that follows a header :func:`check_header` accepted.

    Returns:
        Exactly ``request.count`` register values, 0..65535.

    Raises:
        FramingError: The PDU does not answer ``request`` exactly.
        ModbusExceptionError: A well-framed exception answer.
    """
    if not body:
        raise FramingError("truncated", "PDU is empty")
    function_code = body[0]
    if function_code == request.function_code | 0x80:
        if len(body) != _EXCEPTION_LENGTH - 1:
            raise FramingError("length", f"exception PDU has {len(body)} bytes, not 2")
        code = body[1]
        raise ModbusExceptionError(
            f"exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')}) "
            f"reading {request.count} registers at {request.address}",
            function_code=request.function_code,
            exception_code=code,
        )
    if function_code != request.function_code:
        raise FramingError(
            "function_code", f"answer has function code {function_code:#x}, "
            f"request {request.function_code:#x}"
        )  # fmt: skip
    expected = 2 * request.count
    if len(body) != 2 + expected:
        raise FramingError("length", f"PDU has {len(body)} bytes, {request.count} registers need "
                           f"{2 + expected}")  # fmt: skip
    if body[1] != expected:
        raise FramingError("byte_count", f"byte count {body[1]}, {request.count} registers "
                           f"need {expected}")  # fmt: skip
    return list(struct.unpack_from(f">{request.count}H", body, 2))


def decode_response(request: ReadRequest, frame: bytes) -> list[int]:
    """Decode one complete response frame (header and PDU, nothing else).

    Raises:
        FramingError: The frame is truncated, has trailing bytes, or breaks a rule.
        ModbusExceptionError: A well-framed exception answer.
    """
    body_size = check_header(request, frame[:HEADER_SIZE])
    body = frame[HEADER_SIZE:]
    if len(body) < body_size:
        raise FramingError("truncated", f"PDU has {len(body)} of {body_size} bytes")
    if len(body) > body_size:
        raise FramingError("trailing_bytes", f"{len(body) - body_size} bytes after the frame")
    return decode_body(request, body)
