"""Power flows on a feeder: the fast AC flow the market uses, and pandapower's as reference.

:func:`solve_ac` is the AC power flow of :func:`grid.check_schedule` and
:func:`grid.linearise`: a Newton-Raphson on the feeder's admittance model
(:mod:`grid._newton`), taken once per feeder from pandapower. :func:`run_ac`
and :func:`run_dc` run pandapower's ``runpp``/``rundcpp`` on the working
network; ``run_ac`` is the reference the fast flow is tested against.

numba is not used: pandapower compiles its kernels with ``cache=False`` (about
10 s per process on this project's 2-core machine) and the only ``runpp`` left
on the market's path is the one per feeder that builds the model.

Callers hold ``feeder.lock()`` while they run a flow and read its results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from grid._newton import AcModel, AcSolution, build_model, newton
from grid.errors import PowerFlowError, UnsupportedFeederError
from grid.model import Feeder, FloatArray

__all__ = ["AcFlow", "ac_model", "run_ac", "run_dc", "solve_ac", "specified_injection"]

#: Newton-Raphson iteration limit; distribution feeders converge in 3-6.
MAX_ITERATIONS = 30

_VOLTAGE_DEPENDENT = (
    "const_z_percent",
    "const_i_percent",
    "const_z_p_percent",
    "const_i_p_percent",
    "const_z_q_percent",
    "const_i_q_percent",
)


@dataclass(frozen=True)
class AcFlow:
    """A converged AC power flow, read per feeder bus and branch.

    Per-bus arrays follow ``feeder.buses`` (NaN for a bus outside the flow);
    per-branch arrays follow ``feeder.branches``. Powers in MW/Mvar, flows
    at the from side (HV side of a transformer) and the to side.
    """

    model: AcModel
    solution: AcSolution
    vm_pu: FloatArray
    s_from_mva: npt.NDArray[np.complex128]
    s_to_mva: npt.NDArray[np.complex128]
    loading_percent: FloatArray
    losses_mw: float
    ext_grid_p_mw: float


def run_ac(feeder: Feeder, injection_mw: FloatArray) -> Any:
    """Run pandapower's AC power flow with the market injection set; return the net.

    Raises:
        PowerFlowError: the power flow did not converge (the schedule is
            beyond what the feeder can carry, or the network is ill-posed).
    """
    import pandapower as pp

    net = feeder.working_net(injection_mw)
    try:
        pp.runpp(
            net,
            algorithm="nr",
            init="auto",
            max_iteration=MAX_ITERATIONS,
            calculate_voltage_angles=True,
            numba=False,  # see the module docstring
        )
    except pp.LoadflowNotConverged as exc:
        raise PowerFlowError(
            f"feeder {feeder.name!r}: AC power flow did not converge within "
            f"{MAX_ITERATIONS} iterations for a schedule with "
            f"{float(abs(injection_mw).sum()):.3f} MW of market injection"
        ) from exc
    except Exception as exc:  # pandapower raises numpy/scipy errors for ill-posed networks
        raise PowerFlowError(f"feeder {feeder.name!r}: AC power flow failed: {exc}") from exc
    return net


def run_dc(feeder: Feeder, injection_mw: FloatArray) -> Any:
    """Run pandapower's DC power flow with the market injection set; return the net.

    Raises:
        PowerFlowError: the DC power flow failed (a singular network).
    """
    import pandapower as pp

    net = feeder.working_net(injection_mw)
    try:
        pp.rundcpp(net, numba=False)
    except Exception as exc:  # pandapower raises numpy/scipy errors for singular networks
        raise PowerFlowError(f"feeder {feeder.name!r}: DC power flow failed: {exc}") from exc
    return net


def _feeder_maps(net: Any, feeder: Feeder) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Internal bus per feeder bus position and internal branch row per feeder branch (-1: none)."""
    lookup = np.asarray(net._pd2ppc_lookups["bus"])
    bus_map = np.asarray(lookup[feeder.bus_indices], dtype=np.int64)
    in_service = np.asarray(net._ppc["internal"]["branch_is"], dtype=bool)
    ppci_row = np.cumsum(in_service) - 1
    rows = []
    for table, branches in (("line", feeder.lines), ("trafo", feeder.trafos)):
        if not branches:
            continue
        start, _ = net._pd2ppc_lookups["branch"][table]
        order = {int(idx): i for i, idx in enumerate(net[table].index)}
        for br in branches:
            row = start + order[br.index]
            rows.append(int(ppci_row[row]) if in_service[row] else -1)
    return bus_map, np.array(rows, dtype=np.int64)


def ac_model(feeder: Feeder) -> AcModel:
    """The fast power flow's model of ``feeder``'s topology, built on first use.

    Built from one pandapower ``runpp`` of the network file's own base with
    no market injection; shared by every base-load view. Callers hold
    ``feeder.lock()``.

    Raises:
        PowerFlowError: that power flow does not converge.
        UnsupportedFeederError: voltage-dependent loads or more than one slack bus.
    """
    root = feeder.topology
    cached = root._flow_cache.get("model")
    if cached is not None:
        return cached  # type: ignore[no-any-return]  # stored below as AcModel
    load = root.net.load
    for col in _VOLTAGE_DEPENDENT:
        if col in load.columns and bool((load[col].fillna(0.0) != 0.0).any()):
            raise UnsupportedFeederError(
                f"feeder {root.name!r}: voltage-dependent loads ({col}) are not supported"
            )
    net = run_ac(root, np.zeros(root.n_bus))
    if len(net._ppc["internal"]["ref"]) != 1:
        raise UnsupportedFeederError(f"feeder {root.name!r}: exactly one slack bus is required")
    bus_map, rows = _feeder_maps(net, root)
    lines = net.line.loc[[b.index for b in root.lines]]
    trafos = net.trafo.loc[[b.index for b in root.trafos]]
    model = build_model(
        net,
        feeder_bus_map=bus_map,
        feeder_branch_ppc=rows,
        n_lines=len(root.lines),
        line_i_max_ka=np.asarray(
            lines["max_i_ka"] * lines["df"] * lines["parallel"], dtype=np.float64
        ),
        trafo_cols=(
            np.asarray(trafos["vn_hv_kv"], dtype=np.float64),
            np.asarray(trafos["vn_lv_kv"], dtype=np.float64),
            np.asarray(trafos["sn_mva"] * trafos["parallel"] * trafos["df"], dtype=np.float64),
        ),
    )
    root._flow_cache["model"] = model
    return model


def _shift(feeder: Feeder) -> tuple[FloatArray, FloatArray]:
    zeros = np.zeros(feeder.n_bus)
    p = zeros if feeder._shift_p_mw is None else feeder._shift_p_mw
    q = zeros if feeder._shift_q_mvar is None else feeder._shift_q_mvar
    return p, q


def _start(feeder: Feeder, model: AcModel) -> npt.NDArray[np.complex128]:
    """The converged base case of this view: where every flow on it starts."""
    cached = feeder._flow_cache.get("start")
    if cached is None:
        shift_p, shift_q = _shift(feeder)
        if not (shift_p.any() or shift_q.any()):
            cached = model.v0
        else:
            s_spec = model.injection_pu(shift_p, shift_q)
            cached = newton(model, s_spec, model.v0, label=_label(feeder, "its base case")).v
        feeder._flow_cache["start"] = cached
    return cached


def _label(feeder: Feeder, what: str) -> str:
    return f"feeder {feeder.name!r}{f' ({feeder.base_label})' if feeder.base_label else ''}, {what}"


def specified_injection(
    feeder: Feeder, model: AcModel, injection_mw: FloatArray
) -> npt.NDArray[np.complex128]:
    """The complex injection (p.u.) a flow of ``feeder`` at ``injection_mw`` solves for."""
    shift_p, shift_q = _shift(feeder)
    return model.injection_pu(injection_mw + shift_p, shift_q)


def solve_ac(feeder: Feeder, injection_mw: FloatArray) -> AcFlow:
    """AC power flow of the feeder's base plus ``injection_mw`` (MW per bus, into the grid).

    Equal to pandapower's ``runpp`` of :meth:`Feeder.working_net` (Newton-Raphson,
    voltage angles, no Q limits) to the solver tolerance. Callers hold ``feeder.lock()``.

    Raises:
        PowerFlowError: the power flow did not converge.
        UnsupportedFeederError: see :func:`ac_model`.
    """
    model = ac_model(feeder)
    start = _start(feeder, model)
    s_spec = specified_injection(feeder, model, injection_mw)
    label = _label(
        feeder,
        f"a schedule with {float(np.abs(injection_mw).sum()):.3f} MW of market injection",
    )
    sol = newton(model, s_spec, start, label=label)
    return read_flow(model, sol)


def read_flow(model: AcModel, sol: AcSolution) -> AcFlow:
    """Bus voltages, branch flows and loadings, losses and slack power of ``sol``."""
    v = sol.v
    base = model.base_mva
    vm_int = np.abs(v)
    ok_bus = model.bus_map >= 0
    vm = np.full(len(model.bus_map), np.nan)
    vm[ok_bus] = vm_int[model.bus_map[ok_bus]]
    rows = model.branch_rows
    ok = rows >= 0
    r = rows[ok]
    sf = np.zeros(len(rows), dtype=np.complex128)
    st = np.zeros(len(rows), dtype=np.complex128)
    f, t = model.f_bus[r], model.t_bus[r]
    sf[ok] = v[f] * np.conj((model.yf_branch @ v)[ok]) * base
    st[ok] = v[t] * np.conj((model.yt_branch @ v)[ok]) * base
    loading = np.full(len(rows), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        i_f = np.abs(sf[ok]) / (base * vm_int[f]) * model.i_base_from[ok]
        i_t = np.abs(st[ok]) / (base * vm_int[t]) * model.i_base_to[ok]
        loading[ok] = np.maximum(i_f * model.load_from[ok], i_t * model.load_to[ok])
    s_calc_ref = v[model.ref] * np.conj(model.ybus_ref @ v)
    ext_p = float(np.sum((s_calc_ref - sol.s_spec[model.ref]).real) * base)
    return AcFlow(
        model=model,
        solution=sol,
        vm_pu=vm,
        s_from_mva=sf,
        s_to_mva=st,
        loading_percent=loading,
        losses_mw=float(np.sum(sf.real + st.real)),
        ext_grid_p_mw=ext_p,
    )
