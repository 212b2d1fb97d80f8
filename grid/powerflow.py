"""Power flows on a feeder's working network, with pandapower's errors mapped to ours.

Callers hold ``feeder.lock()`` while they run a flow and read its results.
"""

from __future__ import annotations

from typing import Any

from grid.errors import PowerFlowError
from grid.model import Feeder, FloatArray

__all__ = ["NUMBA_MIN_BUSES", "run_ac", "run_dc"]

#: Newton-Raphson iteration limit; distribution feeders converge in 3-6.
MAX_ITERATIONS = 30

#: Feeders with at least this many buses run pandapower's numba kernels. pandapower
#: compiles them with ``cache=False``, so every process pays the compilation again
#: (about 10 s on this project's 2-core machine) for about 15 % per flow on feeders
#: of 44-116 buses (cigre-lv, kerber: 0.13 s vs 0.11 s a flow); it pays only on
#: big feeders. Decided by the feeder alone, so a replay computes the same numbers.
NUMBA_MIN_BUSES = 1000


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
            numba=feeder.n_bus >= NUMBA_MIN_BUSES,
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
        pp.rundcpp(net)
    except Exception as exc:  # pandapower raises numpy/scipy errors for singular networks
        raise PowerFlowError(f"feeder {feeder.name!r}: DC power flow failed: {exc}") from exc
    return net
