"""Loading feeders by built-in name or from a pandapower JSON file."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grid._net_cache import cached_net
from grid.errors import FeederFileError, FeederNotFoundError
from grid.model import Feeder

__all__ = ["BUILTIN_FEEDERS", "builtin_net", "load_feeder"]

logger = logging.getLogger(__name__)


def _cigre_lv() -> Any:
    import pandapower.networks as pn

    return pn.create_cigre_network_lv()


def _cigre_mv() -> Any:
    import pandapower.networks as pn

    return pn.create_cigre_network_mv()


def _kerber_dorfnetz() -> Any:
    import random

    import pandapower.networks as pn

    # pandapower draws the branch-out cable types from the global `random`
    # module; seed it so the feeder is the same in every process, and put the
    # caller's random state back afterwards.
    state = random.getstate()
    try:
        random.seed(2016)
        return pn.create_kerber_dorfnetz()
    finally:
        random.setstate(state)


def _kerber_extrem_dorfnetz() -> Any:
    import random

    import pandapower.networks as pn

    # seeded like the Dorfnetz: the branch-out cable types come from `random`
    state = random.getstate()
    try:
        random.seed(2016)
        return pn.kb_extrem_dorfnetz()
    finally:
        random.setstate(state)


def _case33bw() -> Any:
    import pandapower.networks as pn

    return pn.case33bw()


def _mv_oberrhein() -> Any:
    import pandapower.networks as pn

    # the larger of the two substations' feeders, each with its own external grid
    return pn.mv_oberrhein(separation_by_sub=True)[1]


#: Built-in feeders: name → (description, factory).
BUILTIN_FEEDERS: dict[str, tuple[str, Callable[[], Any]]] = {
    "cigre-lv": ("CIGRE European LV benchmark (0.4 kV, 44 buses, meshed by switches)", _cigre_lv),
    "cigre-mv": ("CIGRE European MV benchmark (20 kV, 15 buses)", _cigre_mv),
    "kerber-dorfnetz": ("Kerber village LV feeder (0.4 kV, 116 buses, radial)", _kerber_dorfnetz),
    "kerber-extrem-dorfnetz": (
        "Kerber's extreme village LV feeder (0.4 kV, 118 buses, long radial cables)",
        _kerber_extrem_dorfnetz,
    ),
    "case33bw": ("Baran & Wu 33-bus MV feeder (12.66 kV, radial)", _case33bw),
    "mv-oberrhein": ("Oberrhein MV feeder, one substation (20 kV, 109 buses)", _mv_oberrhein),
}


def builtin_net(name: str) -> Any:
    """A fresh pandapower network for built-in feeder ``name``, built now.

    :func:`load_feeder` reads the same network from the disk cache
    (:mod:`grid._net_cache`) once it has been built on this machine.

    Raises:
        FeederNotFoundError: ``name`` is not a built-in feeder.
    """
    try:
        _, factory = BUILTIN_FEEDERS[name]
    except KeyError:
        raise FeederNotFoundError(_unknown(name)) from None
    return factory()


def load_feeder(name_or_path: str | Path) -> Feeder:
    """Load a feeder by built-in name or from a pandapower JSON file.

    Args:
        name_or_path: one of :data:`BUILTIN_FEEDERS` (built on first use and
            then read from the disk cache, :mod:`grid._net_cache`), or the path
            of a file written by ``pandapower.to_json``.

    Raises:
        FeederNotFoundError: neither a built-in name nor an existing file.
        FeederFileError: the file exists but is not a pandapower network.
        UnsupportedFeederError: the network has elements the market cannot model.
    """
    key = str(name_or_path)
    if key in BUILTIN_FEEDERS:
        net = cached_net(key, lambda: builtin_net(key))
        return Feeder.from_net(net, name=key)
    path = Path(key)
    if not path.is_file():
        raise FeederNotFoundError(_unknown(key))
    import pandapower as pp

    try:
        net = pp.from_json(str(path))
    except Exception as exc:  # pandapower raises many unrelated types for a bad file
        raise FeederFileError(
            f"{path}: not a pandapower network JSON file ({type(exc).__name__}: {exc}); "
            "write one with pandapower.to_json(net, path)"
        ) from exc
    if not hasattr(net, "bus") or not hasattr(net, "ext_grid"):
        raise FeederFileError(f"{path}: JSON does not describe a pandapower network")
    logger.info("loaded feeder %s with %d buses", path, len(net.bus))
    return Feeder.from_net(net, name=path.stem)


def _unknown(name: str) -> str:
    names = ", ".join(sorted(BUILTIN_FEEDERS))
    return (
        f"unknown feeder {name!r}: expected a built-in name ({names}) "
        "or the path of a pandapower JSON file"
    )
