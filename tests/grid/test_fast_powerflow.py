"""The fast AC power flow (grid.powerflow.solve_ac) against pandapower's runpp.

Each test runs both on the same case: the working network with the market
injection set, solved by ``runpp`` (:func:`grid.powerflow.run_ac`), and the
Newton-Raphson on the cached model. A wrong admittance model (a tap, shunt or
fused bus missed), a wrong injection mapping, a wrong slack or loss formula
or a wrong loading rule shows up as a difference beyond 1e-6.
"""

from __future__ import annotations

import numpy as np
import pytest

from grid import (
    BUILTIN_FEEDERS,
    Feeder,
    PowerFlowError,
    _newton,
    check_schedule,
    linearise,
    load_feeder,
)
from grid.powerflow import run_ac, solve_ac

TOL_PU = 1e-6
TOL_MW = 1e-6
TOL_LOADING_PERCENT = 1e-4  # 1e-6 of the rating


def _random_injection(feeder: Feeder, seed: int) -> np.ndarray:
    """A seeded injection at every connectable bus, sized to the feeder's voltage."""
    rng = np.random.default_rng(seed)
    inj = np.zeros(feeder.n_bus)
    for bus in feeder.connectable_buses:
        scale = 0.004 if bus.vn_kv < 1.0 else 0.15
        inj[bus.position] = rng.normal(0.0, scale)
    return inj


def _compare(feeder: Feeder, inj: np.ndarray) -> None:
    with feeder.lock():
        flow = solve_ac(feeder, inj)
        net = run_ac(feeder, inj)
        lines = [b.index for b in feeder.lines]
        trafos = [b.index for b in feeder.trafos]
        vm = net.res_bus.loc[feeder.bus_indices, "vm_pu"].to_numpy()
        va = np.deg2rad(net.res_bus.loc[feeder.bus_indices, "va_degree"].to_numpy())
        p_from = np.r_[net.res_line.loc[lines, "p_from_mw"], net.res_trafo.loc[trafos, "p_hv_mw"]]
        q_from = np.r_[
            net.res_line.loc[lines, "q_from_mvar"], net.res_trafo.loc[trafos, "q_hv_mvar"]
        ]
        p_to = np.r_[net.res_line.loc[lines, "p_to_mw"], net.res_trafo.loc[trafos, "p_lv_mw"]]
        loading = np.r_[
            net.res_line.loc[lines, "loading_percent"],
            net.res_trafo.loc[trafos, "loading_percent"],
        ]
        losses = float(net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum())
        ext_p = float(net.res_ext_grid["p_mw"].sum())
        ext_q = float(net.res_ext_grid["q_mvar"].sum())
    v = flow.solution.v
    fast_va = np.full(feeder.n_bus, np.nan)
    ok = flow.model.bus_map >= 0
    fast_va[ok] = np.angle(v[flow.model.bus_map[ok]])
    np.testing.assert_allclose(flow.vm_pu, vm, atol=TOL_PU)
    np.testing.assert_allclose(fast_va, va, atol=TOL_PU)
    np.testing.assert_allclose(flow.s_from_mva.real, p_from, atol=TOL_MW)
    np.testing.assert_allclose(flow.s_from_mva.imag, q_from, atol=TOL_MW)
    np.testing.assert_allclose(flow.s_to_mva.real, p_to, atol=TOL_MW)
    np.testing.assert_allclose(flow.loading_percent, loading, atol=TOL_LOADING_PERCENT)
    assert flow.losses_mw == pytest.approx(losses, abs=TOL_MW)
    assert flow.ext_grid_p_mw == pytest.approx(ext_p, abs=TOL_MW)
    ref = flow.model.ref
    s_ref = v[ref] * np.conj(flow.model.ybus[ref] @ v) - flow.solution.s_spec[ref]
    assert float(s_ref.imag.sum()) * flow.model.base_mva == pytest.approx(ext_q, abs=TOL_MW)


@pytest.fixture(scope="module")
def every_feeder() -> dict[str, Feeder]:
    return {name: load_feeder(name) for name in BUILTIN_FEEDERS}


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_fast_flow_equals_runpp_on_every_builtin_feeder(
    every_feeder: dict[str, Feeder], seed: int | None
) -> None:
    for feeder in every_feeder.values():
        inj = np.zeros(feeder.n_bus) if seed is None else _random_injection(feeder, seed)
        _compare(feeder, inj)


@pytest.mark.parametrize("dense_max", [0, 10**6], ids=["sparse", "dense"])
def test_sparse_and_dense_newton_steps_both_equal_runpp(
    every_feeder: dict[str, Feeder], dense_max: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each feeder takes one of the two steps by its size; force every feeder through each
    monkeypatch.setattr(_newton, "DENSE_NEWTON_MAX", dense_max)
    for feeder in every_feeder.values():
        _compare(feeder, _random_injection(feeder, 8))


def test_fast_flow_equals_runpp_on_a_base_load_view(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["kerber-dorfnetz"]
    rng = np.random.default_rng(7)
    view = feeder.with_base(
        feeder.base_p_mw * rng.uniform(0.0, 2.0, feeder.n_bus),
        feeder.base_q_mvar * 1.5,
        label="test",
    )
    _compare(view, _random_injection(view, 4))
    # the root's own flow is unchanged after the view's ran (caches are per base)
    _compare(feeder, _random_injection(feeder, 4))


def test_non_convergence_raises_in_both(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["kerber-dorfnetz"]
    inj = np.zeros(feeder.n_bus)
    inj[feeder.connectable_buses[-1].position] = -5.0  # 5 MW on a far 0.4 kV bus
    with feeder.lock():
        with pytest.raises(PowerFlowError, match="did not converge"):
            solve_ac(feeder, inj)
        with pytest.raises(PowerFlowError, match="did not converge"):
            run_ac(feeder, inj)


def test_results_depend_on_the_case_only_not_on_what_ran_before(
    feeders: dict[str, Feeder],
) -> None:
    feeder = feeders["cigre-lv"]
    inj = _random_injection(feeder, 5)
    first = check_schedule(feeder, inj)
    check_schedule(feeder, _random_injection(feeder, 6) * 3.0)
    again = check_schedule(feeder, inj)
    assert first.vm_pu.tobytes() == again.vm_pu.tobytes()
    assert first.branch_p_mw.tobytes() == again.branch_p_mw.tobytes()
    assert first.ext_grid_p_mw == again.ext_grid_p_mw


def test_linearise_matches_finite_differences_of_runpp(feeders: dict[str, Feeder]) -> None:
    feeder = feeders["mv-oberrhein"]
    p0 = _random_injection(feeder, 8)
    sens = linearise(feeder, p0, mode="ac")
    k = feeder.connectable_buses[len(feeder.connectable_buses) // 2].position
    h = 1e-3
    up, down = p0.copy(), p0.copy()
    up[k] += h
    down[k] -= h
    with feeder.lock():
        n_up = run_ac(feeder, up)
        vm_up = n_up.res_bus.loc[feeder.bus_indices, "vm_pu"].to_numpy()
        slack_up = float(n_up.res_ext_grid["p_mw"].sum())
        n_down = run_ac(feeder, down)
        vm_down = n_down.res_bus.loc[feeder.bus_indices, "vm_pu"].to_numpy()
        slack_down = float(n_down.res_ext_grid["p_mw"].sum())
    np.testing.assert_allclose(sens.dvm_dp[:, k], (vm_up - vm_down) / (2 * h), atol=1e-5)
    assert sens.dslack_dp[k] == pytest.approx((slack_up - slack_down) / (2 * h), abs=1e-5)
