"""Finite-difference checks of the ``ac`` sensitivities at a loaded operating point.

Central differences of pandapower's power flow (through
:func:`grid.check_schedule`) with a step of ``H_MW`` have an error of order
``H_MW²``, so the analytic sensitivities must match them tightly:

* ``dslack_dp`` (minus one plus the marginal loss factor) to ``1e-4`` of
  the loss factor plus ``1e-6``: a lossless ``-1`` everywhere fails, because
  every feeder has buses whose marginal loss factor is far above that;
* ``dvm_dp`` to ``1e-3`` relative plus ``1e-7`` p.u. per MW;
* ``dflow_dp`` to ``1e-3`` relative plus ``1e-5`` MW per MW.

The operating point is not zero: each feeder is linearised around a market
injection (a few kW per LV bus, tens of kW per MV bus), as the clearing
rounds do.
"""

from __future__ import annotations

import numpy as np
import pytest

from grid import Feeder, check_schedule, linearise

from .conftest import ACCURACY_FEEDERS

H_MW = 1e-4


def _point(feeder: Feeder) -> np.ndarray:
    rng = np.random.default_rng(7)
    scale = np.array([0.004 if b.vn_kv < 1.0 else 0.05 for b in feeder.buses])
    mask = np.array([b.connectable for b in feeder.buses])
    return np.where(mask, rng.uniform(-1.0, 1.0, feeder.n_bus) * scale, 0.0)


def _far_buses(feeder: Feeder, n: int = 4) -> list[int]:
    """The connectable buses with the largest and smallest voltage sensitivity (spread out)."""
    pos = [b.position for b in feeder.buses if b.connectable]
    return [pos[i] for i in np.linspace(0, len(pos) - 1, n).astype(int)]


@pytest.mark.parametrize("name", ACCURACY_FEEDERS)
def test_ac_sensitivities_match_central_differences(feeders: dict[str, Feeder], name: str) -> None:
    feeder = feeders[name]
    p0 = _point(feeder)
    sens = linearise(feeder, p0, mode="ac")
    loss_factors = []
    for k in _far_buses(feeder):
        e = np.zeros(feeder.n_bus)
        e[k] = H_MW
        up, down = check_schedule(feeder, p0 + e), check_schedule(feeder, p0 - e)
        d_slack = (up.ext_grid_p_mw - down.ext_grid_p_mw) / (2 * H_MW)
        d_vm = (up.vm_pu - down.vm_pu) / (2 * H_MW)
        d_flow = (up.branch_p_mw - down.branch_p_mw) / (2 * H_MW)
        loss_factor = 1.0 + d_slack
        loss_factors.append(abs(loss_factor))
        assert abs(sens.dslack_dp[k] - d_slack) <= 1e-4 * abs(loss_factor) + 1e-6, k
        ok = np.isfinite(d_vm) & sens.dvm_dp.any(axis=1)
        np.testing.assert_allclose(sens.dvm_dp[ok, k], d_vm[ok], rtol=1e-3, atol=1e-7)
        np.testing.assert_allclose(sens.dflow_dp[:, k], d_flow, rtol=1e-3, atol=1e-5)
    # the check has teeth: a lossless model (loss factor 0) is off by far more
    # than the tolerance at some bus
    assert max(loss_factors) > 1e-2


def test_linearising_at_the_point_predicts_that_point_exactly(
    feeders: dict[str, Feeder],
) -> None:
    """At its own operating point the linearisation reproduces the AC power flow."""
    feeder = feeders["cigre-lv"]
    p0 = _point(feeder)
    sens = linearise(feeder, p0, mode="ac")
    ac = check_schedule(feeder, p0)
    np.testing.assert_allclose(sens.flow_mw, ac.branch_p_mw, atol=1e-9)
    np.testing.assert_allclose(sens.vm_pu, ac.vm_pu, atol=1e-9)
    # both converge to 1e-8 MVA: the slack agrees to that order (0.03 Wh per 15 min)
    assert sens.slack_p_mw == pytest.approx(ac.ext_grid_p_mw, abs=1e-7)
