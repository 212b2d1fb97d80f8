"""Hypothesis strategies shared by the test suite, one section per package area.

Each section is owned by the area's tests; add a new headed section rather
than editing another one.
"""

from __future__ import annotations

from hypothesis import strategies as st

from market.config import MarketConfig
from market.metering import Reading

__all__ = [
    "addresses",
    "market_configs",
    "reading_streams",
    "settlement_books",
]

# ---------------------------------------------------------------------------
# market.metering and market.settlement
# ---------------------------------------------------------------------------


def addresses() -> st.SearchStrategy[str]:
    """Lower-case Ethereum addresses."""
    return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@st.composite
def reading_streams(
    draw: st.DrawFn,
    meter_id: str = "m1",
    *,
    min_size: int = 1,
    max_size: int = 30,
    start_ms: int = 0,
    gaps: bool = True,
) -> list[Reading]:
    """A valid stream of one meter's readings, in seq order.

    Timestamps advance by 1 ms to a few minutes, often by whole 5 s steps so
    that readings land exactly on interval boundaries; counters never
    decrease; seq advances by 1, or by more where ``gaps`` allows.
    """
    n = draw(st.integers(min_size, max_size))
    seq = draw(st.integers(0, 5))
    ts = start_ms + draw(st.integers(0, 60_000))
    imp = draw(st.integers(0, 10**6))
    exp = draw(st.integers(0, 10**6))
    step_ms = st.one_of(st.integers(1, 200_000), st.integers(1, 40).map(lambda k: k * 5_000))
    step_wh = st.one_of(st.just(0), st.integers(0, 50), st.integers(0, 10**5))
    seq_step = st.one_of(st.just(1), st.integers(2, 4)) if gaps else st.just(1)
    out: list[Reading] = []
    for _ in range(n):
        out.append(Reading(meter_id, seq, ts, imp, exp, draw(st.integers(-(10**4), 10**4))))
        seq += draw(seq_step)
        ts += draw(step_ms)
        imp += draw(step_wh)
        exp += draw(step_wh)
    return out


def market_configs() -> st.SearchStrategy[MarketConfig]:
    """Market configurations with arbitrary (valid) tariffs, feed-in ≤ retail."""
    return st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)).map(
        lambda p: MarketConfig(retail_price=max(p), feed_in_price=min(p))
    )


@st.composite
def settlement_books(draw: st.DrawFn) -> dict[str, object]:
    """Keyword arguments for :func:`market.settlement.settle_interval`.

    The participants' payments and the surplus are arbitrary integers (the
    settlement must balance whatever the clearing paid); some participants
    only trade, some are only metered.
    """
    people = draw(st.lists(addresses(), min_size=1, max_size=8, unique=True))
    operator = draw(addresses().filter(lambda a: a not in people))
    wh = st.integers(-(10**7), 10**7)
    money = st.integers(-(10**12), 10**12)
    traded = {p: draw(wh) for p in people if draw(st.booleans())}
    metered = {p: draw(wh) for p in people if draw(st.booleans())}
    payments = {p: draw(money) for p in traded if draw(st.integers(0, 4))}
    return {
        "interval": draw(st.integers(0, 10**8)),
        "traded_wh": traded,
        "payments": payments,
        "operator_surplus": draw(st.integers(0, 10**10)),
        "metered_wh": metered,
        "config": draw(market_configs()),
        "operator": operator,
        "result_hash": draw(st.binary(min_size=32, max_size=32).filter(any)),
    }
