"""Horizon invariants on random books: SoC bounds across rolls, energy, power, welfare."""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from market.clearing import ClearingOptions
from market.clearing.horizon import clear_horizon
from market.config import MarketConfig
from market.flex import EvOrder, StorageOrder, advance, max_energy_wh, soc_after
from market.orders import Order, Participant, Side
from tests.market.clearing.nets import feeder

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)
OPTS = ClearingOptions(sensitivities="dc")
N_T = 3


@st.composite
def days(
    draw: st.DrawFn,
) -> tuple[list[list[Order]], StorageOrder, EvOrder, dict[str, Participant]]:
    addrs = [f"0x{i + 1:040x}" for i in range(4)]
    buses = draw(st.lists(st.sampled_from([1, 2, 3, 4, 5]), min_size=4, max_size=4))
    parts = {a: Participant(a, b) for a, b in zip(addrs, buses, strict=True)}
    book: list[list[Order]] = []
    for t in range(N_T + 2):
        book.append(
            [
                Order(
                    f"s{t}",
                    addrs[0],
                    Side.SELL,
                    t,
                    draw(st.integers(1, 20_000)),
                    draw(st.integers(0, 300_000)),
                ),
                Order(
                    f"b{t}",
                    addrs[1],
                    Side.BUY,
                    t,
                    draw(st.integers(1, 20_000)),
                    draw(st.integers(80_000, 400_000)),
                ),
            ]
        )
    cap = draw(st.integers(1_000, 30_000))
    lo = draw(st.integers(0, cap // 3))
    hi = draw(st.integers(max(lo, cap // 2), cap))
    soc = draw(st.integers(lo, hi))
    bat = StorageOrder(
        "bat",
        addrs[2],
        cap,
        soc,
        lo,
        hi,
        draw(st.integers(0, 40_000)),
        draw(st.integers(0, 40_000)),
        draw(st.floats(0.6, 1.0)),
        draw(st.floats(0.6, 1.0)),
        draw(st.integers(lo, hi)),
        draw(st.integers(0, 50_000)),
    )
    ev = EvOrder(
        "ev",
        addrs[3],
        draw(st.integers(1, 5_000)),
        22_000,
        0,
        N_T + 2,
        draw(st.integers(0, 500_000)),
    )
    return book, bat, ev, parts


# shrinking re-clears a horizon per step and takes minutes; the raw example is readable
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
@given(days())
def test_horizon_invariants_hold_across_rolls(
    day: tuple[list[list[Order]], StorageOrder, EvOrder, dict[str, Participant]],
) -> None:
    book, bat, ev, parts = day
    f = feeder("radial")
    for start in range(2):
        orders = [list(book[start + t]) for t in range(N_T)]
        flex = [bat] + ([ev] if ev is not None else [])
        joint = clear_horizon(
            [f] * N_T, orders, flex, parts, CONFIG, first_interval=start, options=OPTS
        )
        alone = clear_horizon(
            [f] * N_T, orders, flex, parts, CONFIG, first_interval=start, options=OPTS, myopic=True
        )
        # joint clearing can always do what clearing each interval alone does
        assert joint.welfare >= alone.welfare - 1e-6 * max(1.0, abs(alone.welfare)), (
            start,
            joint.welfare,
            alone.welfare,
            joint.schedules,
            alone.schedules,
            orders,
        )
        s_bat = joint.schedules[0]
        soc = bat.soc_wh
        for t in range(N_T):
            c, d = s_bat.charge_wh[t], s_bat.discharge_wh[t]
            # power limits
            assert 0 <= c <= max_energy_wh(bat.max_charge_w, CONFIG.interval_s)
            assert 0 <= d <= max_energy_wh(bat.max_discharge_w, CONFIG.interval_s)
            # energy conservation with efficiencies, by the integer rule, no drift
            soc = soc_after(bat, soc, c, d)
            assert s_bat.soc_wh[t] == soc
            assert bat.min_soc_wh <= soc <= bat.max_soc_wh
        if ev is not None:
            s_ev = joint.schedules[1]
            assert all(
                0 <= c <= max_energy_wh(ev.max_power_w, CONFIG.interval_s) for c in s_ev.charge_wh
            )
            assert sum(s_ev.charge_wh) <= ev.energy_wh
        nxt = advance(bat, start, s_bat.charge_wh[0], s_bat.discharge_wh[0])
        assert isinstance(nxt, StorageOrder)
        bat = nxt
        nxt_ev = None if ev is None else advance(ev, start, joint.schedules[1].charge_wh[0], 0)
        ev = nxt_ev  # type: ignore[assignment]
