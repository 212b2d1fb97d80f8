"""The prosumer agent: forecasts the next interval's surplus or deficit and trades it.

- :class:`AgentConfig`: the prosumer's price limits and the forecast's knobs.
- :class:`ProsumerAgent`: decides and places one idempotent order per interval.
- :class:`StorageAgent`: keeps a storage order for the home battery, from its measured SoC.
- :class:`MarketEvents`: follows the engine's market events (its clock, the open interval).
- :func:`forecast_net_wh` / :class:`EnergyHistory`: the forecast, documented in
  :mod:`meter_adapter.agent.forecast`.
"""

from __future__ import annotations

from meter_adapter.agent.agent import (
    AgentConfig,
    AgentOrder,
    ProsumerAgent,
    client_order_id,
    decide_order,
)
from meter_adapter.agent.forecast import EnergyHistory, IntervalEnergy, forecast_net_wh
from meter_adapter.agent.market import MarketClient, MarketEvents
from meter_adapter.agent.storage import (
    FlexOrderClient,
    StorageAgent,
    StorageConfig,
    StorageOrder,
    build_storage_order,
)

__all__ = [
    "AgentConfig",
    "AgentOrder",
    "EnergyHistory",
    "FlexOrderClient",
    "IntervalEnergy",
    "MarketClient",
    "MarketEvents",
    "ProsumerAgent",
    "StorageAgent",
    "StorageConfig",
    "StorageOrder",
    "build_storage_order",
    "client_order_id",
    "decide_order",
    "forecast_net_wh",
]
