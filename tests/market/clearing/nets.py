"""Small pandapower networks for clearing tests: a radial and a meshed LV feeder.

Both hang off a 10/0.4 kV transformer; cable types are chosen so that a few
tens of kW of local trade congest the weakest cable. Pure functions that
return a fresh network; tests wrap them in :class:`grid.Feeder` once.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from grid import Feeder


def _base() -> tuple[Any, list[int]]:
    import pandapower as pp

    net = pp.create_empty_network(name="test")
    hv = pp.create_bus(net, 10.0, name="hv", min_vm_pu=0.9, max_vm_pu=1.1)
    pp.create_ext_grid(net, hv, vm_pu=1.0)
    lv = [pp.create_bus(net, 0.4, name=f"lv{i}", min_vm_pu=0.9, max_vm_pu=1.1) for i in range(5)]
    pp.create_transformer(net, hv, lv[0], "0.25 MVA 10/0.4 kV", max_loading_percent=100.0)
    return net, lv


def radial_net() -> Any:
    """hv ─trafo─ lv0 ─ lv1 ─ lv2 (weak cable), lv0 ─ lv3 ─ lv4."""
    import pandapower as pp

    net, lv = _base()
    pp.create_line(net, lv[0], lv[1], 0.10, "NAYY 4x150 SE", max_loading_percent=100.0)
    pp.create_line(net, lv[1], lv[2], 0.15, "NAYY 4x50 SE", max_loading_percent=100.0)
    pp.create_line(net, lv[0], lv[3], 0.12, "NAYY 4x120 SE", max_loading_percent=100.0)
    pp.create_line(net, lv[3], lv[4], 0.10, "NAYY 4x120 SE", max_loading_percent=100.0)
    for bus, p in ((lv[1], 0.012), (lv[2], 0.008), (lv[3], 0.015), (lv[4], 0.010)):
        pp.create_load(net, bus, p_mw=p, q_mvar=p * 0.2)
    return net


def meshed_net() -> Any:
    """hv ─trafo─ lv0, ring lv0 ─ lv1 ─ lv2 ─ lv3 ─ lv0, spur lv2 ─ lv4 (weak cable)."""
    import pandapower as pp

    net, lv = _base()
    pp.create_line(net, lv[0], lv[1], 0.10, "NAYY 4x150 SE", max_loading_percent=100.0)
    pp.create_line(net, lv[1], lv[2], 0.12, "NAYY 4x120 SE", max_loading_percent=100.0)
    pp.create_line(net, lv[2], lv[3], 0.10, "NAYY 4x120 SE", max_loading_percent=100.0)
    pp.create_line(net, lv[3], lv[0], 0.15, "NAYY 4x150 SE", max_loading_percent=100.0)
    pp.create_line(net, lv[2], lv[4], 0.10, "NAYY 4x50 SE", max_loading_percent=100.0)
    for bus, p in ((lv[1], 0.010), (lv[2], 0.012), (lv[3], 0.008), (lv[4], 0.006)):
        pp.create_load(net, bus, p_mw=p, q_mvar=p * 0.2)
    return net


NETS = {"radial": radial_net, "meshed": meshed_net}


@cache
def feeder(name: str) -> Feeder:
    """The :class:`Feeder` of test network ``name`` (``radial`` or ``meshed``), built once."""
    return Feeder.from_net(NETS[name](), name=name)
