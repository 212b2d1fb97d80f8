"""Newton-Raphson AC power flow in polar form on a cached admittance model.

pandapower's ``runpp`` spends about 80 % of its time on bookkeeping (option
set-up, building its internal model, writing result tables). The market runs
the same feeder's power flow many times with only the injections changed, so
the admittance matrices (``Ybus``, ``Yf``, ``Yt``), the bus types and the index
maps are taken ONCE per feeder from pandapower's own internal model after one
``runpp`` (:class:`AcModel`): shunts, transformer taps, switches that fuse buses
and the external grid's voltage set-point are therefore exactly pandapower's.
Each flow then costs a few Newton steps (dense on small feeders, sparse LU on
larger ones: :data:`DENSE_NEWTON_MAX`).

Determinism: a flow on a feeder view starts from the converged base case of
that view (itself solved from pandapower's own solution of the network file's
base), never from whatever ran last, so the numbers depend only on the
feeder, its base and the injection, and a replay computes the same bytes.

Callers hold ``feeder.lock()``; the model is immutable once built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from grid.errors import PowerFlowError
from grid.model import FloatArray

__all__ = ["AcModel", "AcSolution", "jacobian", "newton"]

IntArray = npt.NDArray[np.int64]
ComplexArray = npt.NDArray[np.complex128]

#: Newton-Raphson iteration limit (pandapower's default for ``runpp``).
MAX_ITERATIONS = 30
#: Largest power mismatch (p.u.) accepted as converged: pandapower's ``tolerance_mva``.
TOLERANCE_PU = 1e-8
#: Up to this many unknowns a Newton step is a dense LAPACK solve, which beats
#: building a sparse matrix and SuperLU's set-up on small feeders (a 2-step flow
#: on cigre-lv, 86 unknowns: 0.59 -> 0.44 ms) but not on larger ones
#: (kerber-dorfnetz, 230 unknowns: 0.79 ms sparse, 1.36 ms dense).
DENSE_NEWTON_MAX = 120


@dataclass(frozen=True)
class AcModel:
    """The feeder's internal (ppci) power-flow model, from pandapower.

    Attributes:
        ybus, yf, yt: admittance matrices (CSR), p.u.
        ref, pv, pq: internal bus indices by type.
        s_fixed: complex injection of everything but the slack, p.u., at the
            network file's base with zero market injection.
        v0: pandapower's converged voltages for that case.
        bus_map: internal bus per feeder bus position (-1: not in the flow).
        branch_rows: internal branch row per feeder branch (-1: isolated).
        f_bus, t_bus: internal from/to bus per internal branch.
        c_from, c_to: loading per kA-equivalent (see :func:`loading_percent`).
        n_lines: how many of the feeder's branches are lines (the rest are trafos).
        yf_branch, yt_branch: the rows of ``yf``/``yt`` per feeder branch (an
            isolated branch's row is internal row 0's: masked by ``branch_rows``).
        ybus_ref: the rows of ``ybus`` of the reference buses.
    """

    base_mva: float
    ybus: sp.csr_matrix
    yf: sp.csr_matrix
    yt: sp.csr_matrix
    ref: IntArray
    pv: IntArray
    pq: IntArray
    s_fixed: ComplexArray
    v0: ComplexArray
    bus_map: IntArray
    branch_rows: IntArray
    f_bus: IntArray
    t_bus: IntArray
    i_base_from: FloatArray
    i_base_to: FloatArray
    load_from: FloatArray
    load_to: FloatArray
    n_lines: int
    yf_branch: sp.csr_matrix
    yt_branch: sp.csr_matrix
    ybus_ref: sp.csr_matrix
    # Jacobian assembly, fixed by the sparsity pattern
    _rows: IntArray
    _y_pattern: ComplexArray
    _cols: IntArray
    _diag: npt.NDArray[np.bool_]
    _at_ref: npt.NDArray[np.bool_]
    _j_src: IntArray
    _j_part: IntArray
    _j_shape: tuple[int, int]
    _j_indices: npt.NDArray[np.int32]
    _j_indptr: npt.NDArray[np.int32]
    _j_flat: IntArray

    @property
    def pvpq(self) -> IntArray:
        """PV then PQ buses: the buses whose angle is unknown."""
        return np.concatenate([self.pv, self.pq])

    def injection_pu(self, extra_mw: FloatArray, extra_mvar: FloatArray) -> ComplexArray:
        """Specified injection with ``extra`` MW/Mvar per feeder bus position added."""
        s = self.s_fixed.copy()
        ok = self.bus_map >= 0
        np.add.at(s, self.bus_map[ok], (extra_mw[ok] + 1j * extra_mvar[ok]) / self.base_mva)
        return s


@dataclass(frozen=True)
class AcSolution:
    """A converged AC power flow (internal indices; see :class:`AcModel`)."""

    v: ComplexArray
    s_spec: ComplexArray
    iterations: int


def _pattern(ybus: sp.csr_matrix) -> tuple[IntArray, IntArray, npt.NDArray[np.int64]]:
    """Row/column of every entry of ``ybus``'s pattern with its diagonal made explicit."""
    n = ybus.shape[0]
    coo = ybus.tocoo()
    rows = np.concatenate([coo.row, np.arange(n)]).astype(np.int64)
    cols = np.concatenate([coo.col, np.arange(n)]).astype(np.int64)
    key = np.unique(rows * n + cols)
    return key // n, key % n, key


def _jacobian_layout(
    ybus: sp.csr_matrix, pv: IntArray, pq: IntArray
) -> tuple[IntArray, IntArray, ComplexArray, IntArray, IntArray, sp.csc_matrix]:
    """Where each Jacobian entry comes from on the explicit Ybus pattern.

    Returns the pattern's rows, columns and Ybus values, and per CSC entry of
    the Jacobian its pattern entry and its part (0: ∂P/∂Va, 1: ∂P/∂Vm,
    2: ∂Q/∂Va, 3: ∂Q/∂Vm), with the CSC structure itself.
    """
    n = ybus.shape[0]
    pvpq = np.concatenate([pv, pq])
    prow, pcol, key = _pattern(ybus)
    coo = ybus.tocoo()
    y_pattern = np.zeros(len(key), dtype=np.complex128)
    np.add.at(y_pattern, np.searchsorted(key, coo.row.astype(np.int64) * n + coo.col), coo.data)
    pos_a = np.full(n, -1, dtype=np.int64)
    pos_a[pvpq] = np.arange(len(pvpq))
    pos_m = np.full(n, -1, dtype=np.int64)
    pos_m[pq] = np.arange(len(pq))
    src, part, jr, jc = [], [], [], []
    # part 0: dS/dVa real, 1: dS/dVm real, 2: dS/dVa imag, 3: dS/dVm imag
    for p, rmap, cmap, roff, coff in (
        (0, pos_a, pos_a, 0, 0),
        (1, pos_a, pos_m, 0, len(pvpq)),
        (2, pos_m, pos_a, len(pvpq), 0),
        (3, pos_m, pos_m, len(pvpq), len(pvpq)),
    ):
        k = np.flatnonzero((rmap[prow] >= 0) & (cmap[pcol] >= 0))
        src.append(k)
        part.append(np.full(len(k), p, dtype=np.int64))
        jr.append(rmap[prow[k]] + roff)
        jc.append(cmap[pcol[k]] + coff)
    n_x = len(pvpq) + len(pq)
    j_src, j_part = np.concatenate(src), np.concatenate(part)
    probe = sp.csc_matrix(
        (np.arange(len(j_src), dtype=np.float64) + 1.0, (np.concatenate(jr), np.concatenate(jc))),
        shape=(n_x, n_x),
    )
    order = (probe.data - 1.0).astype(np.int64)
    return prow, pcol, y_pattern, j_src[order], j_part[order], probe


def build_model(
    net: Any,
    *,
    feeder_bus_map: IntArray,
    feeder_branch_ppc: IntArray,
    n_lines: int,
    line_i_max_ka: FloatArray,
    trafo_cols: tuple[FloatArray, FloatArray, FloatArray],
) -> AcModel:
    """The model of a network on which ``runpp`` has just converged.

    Args:
        net: the pandapower network (its ``_ppc`` is read).
        feeder_bus_map: internal bus per feeder bus position (-1 if none).
        feeder_branch_ppc: internal branch row per feeder branch (-1 if isolated).
        n_lines: number of lines among the feeder's branches.
        line_i_max_ka: thermal limit per feeder line (``max_i_ka·df·parallel``).
        trafo_cols: ``(vn_hv_kv, vn_lv_kv, sn_mva·parallel·df)`` per feeder trafo.
    """
    from pandapower.pypower.idx_brch import F_BUS, T_BUS
    from pandapower.pypower.idx_bus import BASE_KV, PD, QD
    from pandapower.pypower.idx_gen import GEN_BUS, GEN_STATUS, PG

    internal = net._ppc["internal"]
    base = float(internal["baseMVA"])
    ybus = sp.csr_matrix(internal["Ybus"])
    bus = internal["bus"]
    gen = internal["gen"]
    ref = np.asarray(internal["ref"], dtype=np.int64)
    pv = np.asarray(internal["pv"], dtype=np.int64)
    pq = np.asarray(internal["pq"], dtype=np.int64)
    s_fixed = -(bus[:, PD] + 1j * bus[:, QD]).astype(np.complex128) / base
    on = gen[:, GEN_STATUS] > 0
    gen_bus = gen[:, GEN_BUS].real.astype(np.int64)
    other = on & ~np.isin(gen_bus, ref)
    np.add.at(s_fixed, gen_bus[other], gen[other, PG].real / base)
    branch = internal["branch"]
    f_bus = branch[:, F_BUS].real.astype(np.int64)
    t_bus = branch[:, T_BUS].real.astype(np.int64)
    base_kv = bus[:, BASE_KV].real
    rows = np.maximum(feeder_branch_ppc, 0)
    kv_f, kv_t = base_kv[f_bus[rows]], base_kv[t_bus[rows]]
    # loading % = max(|S_f|/(vm_f·kv_f·√3) / i_ref_f, same at to) · 100 (pandapower's rule)
    n_tr = len(feeder_branch_ppc) - n_lines
    vn_hv, vn_lv, sn = trafo_cols
    load_from = np.empty(len(feeder_branch_ppc))
    load_to = np.empty(len(feeder_branch_ppc))
    with np.errstate(divide="ignore"):
        load_from[:n_lines] = 100.0 / line_i_max_ka
        load_to[:n_lines] = 100.0 / line_i_max_ka
        load_from[n_lines:] = vn_hv * np.sqrt(3.0) * 100.0 / sn if n_tr else 0.0
        load_to[n_lines:] = vn_lv * np.sqrt(3.0) * 100.0 / sn if n_tr else 0.0

    prow, pcol, y_pattern, j_src, j_part, probe = _jacobian_layout(ybus, pv, pq)
    yf, yt = sp.csr_matrix(internal["Yf"]), sp.csr_matrix(internal["Yt"])
    yf_branch, yt_branch = sp.csr_matrix(yf[rows]), sp.csr_matrix(yt[rows])
    yf_branch.sum_duplicates()
    return AcModel(
        base_mva=base,
        ybus=ybus,
        yf=yf,
        yt=yt,
        ref=ref,
        pv=pv,
        pq=pq,
        s_fixed=s_fixed,
        v0=np.array(internal["V"], dtype=np.complex128),
        bus_map=feeder_bus_map,
        branch_rows=feeder_branch_ppc,
        f_bus=f_bus,
        t_bus=t_bus,
        i_base_from=base / (kv_f * np.sqrt(3.0)),
        i_base_to=base / (kv_t * np.sqrt(3.0)),
        load_from=load_from,
        load_to=load_to,
        n_lines=n_lines,
        yf_branch=yf_branch,
        yt_branch=yt_branch,
        ybus_ref=sp.csr_matrix(ybus[ref]),
        _rows=prow,
        _y_pattern=y_pattern,
        _cols=pcol,
        _diag=prow == pcol,
        _at_ref=np.isin(prow, ref),
        _j_src=j_src,
        _j_part=j_part,
        _j_shape=probe.shape,
        _j_indices=probe.indices,
        _j_indptr=probe.indptr,
        _j_flat=probe.indices.astype(np.int64) * probe.shape[1]
        + np.repeat(np.arange(probe.shape[1]), np.diff(probe.indptr)),
    )


def _ds_dv(model: AcModel, v: ComplexArray) -> tuple[ComplexArray, ComplexArray, ComplexArray]:
    """``∂S/∂Va`` and ``∂S/∂Vm`` on the Ybus pattern (data arrays), and ``S = V·conj(Ybus V)``."""
    y = model.ybus
    i_bus = y @ v
    yv = model._y_pattern
    vr, vc = v[model._rows], v[model._cols]
    vn_c = vc / np.abs(vc)
    d = model._diag
    ir = i_bus[model._rows]
    # dS/dVa = j·diag(V)·conj(diag(I) − Ybus·diag(V))
    # dS/dVm = diag(V)·conj(Ybus·diag(Vn)) + conj(diag(I))·diag(Vn)
    dva = 1j * vr * np.conj(np.where(d, ir, 0.0) - yv * vc)
    dvm = vr * np.conj(yv * vn_c) + np.where(d, np.conj(ir) * vn_c, 0.0)
    return dva, dvm, v * np.conj(i_bus)


def _jacobian_data(
    model: AcModel, v: ComplexArray
) -> tuple[FloatArray, ComplexArray, ComplexArray]:
    """The Jacobian's CSC data at ``v``, with ``∂S/∂Va``/``∂S/∂Vm`` on the Ybus pattern."""
    dva, dvm, _ = _ds_dv(model, v)
    parts = (dva.real, dvm.real, dva.imag, dvm.imag)
    data = np.empty(len(model._j_src))
    for p in range(4):
        sel = model._j_part == p
        data[sel] = parts[p][model._j_src[sel]]
    return data, dva, dvm


def jacobian(model: AcModel, v: ComplexArray) -> tuple[sp.csc_matrix, ComplexArray, ComplexArray]:
    """Newton Jacobian at ``v`` (unknowns ``[Va_pvpq; Vm_pq]``), with ``∂S/∂Va``/``∂S/∂Vm`` data."""
    data, dva, dvm = _jacobian_data(model, v)
    j = sp.csc_matrix((data, model._j_indices, model._j_indptr), shape=model._j_shape)
    return j, dva, dvm


def _newton_step(model: AcModel, v: ComplexArray, f: FloatArray) -> FloatArray:
    """``J(v)⁻¹ f``: dense LAPACK up to :data:`DENSE_NEWTON_MAX` unknowns, else sparse LU.

    Raises:
        np.linalg.LinAlgError, RuntimeError: the Jacobian is singular.
    """
    n_x = model._j_shape[0]
    if n_x <= DENSE_NEWTON_MAX:
        data, _, _ = _jacobian_data(model, v)
        dense = np.zeros(n_x * n_x)
        dense[model._j_flat] = data
        return np.asarray(np.linalg.solve(dense.reshape(n_x, n_x), f), dtype=np.float64)
    j, _, _ = jacobian(model, v)
    return np.asarray(spla.spsolve(j, f), dtype=np.float64)


def newton(
    model: AcModel, s_spec: ComplexArray, v_start: ComplexArray, *, label: str
) -> AcSolution:
    """Solve ``V·conj(Ybus V) = s_spec`` at PV/PQ buses from ``v_start``.

    Raises:
        PowerFlowError: no convergence within :data:`MAX_ITERATIONS` (or a
            singular Jacobian / non-finite state on the way).
    """
    pv, pq, pvpq = model.pv, model.pq, model.pvpq
    n_a = len(pvpq)
    v = v_start.copy()
    va, vm = np.angle(v), np.abs(v)
    for it in range(MAX_ITERATIONS + 1):
        mis = v * np.conj(model.ybus @ v) - s_spec
        f = np.concatenate([mis[pvpq].real, mis[pq].imag])
        if not np.all(np.isfinite(f)):
            break
        if np.max(np.abs(f), initial=0.0) < TOLERANCE_PU:
            return AcSolution(v=v, s_spec=s_spec, iterations=it)
        if it == MAX_ITERATIONS:
            break
        with np.errstate(all="ignore"):
            try:
                dx = _newton_step(model, v, f)
            except (RuntimeError, np.linalg.LinAlgError):  # singular factor
                break
        va[pvpq] -= dx[:n_a]
        vm[pq] -= dx[n_a:]
        v = vm * np.exp(1j * va)
    del pv
    raise PowerFlowError(
        f"{label}: AC power flow did not converge within {MAX_ITERATIONS} iterations"
    )
