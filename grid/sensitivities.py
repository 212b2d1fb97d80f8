"""Linear sensitivities of branch flows and bus voltages to nodal injections.

Two linearisations, both around an operating point (the feeder's base plus a
market injection vector, in MW, positive into the grid):

``ac``
    Exact first-order sensitivities of the AC power flow. With the Newton
    Jacobian ``J`` of the converged point (unknowns: angles of PV and PQ
    buses, magnitudes of PQ buses), a change of injections ``Δs`` moves the
    state by ``Δx = J⁻¹ Δs`` and any smooth output ``y(x)`` by
    ``(∂y/∂x) J⁻¹ Δs``. The outputs are the from-side active flow of every
    branch, the voltage magnitude of every bus and the slack's injection
    (whose change is minus the injection change plus the marginal losses).
    The Jacobian is the fast power flow's own (:mod:`grid._newton`) at the
    converged point. We solve ``Jᵀ Y = (∂y/∂x)ᵀ`` once with a sparse LU
    factorisation (``method="sparse"``) or a dense solve (``method="dense"``)
    for all outputs at once; ``"auto"`` chooses by size.

``dc``
    The classic lossless DC approximation, built from the same ``Bbus`` and
    ``Bf`` matrices that pandapower's own ``rundcpp`` uses, so flows predicted
    from these sensitivities equal pandapower's DC power flow to numerical
    precision. Voltages are not modelled (all voltage sensitivities are zero).

Units: flows in MW, injections in MW (or Mvar), voltages in per unit; every
sensitivity matrix is "output per MW (or Mvar) injected at a bus". Columns of
buses that the slack holds (the external-grid bus and buses fused to it by
closed switches) are zero.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from grid._newton import jacobian
from grid.errors import PowerFlowError
from grid.model import Feeder, FloatArray
from grid.powerflow import AcFlow, run_dc, solve_ac, specified_injection

__all__ = ["Method", "Mode", "Sensitivities", "linearise"]

logger = logging.getLogger(__name__)

Mode = Literal["ac", "dc"]
Method = Literal["auto", "sparse", "dense"]


@dataclass(frozen=True)
class Sensitivities:
    """Linearised grid at an operating point.

    Arrays over branches follow ``feeder.branches`` (lines, then
    transformers); arrays over buses follow ``feeder.buses``.

    Attributes:
        mode: ``"ac"`` or ``"dc"``.
        injection_mw: market injection per bus at the operating point.
        flow_mw: from-side active flow per branch at the point.
        flow_q_mvar: from-side reactive flow per branch (zeros for ``dc``).
        flow_limit_mw: active-power limit per branch at the point:
            ``√(S_max² − Q²)`` with ``S_max`` the rating times the operator's
            loading limit (for a line, at the from bus's operating voltage);
            ``inf`` for an unlimited branch.
        vm_pu: voltage magnitude per bus at the point (ones for ``dc``).
        slack_p_mw: active power the external grid injects at the point.
        dflow_dp: ``(n_branch, n_bus)`` MW of branch flow per MW injected.
        dflow_dq: ``(n_branch, n_bus)`` MW of branch flow per Mvar injected.
        dvm_dp: ``(n_bus, n_bus)`` p.u. of voltage per MW injected.
        dvm_dq: ``(n_bus, n_bus)`` p.u. of voltage per Mvar injected.
        dslack_dp: ``(n_bus,)`` MW of slack injection per MW injected;
            ``-1`` in ``dc`` (lossless), ``-(1 - marginal loss factor)`` in ``ac``.
    """

    mode: Mode
    injection_mw: FloatArray
    flow_mw: FloatArray
    flow_q_mvar: FloatArray
    flow_limit_mw: FloatArray
    vm_pu: FloatArray
    slack_p_mw: float
    dflow_dp: FloatArray
    dflow_dq: FloatArray
    dvm_dp: FloatArray
    dvm_dq: FloatArray
    dslack_dp: FloatArray

    def predict_flow_mw(self, injection_mw: FloatArray) -> FloatArray:
        """Branch flows predicted for another injection vector."""
        return self.flow_mw + self.dflow_dp @ (injection_mw - self.injection_mw)

    def predict_vm_pu(self, injection_mw: FloatArray) -> FloatArray:
        """Bus voltages predicted for another injection vector."""
        return self.vm_pu + self.dvm_dp @ (injection_mw - self.injection_mw)


def linearise(
    feeder: Feeder,
    injection_mw: npt.ArrayLike | None = None,
    *,
    mode: Mode = "ac",
    method: Method = "auto",
    flow: AcFlow | None = None,
) -> Sensitivities:
    """Linearise the feeder around base load plus ``injection_mw``.

    Args:
        feeder: the feeder.
        injection_mw: market injection per bus (MW, positive into the grid);
            zeros when omitted.
        mode: ``"ac"`` (Jacobian of the AC power flow) or ``"dc"``.
        method: ``"sparse"`` (sparse LU) or ``"dense"`` solve, same result;
            ``"auto"`` picks dense up to :data:`DENSE_MAX_UNKNOWNS` unknowns.
        flow: the AC power flow of this feeder at this injection, already
            converged (``grid.check_schedule(...).flow``), so it is not solved
            again (``ac`` only).

    Raises:
        InjectionShapeError: ``injection_mw`` has the wrong shape.
        PowerFlowError: the power flow at the operating point did not converge.
        ValueError: ``flow`` was solved at another injection or on another base.
    """
    inj = feeder.check_injection(np.zeros(feeder.n_bus) if injection_mw is None else injection_mw)
    if mode == "ac":
        return _linearise_ac(feeder, inj, method, flow)
    if mode == "dc":
        return _linearise_dc(feeder, inj, method)
    raise ValueError(f"mode: expected 'ac' or 'dc', got {mode!r}")


def _bus_map(net: Any, feeder: Feeder) -> npt.NDArray[np.int64]:
    """Internal (ppci) bus index per feeder bus position; -1 when out of service."""
    lookup = np.asarray(net._pd2ppc_lookups["bus"])
    return np.asarray(lookup[feeder.bus_indices], dtype=np.int64)


def _branch_map(net: Any, feeder: Feeder) -> npt.NDArray[np.int64]:
    """Internal (ppci) branch row per feeder branch."""
    ppc = net._ppc
    in_service = np.asarray(ppc["internal"]["branch_is"], dtype=bool)
    ppci_row = np.cumsum(in_service) - 1
    lookups = net._pd2ppc_lookups["branch"]
    rows = []
    for table, branches in (("line", feeder.lines), ("trafo", feeder.trafos)):
        if not branches:
            continue
        start, _ = lookups[table]
        order = {int(idx): i for i, idx in enumerate(net[table].index)}
        for br in branches:
            ppc_row = start + order[br.index]
            if not in_service[ppc_row]:
                raise PowerFlowError(f"{br.label} is in service but isolated from the grid")
            rows.append(int(ppci_row[ppc_row]))
    return np.array(rows, dtype=np.int64)


def _limits(feeder: Feeder, vm_pu_from: FloatArray, q_mvar: FloatArray) -> FloatArray:
    limits = feeder.limits
    s_max = limits.rating_mva * limits.max_loading_percent / 100.0
    s_max = np.where(limits.branch_is_line, s_max * vm_pu_from, s_max)
    with np.errstate(invalid="ignore"):  # inf - q² for an unlimited branch
        headroom = np.sqrt(np.maximum(s_max**2 - q_mvar**2, 0.0))
    return np.where(limits.branch_limited, headroom, math.inf)


#: Below this many unknowns the transposed system is solved densely (LAPACK): SuperLU's
#: solve handles its thousands of dense right-hand sides one at a time, and a dense
#: solve was ~5x faster at 2,700 unknowns (issue 15); above it the dense matrix
#: (8·n² bytes) would cost more memory than it saves time.
DENSE_MAX_UNKNOWNS = 4000


def _solve_transposed(j: sp.csc_matrix, rhs: FloatArray, method: Method) -> FloatArray:
    """Return ``rhs @ J⁻¹`` (rows of outputs, columns of injections)."""
    if method == "auto":
        method = "dense" if j.shape[0] <= DENSE_MAX_UNKNOWNS else "sparse"
    if method == "sparse":
        lu = spla.splu(sp.csc_matrix(j.T))
        return np.asarray(lu.solve(np.ascontiguousarray(rhs.T)), dtype=np.float64).T
    if method == "dense":
        return np.asarray(np.linalg.solve(j.T.toarray(), rhs.T), dtype=np.float64).T
    raise ValueError(f"method: expected 'auto', 'sparse' or 'dense', got {method!r}")


def _ac_output_sensitivities(
    flow: AcFlow, method: Method
) -> tuple[FloatArray, npt.NDArray[np.complex128]]:
    """Rows: branch P flows, PQ voltage magnitudes, slack P; columns: [P_pvpq; Q_pq] in p.u.

    Uses the Newton Jacobian of the converged flow. Also returns ``∂S/∂Va`` rows
    of the slack folded in the last row.
    """
    model, v = flow.model, flow.solution.v
    pv, pq = model.pv, model.pq
    pvpq = np.concatenate([pv, pq])
    j, dva, dvm = jacobian(model, v)
    n = model.ybus.shape[0]
    yf = model.yf_branch
    m = yf.shape[0]
    fb = model.f_bus[model.branch_rows]
    i_f = yf @ v
    vn = v / np.abs(v)
    # pypower's dSbr_dV, from side (Sf = Vf·conj(Yf V)), assembled on Yf's pattern:
    #   ∂Sf/∂Va = j·(conj(If)·Cf·diag(V) − diag(Vf)·conj(Yf·diag(V)))
    #   ∂Sf/∂Vm = diag(Vf)·conj(Yf·diag(Vn)) + conj(If)·Cf·diag(Vn)
    # only the real parts (active flow) are wanted
    r = np.repeat(np.arange(m), np.diff(yf.indptr))
    c, y = yf.indices, yf.data
    vf = v[fb]
    dpf_dva = np.zeros((m, n))
    dpf_dvm = np.zeros((m, n))
    dpf_dva[r, c] = (-1j * vf[r] * np.conj(y * v[c])).real
    dpf_dvm[r, c] = (vf[r] * np.conj(y * vn[c])).real
    diag = np.arange(m)
    dpf_dva[diag, fb] += (1j * np.conj(i_f) * vf).real
    dpf_dvm[diag, fb] += (np.conj(i_f) * vn[fb]).real
    n_x = len(pvpq) + len(pq)
    rhs = np.zeros((m + len(pq) + 1, n_x))
    rhs[:m, : len(pvpq)] = dpf_dva[:, pvpq]
    rhs[:m, len(pvpq) :] = dpf_dvm[:, pq]
    rhs[m + np.arange(len(pq)), len(pvpq) + np.arange(len(pq))] = 1.0
    # the slack's P: the reference rows of ∂S/∂Va and ∂S/∂Vm, summed
    at_ref = model._at_ref
    slack_va = np.bincount(model._cols[at_ref], weights=dva[at_ref].real, minlength=n)
    slack_vm = np.bincount(model._cols[at_ref], weights=dvm[at_ref].real, minlength=n)
    rhs[-1, : len(pvpq)] = slack_va[pvpq]
    rhs[-1, len(pvpq) :] = slack_vm[pq]
    return _solve_transposed(j, rhs, method), vf * np.conj(i_f)


def _linearise_ac(
    feeder: Feeder, inj: FloatArray, method: Method, flow: AcFlow | None
) -> Sensitivities:
    if flow is None:
        with feeder.lock():
            flow = solve_ac(feeder, inj)
    elif not np.array_equal(flow.solution.s_spec, specified_injection(feeder, flow.model, inj)):
        raise ValueError("flow: solved at another injection or base than the one linearised")
    model = flow.model
    if np.any(model.branch_rows < 0):
        br = feeder.branches[int(np.flatnonzero(model.branch_rows < 0)[0])]
        raise PowerFlowError(f"{br.label} is in service but isolated from the grid")
    v = flow.solution.v
    ref, pv, pq = model.ref, model.pv, model.pq
    base_mva = model.base_mva
    bus_map = model.bus_map
    br_map = model.branch_rows
    sens, sf = _ac_output_sensitivities(flow, method)
    ybus = model.ybus
    sbus = v * np.conj(ybus @ v)

    pvpq = np.concatenate([pv, pq])
    n_br = len(br_map)

    n_bus = feeder.n_bus
    col_p = np.full(int(ybus.shape[0]), -1, dtype=np.int64)
    col_p[pvpq] = np.arange(len(pvpq))
    col_q = np.full(int(ybus.shape[0]), -1, dtype=np.int64)
    col_q[pq] = len(pvpq) + np.arange(len(pq))
    row_vm = np.full(int(ybus.shape[0]), -1, dtype=np.int64)
    row_vm[pq] = n_br + np.arange(len(pq))

    valid_bus = bus_map >= 0
    safe_map = np.maximum(bus_map, 0)

    def expand(rows: FloatArray, cols: npt.NDArray[np.int64]) -> FloatArray:
        """Spread output rows over feeder bus positions (zero where no column)."""
        take = valid_bus & (cols[safe_map] >= 0)
        out = np.zeros((rows.shape[0], n_bus))
        out[:, take] = rows[:, cols[safe_map[take]]]
        return out

    def vm_rows(block: FloatArray) -> FloatArray:
        """Pick the voltage rows of ``block`` per feeder bus (zero for slack/PV buses)."""
        take = valid_bus & (row_vm[safe_map] >= 0)
        out = np.zeros((n_bus, n_bus))
        out[take] = block[row_vm[safe_map[take]]]
        return out

    # injections are p.u. of baseMVA: per MW = per p.u. / baseMVA; flows back to MW
    dflow_dp = expand(sens[:n_br], col_p)
    dflow_dq = expand(sens[:n_br], col_q)
    dvm_dp = vm_rows(expand(sens, col_p)) / base_mva
    dvm_dq = vm_rows(expand(sens, col_q)) / base_mva
    # a unit injection at a bus the slack holds is taken by the slack one to one
    held_by_slack = valid_bus & (col_p[safe_map] < 0)
    dslack_dp = np.where(held_by_slack, -1.0, expand(sens[-1:], col_p)[0])

    vm_bus = flow.vm_pu
    from_pos = np.array([feeder.position_of(b.from_bus) for b in feeder.branches], dtype=np.int64)
    flow_q = np.asarray(sf.imag, dtype=np.float64) * base_mva
    return Sensitivities(
        mode="ac",
        injection_mw=inj.copy(),
        flow_mw=np.asarray(sf.real, dtype=np.float64) * base_mva,
        flow_q_mvar=flow_q,
        flow_limit_mw=_limits(feeder, vm_bus[from_pos], flow_q),
        vm_pu=vm_bus,
        slack_p_mw=float(np.sum(sbus[ref].real) * base_mva),
        dflow_dp=dflow_dp,
        dflow_dq=dflow_dq,
        dvm_dp=dvm_dp,
        dvm_dq=dvm_dq,
        dslack_dp=dslack_dp,
    )


def _linearise_dc(feeder: Feeder, inj: FloatArray, method: Method) -> Sensitivities:
    with feeder.lock():
        net = run_dc(feeder, inj)
        internal = net._ppc["internal"]
        bbus = sp.csc_matrix(internal["Bbus"])
        bf = sp.csr_matrix(internal["Bf"])
        ref = np.asarray(internal["ref"], dtype=np.int64)
        base_mva = float(internal["baseMVA"])
        bus_map = _bus_map(net, feeder)
        br_map = _branch_map(net, feeder)
        flow = np.concatenate(
            [
                np.asarray(net.res_line.loc[[b.index for b in feeder.lines], "p_from_mw"]),
                np.asarray(net.res_trafo.loc[[b.index for b in feeder.trafos], "p_hv_mw"]),
            ]
        ).astype(np.float64)
        slack_p = float(net.res_ext_grid["p_mw"].sum())

    n_int = bbus.shape[0]
    non_ref = np.setdiff1d(np.arange(n_int), ref)
    b_red = sp.csc_matrix(bbus[non_ref][:, non_ref])
    # Pf = Bf θ; θ_nonref = B_red⁻¹ P_nonref  ⇒  ∂Pf/∂P = Bf[:, nonref] B_red⁻¹
    bf_rows = sp.csr_matrix(bf[br_map][:, non_ref]).toarray()
    sens = _solve_transposed(b_red, bf_rows, method)
    col = np.full(n_int, -1, dtype=np.int64)
    col[non_ref] = np.arange(len(non_ref))
    n_bus = feeder.n_bus
    safe_map = np.maximum(bus_map, 0)
    take = (bus_map >= 0) & (col[safe_map] >= 0)
    dflow_dp = np.zeros((len(br_map), n_bus))
    dflow_dp[:, take] = sens[:, col[safe_map[take]]]
    del base_mva  # DC flows per MW equal flows per p.u. per p.u.: the base cancels
    zeros_bus = np.zeros((n_bus, n_bus))
    return Sensitivities(
        mode="dc",
        injection_mw=inj.copy(),
        flow_mw=flow,
        flow_q_mvar=np.zeros(len(br_map)),
        flow_limit_mw=_limits(feeder, np.ones(len(br_map)), np.zeros(len(br_map))),
        vm_pu=np.ones(n_bus),
        slack_p_mw=slack_p,
        dflow_dp=dflow_dp,
        dflow_dq=np.zeros_like(dflow_dp),
        dvm_dp=zeros_bus,
        dvm_dq=zeros_bus.copy(),
        dslack_dp=-np.ones(n_bus),
    )
