"""A hostile Modbus device: every kind of malformed answer, and a campaign that counts outcomes.

Used by ``tests/integration/test_hostile_device.py`` (each kind once, asserted)
and ``bench/hostile.py`` (many rounds, counted). The device is
:class:`~tests.meter_adapter.fake_modbus.FakeModbusServer` on 127.0.0.1
serving the SunSpec dump with models 1, 103 and 203; a kind rewrites the
answers to a share of the requests, and the gateway's full
:class:`~meter_adapter.reader.MeterReader` polls it. Every reading it reports
is compared with what the device holds.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from meter_adapter.clock import SimulatedClock
from meter_adapter.modbus_client import ReadOnlyModbusClient, ReconnectPolicy
from meter_adapter.reader import MeterReader
from meter_adapter.reading import Reading
from meter_adapter.registers import RegisterImage
from meter_adapter.sunspec.discovery import DiscoveryRetry
from meter_adapter.sunspec.models import METER_MODEL
from tests.meter_adapter import dumps
from tests.meter_adapter.fake_modbus import FakeModbusServer, Plan, Request, honest

__all__ = ["KINDS", "VALUE_KINDS", "Outcome", "expected_values", "run_kind"]

BASE = 40000
REGISTERS = {BASE + i: v for i, v in enumerate(dumps.INVERTER_AND_METER_AT_40000)}
METER_DATA = 40124
W = METER_DATA + METER_MODEL.point("W").offset
W_SF = METER_DATA + METER_MODEL.point("W_SF").offset
TOT_WH_IMP = METER_DATA + METER_MODEL.point("TotWhImp").offset
START = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
TIMEOUT_S = 0.2

Mutation = Callable[[Request, bytes], Plan]


def _header(frame: bytes) -> tuple[int, int, int, int]:
    return struct.unpack(">HHHB", frame[:7])


def _with(frame: bytes, **fields: int) -> bytes:
    tid, pid, length, unit = _header(frame)
    return (
        struct.pack(
            ">HHHB",
            fields.get("tid", tid),
            fields.get("pid", pid),
            fields.get("length", length),
            fields.get("unit", unit),
        )
        + frame[7:]
    )


def _pdu(frame: bytes, pdu: bytes, extra_length: int = 0) -> bytes:
    tid, pid, _, unit = _header(frame)
    return struct.pack(">HHHB", tid, pid, len(pdu) + 1 + extra_length, unit) + pdu


def _one(data: Callable[[Request, bytes], bytes], *, close: bool = False) -> Mutation:
    return lambda q, r: Plan([data(q, r)], close=close)


def _kinds() -> dict[str, Mutation]:
    junk = b"\x13\x37\xde\xad"
    k: dict[str, Mutation] = {
        "transaction-id-0": _one(lambda _q, r: _with(r, tid=0)),
        "transaction-id-next": _one(lambda _q, r: _with(r, tid=(_header(r)[0] + 1) % 0x10000)),
        "transaction-id-previous": _one(lambda _q, r: _with(r, tid=(_header(r)[0] - 1) % 0x10000)),
        "protocol-id-1": _one(lambda _q, r: _with(r, pid=1)),
        "unit-id-0": _one(lambda _q, r: _with(r, unit=0)),
        "unit-id-2": _one(lambda _q, r: _with(r, unit=2)),
        "unit-id-255": _one(lambda _q, r: _with(r, unit=255)),
        "length-0": _one(lambda _q, r: _with(r, length=0)),
        "length-minus-1": _one(lambda _q, r: _with(r, length=_header(r)[2] - 1)),
        "length-plus-1": _one(lambda _q, r: _with(r, length=_header(r)[2] + 1)),
        "length-max": _one(lambda _q, r: _with(r, length=0xFFFF)),
        "length-covers-junk-after-registers": _one(
            lambda _q, r: _with(r, length=_header(r)[2] + len(junk)) + junk
        ),
        "junk-inside-pdu-after-byte-count": _one(lambda _q, r: _pdu(r, r[7:9] + junk[:2] + r[9:])),
        "junk-inside-pdu-before-byte-count": _one(lambda _q, r: _pdu(r, r[7:8] + junk[:2] + r[8:])),
        "byte-count-0": _one(lambda _q, r: r[:8] + b"\x00" + r[9:]),
        "byte-count-minus-2": _one(lambda _q, r: r[:8] + bytes([r[8] - 2]) + r[9:]),
        "byte-count-plus-2": _one(lambda _q, r: r[:8] + bytes([(r[8] + 2) % 256]) + r[9:]),
        "byte-count-odd": _one(lambda _q, r: r[:8] + bytes([r[8] - 1]) + r[9:]),
        "byte-count-255": _one(lambda _q, r: r[:8] + b"\xff" + r[9:]),
        "fewer-registers-consistent": _one(
            lambda _q, r: _pdu(r, bytes([r[7], r[8] - 2]) + r[9:-2])
        ),
        "more-registers-consistent": _one(
            lambda _q, r: _pdu(r, bytes([r[7], (r[8] + 2) % 256]) + r[9:] + b"\x00\x01")
        ),
        "function-code-4-for-3": _one(lambda _q, r: r[:7] + b"\x04" + r[8:]),
        "function-code-16": _one(lambda _q, r: r[:7] + b"\x10" + r[8:]),
        "function-code-0": _one(lambda _q, r: r[:7] + b"\x00" + r[8:]),
        "exception-of-another-function": _one(lambda _q, r: _pdu(r, b"\x84\x02")),
        "exception-truncated": _one(lambda _q, r: _pdu(r, b"\x83")),
        "exception-with-junk": _one(lambda _q, r: _pdu(r, b"\x83\x06" + junk)),
        "empty-pdu": _one(lambda _q, r: _pdu(r, b"")),
        "answered-twice": lambda _q, r: Plan([r, r]),
        "junk-after-frame": _one(lambda _q, r: r + junk),
        "junk-before-frame": _one(lambda _q, r: junk + r),
        "byte-by-byte": lambda _q, r: Plan([r[i : i + 1] for i in range(len(r))]),
        "stale-answer-first": lambda q, r: Plan(
            [_with(r, tid=(q.transaction_id - 1) % 0x10000), r]
        ),
        "random-garbage": _one(lambda _q, _r: random.Random(7).randbytes(64)),
        "http-instead": _one(lambda _q, _r: b"HTTP/1.1 400 Bad Request\r\n\r\n", close=True),
        "no-answer": lambda _q, _r: Plan([]),
        "closed-without-answer": lambda _q, _r: Plan([], close=True),
        "late-answer": lambda _q, r: Plan([r], delay_s=3 * TIMEOUT_S),
        "exception-busy": _one(lambda _q, r: _pdu(r, b"\x83\x06")),
        "exception-acknowledge": _one(lambda _q, r: _pdu(r, b"\x83\x05")),
        "exception-device-failure": _one(lambda _q, r: _pdu(r, b"\x83\x04")),
        "exception-gateway": _one(lambda _q, r: _pdu(r, b"\x83\x0b")),
    }
    for cut in (1, 6, 7, 8, 9):
        k[f"truncated-at-{cut}"] = _one(lambda _q, r, cut=cut: r[:cut])
        k[f"truncated-at-{cut}-closed"] = _one(lambda _q, r, cut=cut: r[:cut], close=True)
    k["truncated-last-byte"] = _one(lambda _q, r: r[:-1])
    k["truncated-last-byte-closed"] = _one(lambda _q, r: r[:-1], close=True)
    return k


KINDS: dict[str, Mutation] = _kinds()
"""Framing malformations: none may ever yield a reading other than the device's values."""

VALUE_KINDS: dict[str, dict[int, list[int]]] = {
    "absurd-power-W32767-SF10": {W: [32767], W_SF: [10]},
    "absurd-power-W-32768-SF10": {W: [0x8001], W_SF: [10]},
    "counter-leap-1-GWh": {TOT_WH_IMP: [0x05F5, 0xE100]},
}
"""Well-framed but implausible register contents: quarantined, never reported."""


@dataclass
class Outcome:
    """What one hostile device did to one reader.

    Attributes:
        polls: Polls made.
        readings: Readings reported.
        wrong: Readings whose values differ from what the device holds.
        malformed: Answers the server malformed.
        framing_errors: Answers the client refused for their framing.
        quarantined: Readings refused as implausible.
        recovered: The reader read correctly once the device behaved again.
    """

    polls: int = 0
    readings: int = 0
    wrong: int = 0
    malformed: int = 0
    framing_errors: int = 0
    quarantined: int = 0
    recovered: bool = False
    notes: list[str] = field(default_factory=list)


def _values(reading: Reading) -> tuple[int | None, ...]:
    return (
        reading.power_w,
        reading.energy_import_wh,
        reading.energy_export_wh,
        reading.production_w,
        reading.production_wh,
    )


def expected_values() -> tuple[int | None, ...]:
    """What an honest poll of the dump reports (read from an in-memory image)."""
    import asyncio

    image = RegisterImage(REGISTERS)
    clock = SimulatedClock(START)
    reading = asyncio.run(MeterReader(image, meter_id="ref", clock=clock).read())
    return _values(reading)


async def run_kind(
    mutation: Mutation | None,
    *,
    registers: dict[int, list[int]] | None = None,
    share: float = 0.5,
    polls: int = 6,
    seed: int = 0,
    expected: tuple[int | None, ...],
) -> Outcome:
    """Poll a device that malforms ``share`` of its answers (or holds ``registers``).

    The device then behaves, and one more poll must read correctly.
    """
    rng = random.Random(seed)
    outcome = Outcome()
    table = dict(REGISTERS)
    async with FakeModbusServer(table) as server:

        def hostile(request: Request, response: bytes) -> Plan:
            if mutation is not None and rng.random() < share:
                outcome.malformed += 1
                return mutation(request, response)
            return honest(request, response)

        server.behaviour = hostile
        client = ReadOnlyModbusClient(
            "127.0.0.1",
            server.port,
            timeout_s=TIMEOUT_S,
            reconnect=ReconnectPolicy(initial_delay_s=0, max_delay_s=0),
        )
        clock = SimulatedClock(START)
        reader = MeterReader(
            client,
            meter_id="hostile",
            clock=clock,
            discovery_retry=DiscoveryRetry(attempts=4, initial_delay_s=0.0),
        )
        async with client:
            if registers:  # an honest baseline first, then the implausible contents
                clock.advance(60)
                baseline = await reader.poll()
                if baseline is not None and _values(baseline) != expected:
                    outcome.wrong += 1
                for address, words in registers.items():
                    for i, word in enumerate(words):
                        server.registers[address + i] = word
            for _ in range(polls):
                clock.advance(60)
                outcome.polls += 1
                reading = await reader.poll()
                if reading is None:
                    continue
                outcome.readings += 1
                if _values(reading) != expected:
                    outcome.wrong += 1
                    outcome.notes.append(repr(reading))
            server.behaviour = honest
            server.registers.update(table)
            for _ in range(4):  # a counter the device moved back takes 3 readings to trust
                clock.advance(60)
                reading = await reader.poll()
            outcome.recovered = reading is not None and _values(reading) == expected
            outcome.framing_errors = client.framing_errors
            outcome.quarantined = sum(reader.quarantined.values())
            assert reader.unexpected_errors == 0
    return outcome
