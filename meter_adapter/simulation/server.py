"""Serving a simulated SunSpec device over real Modbus TCP (a pymodbus server).

Every read is answered with the registers at the simulator clock's current
time, so a reader sees the home exactly as it would a real device. The server
is read-only too: write requests get Modbus exception 2 (illegal address),
and requests for another unit id get exception 11 (gateway target failed).

Usable in-process from asyncio (tests, the demo)::

    server = await start_simulator_server(simulator, port=0)
    ...  # read from server.host, server.port
    await server.stop()
"""

from __future__ import annotations

import logging
from types import TracebackType

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from meter_adapter.errors import DeviceError
from meter_adapter.simulation.device import SunSpecSimulator

__all__ = ["SimulatorServer", "start_simulator_server"]

logger = logging.getLogger(__name__)


class SimulatorServer:
    """A running Modbus TCP server for one simulated device.

    Create it with :func:`start_simulator_server`; stop it with :meth:`stop`
    or by leaving ``async with``.
    """

    def __init__(self, simulator: SunSpecSimulator, server: ModbusTcpServer, host: str, port: int):
        self.simulator = simulator
        self.host = host
        self.port = port
        self._server = server
        self.requests = 0
        """Requests answered so far (reads of this device's unit id)."""

    def __repr__(self) -> str:
        return f"SimulatorServer({self.host}:{self.port}, unit {self.simulator.identity.unit_id})"

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        await self._server.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus
        logger.info("%r stopped", self)

    async def __aenter__(self) -> SimulatorServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


async def start_simulator_server(
    simulator: SunSpecSimulator, *, host: str = "127.0.0.1", port: int = 0
) -> SimulatorServer:
    """Start serving ``simulator`` on ``host:port`` (port 0 picks a free port).

    Raises:
        DeviceError: The address could not be bound.
    """
    base = simulator.base_address
    size = len(simulator.registers())
    handle: list[SimulatorServer] = []

    async def on_read(  # noqa: PLR0917  (signature fixed by pymodbus SimDevice.action)
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None:
            return ExcCodes.ILLEGAL_ADDRESS  # read-only device
        offset = base - start_address
        registers[offset : offset + size] = simulator.registers()
        if handle:
            handle[0].requests += 1
        return None

    async def other_unit(*_: object) -> ExcCodes | None:
        return ExcCodes.GATEWAY_NO_RESPONSE

    def block() -> list[SimData]:
        return [SimData(base, values=[0] * size, datatype=DataType.REGISTERS, readonly=True)]

    devices = [
        SimDevice(id=simulator.identity.unit_id, simdata=block(), action=on_read),
    ]
    if simulator.identity.unit_id != 0:
        devices.append(SimDevice(id=0, simdata=block(), action=other_unit))
    server = ModbusTcpServer(devices, address=(host, port))
    try:
        await server.serve_forever(background=True)
    except (RuntimeError, OSError) as exc:
        raise DeviceError(f"cannot serve Modbus TCP on {host}:{port}: {exc}") from exc
    listener = server.transport
    sockets = getattr(listener, "sockets", None)
    if not sockets:
        await server.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus
        raise DeviceError(f"cannot serve Modbus TCP on {host}:{port}")
    bound_port = int(sockets[0].getsockname()[1])
    result = SimulatorServer(simulator, server, host, bound_port)
    handle.append(result)
    logger.info("%r serving SunSpec models %s at %d", result, simulator.model_ids, base)
    return result
