"""The AC power flow a clearing publishes, and its journal form read back.

The reference is :func:`grid.check_schedule` run afresh on the schedule's
injection: what the engine journals must be that flow (not an earlier
round's, not the base case), and reading it back must give the same
numbers and the same violated limits at any tolerance. Wrong
implementations caught: flows of the wrong schedule, arrays in another order
or truncated, precision lost in the journal, NaN not round-tripped, a limit
rule that differs from check_schedule's (``>=`` for ``>``, the tolerance
not scaled to p.u. for voltage), and a failed clearing publishing the flow
of fills it did not publish.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from grid import AcReport, check_schedule
from market.clearing import ClearingOptions, clear, net_injection_mw
from market.clearing.flows import flows_from_body, flows_to_body
from tests.market.clearing.nets import feeder
from tests.market.clearing.test_nodal import CONFIG, book


def _assert_same(a: AcReport, b: AcReport) -> None:
    for name in ("vm_pu", "line_loading_percent", "trafo_loading_percent", "branch_p_mw"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in (
        "max_line_loading_percent",
        "max_trafo_loading_percent",
        "vm_min_pu",
        "vm_max_pu",
        "losses_mw",
        "ext_grid_p_mw",
    ):
        assert getattr(a, name) == getattr(b, name), name
    assert a.violations == b.violations


@pytest.mark.parametrize("tolerance", [0.0, 0.5, 3.0, 40.0])
@pytest.mark.parametrize("name", ["radial", "meshed"])
def test_a_journaled_flow_reads_back_as_check_schedule_reports_it(
    name: str, tolerance: float
) -> None:
    f = feeder(name)
    rng = np.random.default_rng(11)
    injections = [np.zeros(f.n_bus)]
    injections += [
        np.array([rng.uniform(-0.15, 0.25) if b.connectable else 0.0 for b in f.buses])
        for _ in range(4)
    ]
    broken = 0
    for inj in injections:
        body = json.loads(json.dumps(flows_to_body(check_schedule(f, inj)), allow_nan=False))
        reference = check_schedule(f, inj, tolerance=tolerance)
        _assert_same(flows_from_body(f, body, tolerance=tolerance), reference)
        broken += len(reference.violations)
    if tolerance < 1.0:
        assert broken > 0  # the limit rule was exercised


def test_an_out_of_service_bus_round_trips_as_nan() -> None:
    f = feeder("radial")
    report = check_schedule(f, np.zeros(f.n_bus))
    vm = report.vm_pu.copy()
    vm[-1] = np.nan
    body = flows_to_body(
        AcReport(**{**{k: getattr(report, k) for k in report.__dataclass_fields__}, "vm_pu": vm})
    )
    assert body["vm_pu"][-1] is None
    back = flows_from_body(f, json.loads(json.dumps(body, allow_nan=False)), tolerance=0.0)
    assert np.isnan(back.vm_pu[-1])
    np.testing.assert_array_equal(back.vm_pu[:-1], vm[:-1])


def test_a_body_of_the_wrong_size_is_refused_by_field() -> None:
    f = feeder("radial")
    body = flows_to_body(check_schedule(f, np.zeros(f.n_bus)))
    body["line_loading_percent"] = body["line_loading_percent"][:-1]
    with pytest.raises(ValueError, match=r"flows\.line_loading_percent"):
        flows_from_body(f, body, tolerance=0.0)


def test_a_clearing_publishes_the_flow_of_its_own_fills() -> None:
    f = feeder("radial")
    # a seller behind the weak cable: rounds re-linearise, the final schedule counts
    orders, parts = book([(3, "sell", 60, 100_000), (1, "buy", 100, 250_000)])
    result = clear(f, orders, parts, CONFIG)
    assert result.flows is not None
    reference = check_schedule(f, net_injection_mw(result, f))
    np.testing.assert_allclose(result.flows.vm_pu, reference.vm_pu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        result.flows.line_loading_percent, reference.line_loading_percent, rtol=1e-12
    )
    assert b"flows" not in result.to_json()  # not part of the canonical bytes
    assert type(result).from_json(result.to_json()) == result


def test_a_failed_clearing_publishes_no_flow() -> None:
    f = feeder("radial")
    orders, parts = book([(3, "sell", 120, 50_000), (1, "buy", 200, 290_000)])
    opts = ClearingOptions(constraints="voltage")
    result = clear(f, orders, parts, CONFIG, options=opts, allow_non_optimal=True)
    assert not result.ok
    assert result.flows is None
