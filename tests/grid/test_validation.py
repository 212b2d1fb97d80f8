"""AC validation of schedules against pandapower's runpp."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest

from grid import Feeder, PowerFlowError, check_schedule
from grid.feeders import builtin_net


def test_base_case_report_equals_runpp(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["cigre-lv"]
    report = check_schedule(feeder, np.zeros(feeder.n_bus))
    net = builtin_net("cigre-lv")
    pp.runpp(net)
    assert report.max_line_loading_percent == pytest.approx(net.res_line.loading_percent.max())
    assert report.max_trafo_loading_percent == pytest.approx(net.res_trafo.loading_percent.max())
    assert report.vm_min_pu == pytest.approx(net.res_bus.vm_pu.min())
    assert report.losses_mw == pytest.approx(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum())
    assert report.ok


def test_schedule_equals_runpp_with_the_same_sgens(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["kerber-dorfnetz"]
    rng = np.random.default_rng(7)
    inj = np.array([rng.uniform(-0.01, 0.01) if b.connectable else 0.0 for b in feeder.buses])
    report = check_schedule(feeder, inj)
    net = builtin_net("kerber-dorfnetz")
    for bus, p in zip(feeder.buses, inj, strict=True):
        if p:
            pp.create_sgen(net, bus.index, p_mw=p)
    pp.runpp(net)
    np.testing.assert_allclose(report.vm_pu, net.res_bus.vm_pu.loc[feeder.bus_indices], atol=1e-8)
    np.testing.assert_allclose(
        report.line_loading_percent,
        net.res_line.loading_percent.loc[[b.index for b in feeder.lines]],
    )


def test_overload_and_overvoltage_are_reported(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["kerber-dorfnetz"]
    far = max(feeder.connectable_buses, key=lambda b: b.index)
    inj = np.zeros(feeder.n_bus)
    inj[far.position] = 0.25  # 250 kW of PV at the end of a village feeder
    report = check_schedule(feeder, inj)
    assert not report.ok
    assert report.max_line_loading_percent > 100.0
    for v in report.violations:
        assert str(v.index) in str(v)
        if v.quantity == "vm_pu":
            assert not feeder.bus(v.index).vm_min_pu <= v.value <= feeder.bus(v.index).vm_max_pu
        else:
            assert v.value > v.limit


def test_undervoltage_is_reported(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["case33bw"]
    inj = np.zeros(feeder.n_bus)
    inj[feeder.position_of(17)] = -0.5  # 500 kW more load at the end of the long lateral
    report = check_schedule(feeder, inj)
    low = [v for v in report.violations if v.quantity == "vm_pu"]
    assert low
    assert all(v.value < v.limit for v in low)


def test_tolerance_hides_small_violations(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["kerber-dorfnetz"]
    far = max(feeder.connectable_buses, key=lambda b: b.index)
    inj = np.zeros(feeder.n_bus)
    inj[far.position] = 0.25
    strict = check_schedule(feeder, inj)
    loose = check_schedule(feeder, inj, tolerance=50.0)
    assert len(loose.violations) < len(strict.violations)


def test_non_convergence_is_our_error_not_pandapowers(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["cigre-lv"]
    inj = np.zeros(feeder.n_bus)
    inj[feeder.connectable_buses[-1].position] = -50.0  # 50 MW load on a 0.4 kV bus
    with pytest.raises(PowerFlowError) as info:
        check_schedule(feeder, inj)
    assert isinstance(info.value, RuntimeError)
    assert "did not converge" in str(info.value)
    # the feeder stays usable after a failed flow
    assert check_schedule(feeder, np.zeros(feeder.n_bus)).ok
