"""The AC check's limit rule (market.clearing._physics.evaluate) on a case worked out by hand.

A limit that the base case already breaks is held where the base case has
it: the market may not make it worse, and is not blamed for it. Everything
else is held at the feeder's own limits.
"""

from __future__ import annotations

import numpy as np

from grid import check_schedule, load_feeder
from market.clearing._physics import evaluate


def test_a_limit_the_base_case_already_breaks_is_held_where_the_base_has_it() -> None:
    feeder = load_feeder("kerber-dorfnetz")
    # twice the base load: the transformer is at about 181 % before the market trades
    view = feeder.with_base(feeder.base_p_mw * 2.0, feeder.base_q_mvar * 2.0, label="heavy")
    base = check_schedule(view, np.zeros(view.n_bus))
    trafo = len(view.lines)  # the one transformer's row in feeder.branches
    base_loading = float(base.trafo_loading_percent[0])
    assert base_loading > 150.0
    far = view.connectable_buses[-1].position

    relief = np.zeros(view.n_bus)
    relief[far] = 0.02  # 20 kW of PV sold at a far bus: the transformer carries less
    state = evaluate(view, relief, tolerance=0.0, interval_s=900)
    assert state.report is not None
    assert state.report.trafo_loading_percent[0] < base_loading
    assert not [m for m in state.misses if m.kind == "trafo"]

    worse = np.zeros(view.n_bus)
    worse[far] = -0.02  # 20 kW more bought there: the transformer carries more
    state = evaluate(view, worse, tolerance=0.0, interval_s=900)
    misses = [m for m in state.misses if m.kind == "trafo"]
    assert len(misses) == 1
    assert misses[0].position == trafo
    assert misses[0].limit == base_loading
    assert misses[0].value > base_loading
    # a line the base case keeps within 100 % is held at 100 %
    assert all(m.limit >= 100.0 for m in state.misses if m.kind == "line")


def test_voltage_below_the_band_is_a_miss_only_beyond_where_the_base_case_has_it() -> None:
    feeder = load_feeder("kerber-dorfnetz")
    # three times the base load: far buses sag below 0.9 p.u. before the market trades
    view = feeder.with_base(feeder.base_p_mw * 3.0, feeder.base_q_mvar * 3.0, label="heavier")
    base = check_schedule(view, np.zeros(view.n_bus))
    low = int(np.nanargmin(base.vm_pu))
    assert base.vm_pu[low] < view.buses[low].vm_min_pu
    assert not evaluate(view, np.zeros(view.n_bus), tolerance=0.0, interval_s=900).misses

    worse = np.zeros(view.n_bus)
    worse[low] = -0.005
    state = evaluate(view, worse, tolerance=0.0, interval_s=900)
    at_low = [m for m in state.misses if m.kind == "bus" and m.position == low]
    assert len(at_low) == 1
    assert at_low[0].limit == float(base.vm_pu[low])
    assert at_low[0].value < at_low[0].limit
