"""Fuzzing the Modbus client and reader with a misbehaving Modbus TCP server on 127.0.0.1.

Every case makes the server answer one request wrongly: truncated frames,
wrong lengths, wrong unit or transaction ids, wrong function codes, exception
responses, garbage bytes, a closed socket, a late answer, or well-framed
garbage register values. The adapter must never raise anything but a
MeterError, and must read correctly again as soon as the server behaves.
The number of cases run is printed (pytest -s) and checked.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from meter_adapter.errors import DeviceError, MeterError
from meter_adapter.modbus_client import ReadOnlyModbusClient, ReconnectPolicy
from meter_adapter.reader import MeterReader
from meter_adapter.registers import RegisterType
from tests.meter_adapter import dumps
from tests.meter_adapter.fake_modbus import Behaviour, FakeModbusServer, Plan, Request, honest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BASE = 40000
REGISTERS = {BASE + i: v for i, v in enumerate(dumps.INVERTER_AND_METER_AT_40000)}
READ = (RegisterType.HOLDING, BASE, 10)
EXPECTED = dumps.INVERTER_AND_METER_AT_40000[:10]
TIMEOUT_S = 0.1
NO_WAIT = ReconnectPolicy(initial_delay_s=0.0, max_delay_s=0.0)
RANDOM_CASES = 150
GARBAGE_VALUE_CASES = 60

Mutation = Callable[[Request, bytes], Plan]


def header(response: bytes) -> tuple[int, int, int, int]:
    return struct.unpack(">HHHB", response[:7])


def with_header(response: bytes, **fields: int) -> bytes:
    tid, pid, length, unit = header(response)
    tid = fields.get("tid", tid)
    pid = fields.get("pid", pid)
    length = fields.get("length", length)
    unit = fields.get("unit", unit)
    return struct.pack(">HHHB", tid, pid, length, unit) + response[7:]


def with_pdu(response: bytes, pdu: bytes) -> bytes:
    tid, pid, _, unit = header(response)
    return struct.pack(">HHHB", tid, pid, len(pdu) + 1, unit) + pdu


def rewrite_header(**fields: int) -> Mutation:
    return lambda _req, resp: Plan([with_header(resp, **fields)])


def replace_pdu(pdu: bytes) -> Mutation:
    return lambda _req, resp: Plan([with_pdu(resp, pdu)])


def set_byte(index: int, value: int) -> Mutation:
    return lambda _req, resp: Plan([resp[:index] + bytes([value]) + resp[index + 1 :]])


def truncate(cut: int, *, close: bool) -> Mutation:
    return lambda _req, resp: Plan([resp[:cut]], close=close)


def shift_transaction(delta: int) -> Mutation:
    return lambda _req, resp: Plan([with_header(resp, tid=(header(resp)[0] + delta) % 0x10000)])


def send(data: bytes, *, close: bool = False) -> Mutation:
    return lambda _req, _resp: Plan([data], close=close)


def deterministic_cases() -> list[tuple[str, Mutation]]:
    cases: list[tuple[str, Mutation]] = []
    size = 7 + 2 + 2 * len(EXPECTED)
    for cut in (1, 3, 6, 7, 8, 9, size - 1):
        cases.append((f"truncated-{cut}", truncate(cut, close=False)))
        cases.append((f"truncated-{cut}-closed", truncate(cut, close=True)))
    cases.append(("closed-without-answer", send(b"", close=True)))
    cases.append(("no-answer", send(b"")))
    cases.append(("late-answer", lambda _q, r: Plan([r], delay_s=3 * TIMEOUT_S)))
    lengths = {"0": 0, "1": 1, "2": 2, "short": size - 7, "long": size - 5, "long10": size + 4}
    for name, length in {**lengths, "max": 0xFFFF}.items():
        cases.append((f"mbap-length-{name}", rewrite_header(length=length)))
    byte_count = 2 * len(EXPECTED)
    for count in (0, byte_count - 1, byte_count + 1, byte_count - 2, 255):
        cases.append((f"byte-count-{count}", set_byte(8, count)))
    for unit in (2, 0, 255):
        cases.append((f"unit-{unit}", rewrite_header(unit=unit)))
    cases.append(("transaction-next", shift_transaction(1)))
    cases.append(("transaction-far", shift_transaction(0x7FFF)))
    cases.append(("transaction-0", rewrite_header(tid=0)))
    for pid in (1, 0xFFFF):
        cases.append((f"protocol-{pid}", rewrite_header(pid=pid)))
    for fc in (4, 0x10, 0x2B, 0x7F, 0, 0x84):
        cases.append((f"function-{fc:#x}", set_byte(7, fc)))
    for code in (1, 2, 3, 4, 6, 0x0B, 0xFF):
        cases.append((f"exception-{code}", replace_pdu(bytes([0x83, code]))))
    cases.append(("exception-truncated", replace_pdu(b"\x83")))
    fewer = bytes([3, 2 * (len(EXPECTED) - 1)]) + b"\x00\x01" * (len(EXPECTED) - 1)
    more = bytes([3, 2 * (len(EXPECTED) + 1)]) + b"\x00\x01" * (len(EXPECTED) + 1)
    cases.append(("fewer-registers", replace_pdu(fewer)))
    cases.append(("more-registers", replace_pdu(more)))
    cases.append(("empty-pdu", replace_pdu(b"")))
    cases.append(("answered-twice", lambda _q, r: Plan([r, r])))
    cases.append(("junk-before", lambda _q, r: Plan([b"\x13\x37\xde\xad\xbe" + r])))
    cases.append(("junk-after", lambda _q, r: Plan([r + b"\x01\x02\x03"])))
    cases.append(("byte-by-byte", lambda _q, r: Plan([r[i : i + 1] for i in range(len(r))])))
    cases.append(("oversized-garbage", send(bytes(range(256)) * 2)))
    cases.append(("http-instead", send(b"HTTP/1.1 400 Bad Request\r\n\r\n", close=True)))
    return cases


def random_cases(seed: int, n: int) -> list[tuple[str, Mutation]]:
    rng = random.Random(seed)
    cases: list[tuple[str, Mutation]] = []
    for i in range(n):
        kind = rng.choice(["flip", "cut", "garbage", "header", "splice"])
        salt = rng.getrandbits(32)

        def mutate(_q: Request, r: bytes, kind: str = kind, salt: int = salt) -> Plan:
            local = random.Random(salt)
            data = bytearray(r)
            if kind == "flip":  # framing bytes only: a flipped register value is a valid answer
                for _ in range(local.randint(1, 3)):
                    data[local.randrange(9)] ^= 1 << local.randrange(8)
            elif kind == "cut":
                data = data[: local.randrange(len(data))]
            elif kind == "garbage":
                data = bytearray(local.randbytes(local.randint(1, 300)))
            elif kind == "header":
                data[local.randrange(7)] = local.randrange(256)
            else:
                data = data[:8] + bytearray(local.randbytes(local.randint(0, 30)))
            return Plan([bytes(data)], close=local.random() < 0.3)

        cases.append((f"random-{i}-{kind}", mutate))
    return cases


def once(mutation: Mutation) -> Behaviour:
    """Misbehave on the first request only, then answer honestly."""
    used: list[bool] = []

    def behaviour(request: Request, response: bytes) -> Plan:
        if used:
            return honest(request, response)
        used.append(True)
        return mutation(request, response)

    return behaviour


@dataclass
class Tally:
    cases: int = 0
    values: int = 0
    errors: dict[str, int] | None = None

    def error(self, exc: MeterError) -> None:
        self.errors = self.errors or {}
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


async def recovered(client: ReadOnlyModbusClient) -> bool:
    """Whether the next read is correct.

    A few tries are allowed for connecting or answering: on a busy machine,
    0.1 s is sometimes too short even on loopback. Wrong values never pass.
    """
    for _ in range(5):
        try:
            return await client.read(*READ) == EXPECTED
        except DeviceError:
            continue
    return False


async def fuzz_client(cases: list[tuple[str, Mutation]], retries: int) -> Tally:
    tally = Tally()
    async with FakeModbusServer(REGISTERS) as server:
        client = ReadOnlyModbusClient(
            "127.0.0.1", server.port, timeout_s=TIMEOUT_S, retries=retries, reconnect=NO_WAIT
        )
        async with client:
            for name, mutation in cases:
                server.behaviour = once(mutation)
                try:
                    values = await client.read(*READ)
                except MeterError as exc:
                    tally.error(exc)
                else:
                    assert values == EXPECTED, name  # a malformed frame is never read
                    tally.values += 1
                # the server behaves again: the client must recover
                assert await recovered(client), f"no recovery after {name}"
                tally.cases += 1
    return tally


def test_client_survives_malformed_responses() -> None:
    """Without retries each fault surfaces as a typed error; no wrong value is returned."""
    cases = deterministic_cases() + random_cases(seed=20240601, n=RANDOM_CASES)
    tally = asyncio.run(fuzz_client(cases, retries=0))
    print(f"\nModbus client fuzz: {tally.cases} cases, {tally.values} returned values, "
          f"errors {tally.errors}")  # fmt: skip
    assert tally.cases == len(cases)
    assert tally.errors is not None
    assert {"DeviceTimeoutError", "FramingError", "ModbusExceptionError"} <= set(tally.errors)


def test_a_fault_is_retried_within_the_read() -> None:
    """With one retry, a device that misbehaves once still yields the right values."""
    cases = [c for c in deterministic_cases() if not c[0].startswith("exception")]
    tally = asyncio.run(fuzz_client(cases, retries=1))
    assert tally.cases == len(cases)
    assert tally.values >= len(cases) - 3  # a late answer can still time out twice when loaded


async def fuzz_reader(seed: int, n: int) -> tuple[int, int, int]:
    """Well-framed garbage register values and random framing faults under the full reader."""
    rng = random.Random(seed)
    readings = skipped = 0
    for _ in range(n):
        registers = dict(REGISTERS)
        for address in rng.sample(sorted(registers), k=rng.randint(1, 40)):
            registers[address] = rng.choice([0, 0x8000, 0xFFFF, rng.randrange(0x10000)])
        async with FakeModbusServer(registers) as server:
            faults = random_cases(rng.getrandbits(32), 4)

            def flaky(
                request: Request, response: bytes, faults: list[tuple[str, Mutation]] = faults
            ) -> Plan:
                if rng.random() < 0.15:
                    return rng.choice(faults)[1](request, response)
                return honest(request, response)

            server.behaviour = flaky
            async with ReadOnlyModbusClient(
                "127.0.0.1", server.port, timeout_s=TIMEOUT_S, reconnect=NO_WAIT
            ) as client:
                reader = MeterReader(client, meter_id="fuzz")
                for _ in range(3):
                    reading = await reader.poll()
                    readings += reading is not None
                skipped += reader.skipped
                assert reader.unexpected_errors == 0
    return n, readings, skipped


def test_reader_never_crashes_on_garbage_values() -> None:
    cases, readings, skipped = asyncio.run(fuzz_reader(seed=7, n=GARBAGE_VALUE_CASES))
    print(f"\nMeterReader fuzz: {cases} devices x 3 polls, {readings} readings, {skipped} skipped")
    assert cases == GARBAGE_VALUE_CASES
    assert readings + skipped == 3 * GARBAGE_VALUE_CASES
