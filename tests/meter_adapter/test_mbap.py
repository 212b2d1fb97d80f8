"""The strict MBAP decoder: one frame per answer, everything else a typed framing error.

Named examples are the malformations a hostile-device campaign found accepted
by the pymodbus framer (transaction id 0, a length covering junk, junk inside
the PDU), plus one per rule; the property tests run the decoder over
arbitrary bytes, truncations and extensions of honest frames.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from meter_adapter.errors import ModbusExceptionError
from meter_adapter.mbap import (
    HEADER_SIZE,
    FramingError,
    ReadRequest,
    check_header,
    decode_body,
    decode_response,
)
from tests.meter_adapter.strategies import answered_requests, honest_frame, read_requests

# A meter model's W register (-4697 W as int16) and a 32-bit counter of 42949672890 / 10 raw.
HELD = [0xEDA7, 0x0000, 0xFFFF, 0xFFF5, 0x0001, 0x0002]
REQUEST = ReadRequest(transaction_id=0x0102, unit_id=1, function_code=3, address=40000, count=6)
HONEST = honest_frame(REQUEST, HELD)


def mbap(transaction_id: int, length: int, unit_id: int, pdu: bytes, protocol_id: int = 0) -> bytes:
    return struct.pack(">HHHB", transaction_id, protocol_id, length, unit_id) + pdu


PDU = HONEST[HEADER_SIZE:]
JUNK = b"\x13\x37\xde\xad"
MALFORMED = {
    # found accepted by the old client
    "transaction-id-0": (mbap(0, len(PDU) + 1, 1, PDU), "transaction_id"),
    "length-covers-junk-after-registers": (
        mbap(0x0102, len(PDU) + 1 + len(JUNK), 1, PDU + JUNK),
        "length",
    ),
    "junk-inside-pdu-after-byte-count": (
        mbap(0x0102, len(PDU) + 1 + 2, 1, PDU[:2] + JUNK[:2] + PDU[2:]),
        "length",
    ),
    # one per rule
    "transaction-id-other": (mbap(0x0101, len(PDU) + 1, 1, PDU), "transaction_id"),
    "protocol-id-1": (mbap(0x0102, len(PDU) + 1, 1, PDU, protocol_id=1), "protocol_id"),
    "unit-id-other": (mbap(0x0102, len(PDU) + 1, 2, PDU), "unit_id"),
    "length-short": (mbap(0x0102, len(PDU) - 1, 1, PDU[:-2]), "length"),
    "length-zero": (mbap(0x0102, 0, 1, b""), "length"),
    "function-code-4-for-3": (mbap(0x0102, len(PDU) + 1, 1, b"\x04" + PDU[1:]), "function_code"),
    "exception-of-function-4": (mbap(0x0102, 3, 1, b"\x84\x02"), "function_code"),
    "byte-count-off-by-one": (
        mbap(0x0102, len(PDU) + 1, 1, PDU[:1] + b"\x0b" + PDU[2:]),
        "byte_count",
    ),
    "fewer-registers-consistent": (
        mbap(0x0102, len(PDU) - 1, 1, bytes([3, 10]) + PDU[2:-2]),
        "length",
    ),
    "more-registers-consistent": (
        mbap(0x0102, len(PDU) + 3, 1, bytes([3, 14]) + PDU[2:] + b"\x00\x01"),
        "length",
    ),
    "exception-truncated": (mbap(0x0102, 2, 1, b"\x83"), "length"),
    "header-truncated": (HONEST[:5], "truncated"),
    "pdu-truncated": (HONEST[:-1], "truncated"),
    "answered-twice": (HONEST + HONEST, "trailing_bytes"),
    "junk-after-frame": (HONEST + JUNK, "trailing_bytes"),
}


@pytest.mark.parametrize(("frame", "kind"), MALFORMED.values(), ids=MALFORMED.keys())
def test_each_malformation_is_a_typed_framing_error(frame: bytes, kind: str) -> None:
    with pytest.raises(FramingError) as caught:
        decode_response(REQUEST, frame)
    assert caught.value.kind == kind


def test_the_honest_answer_decodes_to_what_the_device_held() -> None:
    assert decode_response(REQUEST, HONEST) == HELD


@pytest.mark.parametrize("code", [1, 2, 4, 5, 6, 0x0B, 0xFF])
def test_a_well_framed_exception_is_a_modbus_exception(code: int) -> None:
    with pytest.raises(ModbusExceptionError) as caught:
        decode_response(REQUEST, mbap(0x0102, 3, 1, bytes([0x83, code])))
    assert caught.value.exception_code == code
    assert caught.value.function_code == 3


def test_transaction_id_zero_is_never_sent() -> None:
    with pytest.raises(ValueError, match="transaction_id"):
        ReadRequest(transaction_id=0, unit_id=1, function_code=3, address=0, count=1)


@given(read_requests(), st.binary(max_size=300))
@example(REQUEST, MALFORMED["transaction-id-0"][0])
@example(REQUEST, MALFORMED["length-covers-junk-after-registers"][0])
@example(REQUEST, MALFORMED["junk-inside-pdu-after-byte-count"][0])
def test_accepted_bytes_are_exactly_the_honest_frame(request: ReadRequest, data: bytes) -> None:
    """Whatever the bytes, a decoded answer is the one frame encoding those values."""
    try:
        values = decode_response(request, data)
    except (FramingError, ModbusExceptionError):
        return
    assert len(values) == request.count
    assert data == honest_frame(request, values)


@given(answered_requests(), st.data())
def test_every_truncation_is_refused_as_truncated(
    answered: tuple[ReadRequest, list[int], bytes], data: st.DataObject
) -> None:
    request, _, frame = answered
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(FramingError) as caught:
        decode_response(request, frame[:cut])
    assert caught.value.kind == "truncated"


@given(answered_requests(), st.binary(min_size=1, max_size=40))
def test_anything_after_the_frame_is_refused(
    answered: tuple[ReadRequest, list[int], bytes], tail: bytes
) -> None:
    request, _, frame = answered
    with pytest.raises(FramingError) as caught:
        decode_response(request, frame + tail)
    assert caught.value.kind == "trailing_bytes"


@given(answered_requests(), st.data())
def test_a_changed_header_or_count_byte_is_refused(
    answered: tuple[ReadRequest, list[int], bytes], data: st.DataObject
) -> None:
    request, _, frame = answered
    index = data.draw(st.integers(0, HEADER_SIZE + 1))  # header, function code, byte count
    value = data.draw(st.integers(0, 255).filter(lambda v: v != frame[index]))
    mutated = frame[:index] + bytes([value]) + frame[index + 1 :]
    with pytest.raises((FramingError, ModbusExceptionError)):
        decode_response(request, mutated)


@given(answered_requests())
def test_header_then_body_agrees_with_the_whole_frame(
    answered: tuple[ReadRequest, list[int], bytes],
) -> None:
    """The two halves a stream reader uses decode the same as the whole-frame decoder."""
    request, values, frame = answered
    size = check_header(request, frame[:HEADER_SIZE])
    assert size == len(frame) - HEADER_SIZE
    assert decode_body(request, frame[HEADER_SIZE:]) == values == decode_response(request, frame)
