"""The market engine of one feeder: interval lifecycle, journal, gRPC servicers.

See ``docs/engine.md``. The public face::

    from market.engine import Engine, EngineConfig, SimClock, ServerThread

Names are imported on first use, so that ``gridex --help`` (which loads
``market.engine.cli``) does not pay for grpc and the grid model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from market.engine._core import EngineConfig
    from market.engine.clearing import ClearingBackend, ClearingSummary, MarketClearing
    from market.engine.clock import Clock, SimClock, WallClock
    from market.engine.engine import Accepted, Engine
    from market.engine.server import EngineServer, ServerConfig, ServerThread, TlsConfig
    from market.engine.settler import RecordingSettler, Settler

_WHERE = {
    "Accepted": "engine",
    "ClearingBackend": "clearing",
    "ClearingSummary": "clearing",
    "Clock": "clock",
    "Engine": "engine",
    "EngineConfig": "_core",
    "EngineServer": "server",
    "MarketClearing": "clearing",
    "RecordingSettler": "settler",
    "ServerConfig": "server",
    "ServerThread": "server",
    "SimClock": "clock",
    "Settler": "settler",
    "TlsConfig": "server",
    "WallClock": "clock",
}

__all__ = [
    "Accepted",
    "ClearingBackend",
    "ClearingSummary",
    "Clock",
    "Engine",
    "EngineConfig",
    "EngineServer",
    "MarketClearing",
    "RecordingSettler",
    "ServerConfig",
    "ServerThread",
    "Settler",
    "SimClock",
    "TlsConfig",
    "WallClock",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'market.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"market.engine.{module}"), name)
