"""Market clearing under grid constraints.

Typical use::

    from market.clearing import clear, ClearingOptions

    result = clear(feeder, orders, participants, config, mechanism="nodal",
                   options=ClearingOptions(sensitivities="ac"))
    result.fills, result.prices, result.trades, result.payments
    digest_input = result.to_json()          # canonical bytes

Mechanisms: :mod:`market.clearing.uniform` (copper plate, one price) and
:mod:`market.clearing.nodal` (grid limits, locational prices). Both solve a
linear programme (:mod:`market.clearing._problem`) with HiGHS, either built
directly as sparse arrays (``solver="fast"``) or through the readable pyomo
reference model (``solver="pyomo"``). The rounding of the LP's floats into
integer Wh and base units is :mod:`market.clearing.books`; the bilateral
trades are :mod:`market.clearing.attribution`.
"""

from market.clearing._clear import clear
from market.clearing.options import ALL_CONSTRAINTS, ClearingOptions, Mechanism, SolverName
from market.clearing.result import (
    GRID,
    AcCheck,
    BusPrice,
    ClearingResult,
    Fill,
    Payment,
    SolverStats,
    Trade,
    net_injection_mw,
)
from market.clearing.status import SolutionStatus, Status, Termination

__all__ = [
    "ALL_CONSTRAINTS",
    "GRID",
    "AcCheck",
    "BusPrice",
    "ClearingOptions",
    "ClearingResult",
    "Fill",
    "Mechanism",
    "Payment",
    "SolutionStatus",
    "SolverName",
    "SolverStats",
    "Status",
    "Termination",
    "Trade",
    "clear",
    "net_injection_mw",
]
