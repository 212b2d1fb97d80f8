"""Accuracy of the linear sensitivities against pandapower's own power flows.

Stated tolerances:

* ``dc``: flows predicted from the sensitivities equal pandapower's DC power
  flow (``rundcpp``) to 1e-9 MW for any injection change (the DC model is
  linear, so this is exact up to rounding).
* ``ac``: for random injection changes of up to ±5 kW per LV bus and ±100 kW
  per MV bus, the first-order prediction of every branch flow and bus voltage
  differs from ``runpp`` by at most 5 % of the largest change of that
  quantity plus a floor (0.2 kW, 1e-5 p.u.) — the error is second order; the
  slack's injection within 5 % of the total injection change (losses are
  quadratic in the flows).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grid import Feeder, InjectionShapeError, check_schedule, linearise
from grid.powerflow import run_ac, run_dc

from .conftest import ACCURACY_FEEDERS


def _perturbation(feeder: Feeder, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = np.array([0.005 if b.vn_kv < 1.0 else 0.1 for b in feeder.buses])
    mask = np.array([b.connectable for b in feeder.buses])
    return np.where(mask, rng.uniform(-1.0, 1.0, feeder.n_bus) * scale, 0.0)


def _flows(feeder: Feeder, net: object) -> np.ndarray:
    lines = net.res_line.loc[[b.index for b in feeder.lines], "p_from_mw"]  # type: ignore[attr-defined]
    trafos = net.res_trafo.loc[[b.index for b in feeder.trafos], "p_hv_mw"]  # type: ignore[attr-defined]
    return np.concatenate([np.asarray(lines), np.asarray(trafos)])


@pytest.mark.parametrize("name", ACCURACY_FEEDERS)
@given(seed=st.integers(0, 2**32 - 1))
def test_dc_matches_pandapower_dc_power_flow(
    feeders: dict[str, Feeder], name: str, seed: int
) -> None:
    feeder = feeders[name]
    sens = linearise(feeder, mode="dc")
    delta = _perturbation(feeder, seed) * 20  # DC is linear: size does not matter
    with feeder.lock():
        actual = _flows(feeder, run_dc(feeder, delta))
    np.testing.assert_allclose(sens.predict_flow_mw(delta), actual, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sens.dslack_dp, -1.0)


@pytest.mark.parametrize("name", ACCURACY_FEEDERS)
@given(seed=st.integers(0, 2**32 - 1))
def test_ac_first_order_prediction_matches_runpp(
    feeders: dict[str, Feeder], name: str, seed: int
) -> None:
    feeder = feeders[name]
    sens = linearise(feeder, mode="ac")
    delta = _perturbation(feeder, seed)
    with feeder.lock():
        net = run_ac(feeder, delta)
        actual_flow = _flows(feeder, net)
        actual_vm = np.asarray(net.res_bus.loc[feeder.bus_indices, "vm_pu"])
        actual_slack = float(net.res_ext_grid.p_mw.sum())
    flow_change = np.abs(actual_flow - sens.flow_mw).max()
    vm_change = np.abs(actual_vm - sens.vm_pu).max()
    assert np.abs(sens.predict_flow_mw(delta) - actual_flow).max() <= 0.05 * flow_change + 2e-4
    assert np.abs(sens.predict_vm_pu(delta) - actual_vm).max() <= 0.05 * vm_change + 1e-5
    slack_pred = sens.slack_p_mw + sens.dslack_dp @ delta
    # losses are quadratic in the flows: bound the slack's error by the injection size
    assert abs(slack_pred - actual_slack) <= 0.05 * np.abs(delta).sum() + 2e-4


@pytest.mark.parametrize("name", ACCURACY_FEEDERS)
def test_ac_operating_point_equals_runpp(feeders: dict[str, Feeder], name: str) -> None:
    feeder = feeders[name]
    sens = linearise(feeder, mode="ac")
    with feeder.lock():
        net = run_ac(feeder, np.zeros(feeder.n_bus))
        flows = _flows(feeder, net)
        vm = np.asarray(net.res_bus.loc[feeder.bus_indices, "vm_pu"])
    np.testing.assert_allclose(sens.flow_mw, flows, atol=1e-9)
    np.testing.assert_allclose(sens.vm_pu, vm, atol=1e-9)


@pytest.mark.parametrize("mode", ["ac", "dc"])
def test_sparse_and_dense_solves_agree(feeders: dict[str, Feeder], mode: str) -> None:
    feeder = feeders["kerber-dorfnetz"]
    sparse = linearise(feeder, mode=mode, method="sparse")  # type: ignore[arg-type]
    dense = linearise(feeder, mode=mode, method="dense")  # type: ignore[arg-type]
    np.testing.assert_allclose(sparse.dflow_dp, dense.dflow_dp, atol=1e-10)
    np.testing.assert_allclose(sparse.dvm_dp, dense.dvm_dp, atol=1e-10)


def test_injection_at_slack_moves_nothing_but_the_slack(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["cigre-lv"]
    sens = linearise(feeder, mode="ac")
    slack = feeder.position_of(feeder.ext_grid.bus)
    assert np.all(sens.dflow_dp[:, slack] == 0.0)
    assert np.all(sens.dvm_dp[:, slack] == 0.0)
    assert sens.dslack_dp[slack] == -1.0


def test_injection_raises_voltage_along_a_radial_lv_feeder(feeders: dict[str, Feeder]) -> None:
    # physics sanity: injecting at a bus never lowers its own voltage on a radial LV feeder
    feeder = feeders["kerber-dorfnetz"]
    sens = linearise(feeder, mode="ac")
    own = np.diag(sens.dvm_dp)[[b.position for b in feeder.connectable_buses]]
    assert np.all(own >= 0.0)
    assert np.any(own > 0.0)


def test_flow_limits_are_active_power_headroom(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["cigre-lv"]
    sens = linearise(feeder, mode="ac")
    for i, branch in enumerate(feeder.branches):
        s_max = branch.rating_mva * branch.max_loading_percent / 100.0
        assert sens.flow_limit_mw[i] <= s_max + 1e-12


@pytest.mark.parametrize("bad", [np.zeros(3), np.full(44, np.nan)])
def test_bad_injection_vector_is_rejected(feeders: dict[str, Feeder], bad: np.ndarray) -> None:
    with pytest.raises(InjectionShapeError, match="injection_mw"):
        linearise(feeders["cigre-lv"], bad)


def test_a_converged_flow_handed_over_linearises_as_one_solved_afresh(
    feeders: dict[str, Feeder],
) -> None:
    feeder = feeders["kerber-dorfnetz"]
    inj = _perturbation(feeder, 3)
    report = check_schedule(feeder, inj)
    handed = linearise(feeder, inj, mode="ac", flow=report.flow)
    fresh = linearise(feeder, inj, mode="ac")
    for name in ("flow_mw", "vm_pu", "dflow_dp", "dvm_dp", "dslack_dp", "flow_limit_mw"):
        np.testing.assert_array_equal(getattr(handed, name), getattr(fresh, name), err_msg=name)
    # a flow of another injection, or of the same injection on another base, is refused
    with pytest.raises(ValueError, match="flow"):
        linearise(feeder, inj * 0.5, mode="ac", flow=report.flow)
    view = feeder.with_base(feeder.base_p_mw * 1.2, feeder.base_q_mvar, label="test")
    with pytest.raises(ValueError, match="flow"):
        linearise(view, inj, mode="ac", flow=report.flow)
