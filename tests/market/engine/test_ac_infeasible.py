"""An interval whose schedule fails the AC power flow is not settled as trades.

Real clearing (no fake backend): on cigre-lv a 110 kWh seller at the far
end of the residential feeder (bus 19) lifts its voltage past 1.1 p.u.; with
only lines and transformers enforced no round can repair that, so the
clearing is ``ac_infeasible``. The engine records the failure, fills nothing
and settles the interval with every participant at its tariff.
"""

from __future__ import annotations

from collections.abc import Callable

from gridex.v1 import types_pb2 as pb

from market.clearing import ClearingOptions
from market.engine.clearing import MarketClearing
from market.engine.engine import Engine, EngineConfig
from market.engine.signing import Signer
from market.orders import Order, Side

from .conftest import FIRST

INTERVAL_MS = 900_000


def test_an_ac_infeasible_interval_is_recorded_failed_and_settled_at_tariff(
    make_engine: Callable[..., Engine],
) -> None:
    clearing = MarketClearing(ClearingOptions(constraints="lines,trafos", validate=False))
    engine = make_engine(clearing=clearing, config=EngineConfig())
    seller, buyer = Signer("0x" + "21" * 32), Signer("0x" + "22" * 32)
    engine.register_participant(seller.address, 19).result()
    engine.register_participant(buyer.address, 2).result()
    engine.submit_order(Order("s", seller.address, Side.SELL, FIRST, 110_000, 10_000)).result()
    engine.submit_order(Order("b", buyer.address, Side.BUY, FIRST, 200_000, 290_000)).result()
    engine.advance_to((FIRST + 1) * INTERVAL_MS + 60_000)
    s = engine.state.intervals[FIRST]
    assert s.clearing is not None
    assert not s.clearing.ok
    assert "ac_infeasible" in s.clearing.error
    assert "vm_pu" in s.clearing.error
    assert s.clearing.summary is None  # nothing to settle as trades
    assert {r.status for r in s.orders} == {pb.ORDER_STATUS_UNFILLED}
    assert s.phase == pb.INTERVAL_PHASE_SETTLED
    assert s.settlement is not None
    # no local trade: nobody is paid or charged for the market (no meter readings
    # here, so no imbalance either), and the operator earns no fee
    assert s.settlement.fee == 0
    assert all(v == 0 for v in s.settlement.deltas.values())
    assert all(v == 0 for v in s.settlement.imbalance_wh.values())
