"""A raw asyncio Modbus TCP server for tests: records every request, can misbehave on purpose.

It parses requests itself (no pymodbus), answers reads of holding (3) and
input (4) registers from a register table, and lets a test replace the answer
with anything: truncated frames, wrong header fields, garbage, a closed socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One request as received."""

    transaction_id: int
    protocol_id: int
    unit_id: int
    function_code: int
    payload: bytes

    @property
    def address(self) -> int:
        return struct.unpack(">H", self.payload[:2])[0] if len(self.payload) >= 2 else -1

    @property
    def count(self) -> int:
        return struct.unpack(">H", self.payload[2:4])[0] if len(self.payload) >= 4 else -1


@dataclass
class Plan:
    """What to send back: byte chunks (sent one by one), then maybe close the socket.

    ``delay_s`` is waited before the first chunk (a late answer).
    """

    chunks: list[bytes] = field(default_factory=list)
    close: bool = False
    delay_s: float = 0.0


Behaviour = Callable[[Request, bytes], Plan]
"""Given the request and the correct response frame, decide what to send."""


def honest(_: Request, response: bytes) -> Plan:
    """Send the correct response."""
    return Plan([response])


def frame(transaction_id: int, unit_id: int, pdu: bytes, *, protocol_id: int = 0) -> bytes:
    """An MBAP frame around ``pdu`` with a correct length field."""
    return struct.pack(">HHHB", transaction_id, protocol_id, len(pdu) + 1, unit_id) + pdu


class FakeModbusServer:
    """Serves ``registers`` (address → value) to unit ``unit_id`` on 127.0.0.1.

    Attributes:
        requests: Every request received, in order, across all connections.
        behaviour: Decides each answer; :func:`honest` unless replaced.
        connections: Number of connections accepted so far.
    """

    def __init__(self, registers: Mapping[int, int], *, unit_id: int = 1) -> None:
        self.registers = dict(registers)
        self.unit_id = unit_id
        self.requests: list[Request] = []
        self.behaviour: Behaviour = honest
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeModbusServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def correct_response(self, request: Request) -> bytes:
        """The answer an honest device gives to ``request``."""
        fc = request.function_code
        if fc not in (3, 4) or len(request.payload) != 4:
            pdu = bytes([fc | 0x80, 0x01])
        elif request.unit_id != self.unit_id:
            pdu = bytes([fc | 0x80, 0x0B])
        else:
            try:
                values = [self.registers[request.address + i] for i in range(request.count)]
            except KeyError:
                pdu = bytes([fc | 0x80, 0x02])
            else:
                pdu = bytes([fc, 2 * len(values)]) + b"".join(struct.pack(">H", v) for v in values)
        return frame(request.transaction_id, request.unit_id, pdu)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                header = await reader.readexactly(7)
                tid, pid, length, unit = struct.unpack(">HHHB", header)
                body = await reader.readexactly(max(length - 1, 0))
                if not body:
                    continue
                request = Request(tid, pid, unit, body[0], body[1:])
                self.requests.append(request)
                plan = self.behaviour(request, self.correct_response(request))
                if plan.delay_s:
                    await asyncio.sleep(plan.delay_s)
                for chunk in plan.chunks:
                    writer.write(chunk)
                    await writer.drain()
                if plan.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
