"""``Feeder.with_base``: a per-interval view of a feeder with another base injection."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from grid import Feeder, InjectionShapeError, check_schedule, linearise
from grid.feeders import builtin_net


def _scaled_net(feeder: Feeder, load_factor: float, extra_sgen_mw: dict[int, float]) -> object:
    net = builtin_net(feeder.name)
    net.load["scaling"] = net.load["scaling"] * load_factor
    for bus, p in extra_sgen_mw.items():
        pp.create_sgen(net, bus, p_mw=p)
    return net


def test_view_power_flow_equals_runpp_of_the_changed_network(
    feeders: dict[str, Feeder],
) -> None:
    """The view's flow is pandapower's flow of the network with that base built in."""
    feeder = feeders["kerber-dorfnetz"]
    far = feeder.connectable_buses[-1].index
    net = _scaled_net(feeder, 1.7, {far: 0.02})
    rebuilt = Feeder.from_net(net, name="rebuilt")
    view = feeder.with_base(rebuilt.base_p_mw, rebuilt.base_q_mvar, label="test")
    np.testing.assert_allclose(view.base_p_mw, rebuilt.base_p_mw)
    pp.runpp(net)
    report = check_schedule(view, np.zeros(view.n_bus))
    np.testing.assert_allclose(report.vm_pu, net.res_bus.vm_pu.loc[view.bus_indices], atol=1e-8)
    np.testing.assert_allclose(
        report.line_loading_percent,
        net.res_line.loading_percent.loc[[b.index for b in view.lines]],
        rtol=1e-7,
    )
    # the original feeder is untouched by the view sharing its working network
    own = check_schedule(feeder, np.zeros(feeder.n_bus))
    assert own.vm_pu[feeder.position_of(far)] != pytest.approx(
        report.vm_pu[feeder.position_of(far)], abs=1e-6
    )


def test_view_linearises_at_its_own_base(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["cigre-lv"]
    view = feeder.with_base(feeder.base_p_mw * 2.0, feeder.base_q_mvar * 2.0)
    a = linearise(feeder)
    b = linearise(view)
    assert b.slack_p_mw == pytest.approx(2.0 * a.slack_p_mw, rel=0.1)
    assert not np.allclose(a.vm_pu, b.vm_pu)
    # a view of a view is relative to the network file, not to the first view
    again = view.with_base(feeder.base_p_mw, feeder.base_q_mvar)
    np.testing.assert_allclose(linearise(again).vm_pu, a.vm_pu, atol=1e-10)


@pytest.mark.parametrize(
    ("p", "field"),
    [
        (np.zeros(3), "base_p_mw"),
        (np.full(44, np.nan), "base_p_mw"),
    ],
)
def test_view_rejects_bad_vectors(feeders: dict[str, Feeder], p: object, field: str) -> None:
    feeder = feeders["cigre-lv"]
    with pytest.raises(InjectionShapeError, match=field):
        feeder.with_base(p, np.zeros(feeder.n_bus))  # type: ignore[arg-type]


def test_views_share_the_topology_but_not_the_base_point(feeders: dict[str, Feeder]) -> None:
    """Per-base memos key on the view, per-topology memos on ``feeder.topology``."""
    from market.clearing._cache import electrical_distance, zero_point

    feeder = feeders["cigre-lv"]
    a = feeder.with_base(feeder.base_p_mw * 0.5, feeder.base_q_mvar * 0.5)
    b = a.with_base(feeder.base_p_mw * 1.5, feeder.base_q_mvar * 1.5)
    assert a.topology is feeder
    assert b.topology is feeder
    assert electrical_distance(a) is electrical_distance(feeder)
    assert electrical_distance(b) is electrical_distance(feeder)
    za, zb = zero_point(a, "ac"), zero_point(b, "ac")
    assert za is zero_point(a, "ac")
    assert not np.allclose(za.vm_pu, zb.vm_pu)
    assert not np.allclose(za.vm_pu, zero_point(feeder, "ac").vm_pu)
