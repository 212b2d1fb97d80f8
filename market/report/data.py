"""The tables behind an operator report, and their parquet files.

In ``intervals``, ``price_min``/``price_mean``/``price_max`` are over the
locational prices of the buses where participants may connect (an
unweighted mean); the report summary's "mean local price" is instead what
buyers paid per kWh, weighted by volume. The ``max_*``/``vm_*`` columns are the clearing's AC check
of the cleared schedule; the ``delivered_*`` columns are an AC power flow of
what the meters measured (each participant's net export over the interval
as a constant injection at its bus), i.e. what the grid actually carried.

A report is built from one :class:`ReportData`: polars tables with fixed
columns (below), written as ``<name>.parquet`` in the report folder. ``gridex
demo`` fills them as it runs; ``gridex report`` rebuilds them from an engine
journal. Energy is integer Wh, money integer token base units, prices base
units per kWh, times Unix seconds (``start_s``) or milliseconds.

==============  ==============================================================
table           columns
==============  ==============================================================
intervals       interval, start_s, local_wh, import_wh, export_wh, losses_wh,
                price_min, price_mean, price_max, max_line_loading_percent,
                max_trafo_loading_percent, vm_min_pu, vm_max_pu, rounds,
                ac_passed, uniform_violations, operator_surplus,
                settled_volume, gas_used, delivered_max_line_loading_percent,
                delivered_max_trafo_loading_percent, delivered_vm_min_pu,
                delivered_vm_max_pu, delivered_violations
orders          interval, participant, order_id, side, bus, quantity_wh,
                limit_price
fills           interval, participant, order_id, side, bus, filled_wh, price,
                amount
prices          interval, bus, price, energy, loss, congestion, voltage
readings        meter_id, participant, seq, timestamp_ms, energy_import_wh,
                energy_export_wh, power_w
metered         interval, participant, import_wh, export_wh, production_wh
                (production_wh is -1 where the meter reports none)
settlements     interval, account, delta, fee, tx_hash
balances        interval, account, balance (the account's escrow change
                summed over the settled intervals so far: deposits and
                withdrawals are not in the journal)
counterfactual  interval, then per mechanism m in (uniform, nodal): m_sold_wh,
                m_bought_wh, m_local_wh, m_price_min, m_price_max,
                m_converged, m_buses_over, m_lines_over, m_trafos_over,
                m_vm_min_pu, m_vm_max_pu, m_max_line_loading_percent,
                m_max_trafo_loading_percent, m_worst_voltage_pu (how far the
                worst bus is outside its band, 0 if none),
                m_worst_overload_percent (loading above the limit, 0 if none);
                and curtailed_wh (sell energy uniform fills and nodal does
                not), deferred_wh (the same for buy energy),
                congestion_rent, voltage_rent (Σ over nodal fills of the
                price part times the energy withdrawn, base units)
grid_state      interval, mechanism, kind (bus, line, trafo), element
                (pandapower index), value (vm_pu of a bus, loading_percent
                of a branch), price (a bus's price, 0 for a branch): the AC
                power flow of each mechanism's schedule
==============  ==============================================================

The ``counterfactual`` and ``grid_state`` tables clear every interval's book
again with ``uniform`` (copper plate) and run both schedules through an AC
power flow at the interval's journaled base; a limit counts as broken when
missed by more than the clearing's AC tolerance (``ClearingOptions.ac_tolerance``,
0.5 percentage points of loading, 0.005 p.u.), the same yardstick for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import polars as pl

__all__ = ["SCHEMAS", "ReportData"]

_I = pl.Int64
_F = pl.Float64
_S = pl.String
_B = pl.Boolean

#: Column names and types of every report table.
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "intervals": {
        "interval": _I(),
        "start_s": _I(),
        "local_wh": _I(),
        "import_wh": _I(),
        "export_wh": _I(),
        "losses_wh": _I(),
        "price_min": _I(),
        "price_mean": _F(),
        "price_max": _I(),
        "max_line_loading_percent": _F(),
        "max_trafo_loading_percent": _F(),
        "vm_min_pu": _F(),
        "vm_max_pu": _F(),
        "rounds": _I(),
        "ac_passed": _B(),
        "uniform_violations": _I(),
        "operator_surplus": _I(),
        "settled_volume": _I(),
        "gas_used": _I(),
        "delivered_max_line_loading_percent": _F(),
        "delivered_max_trafo_loading_percent": _F(),
        "delivered_vm_min_pu": _F(),
        "delivered_vm_max_pu": _F(),
        "delivered_violations": _I(),
    },
    "orders": {
        "interval": _I(),
        "participant": _S(),
        "order_id": _S(),
        "side": _S(),
        "bus": _I(),
        "quantity_wh": _I(),
        "limit_price": _I(),
    },
    "fills": {
        "interval": _I(),
        "participant": _S(),
        "order_id": _S(),
        "side": _S(),
        "bus": _I(),
        "filled_wh": _I(),
        "price": _I(),
        "amount": _I(),
    },
    "prices": {
        "interval": _I(),
        "bus": _I(),
        "price": _I(),
        "energy": _I(),
        "loss": _I(),
        "congestion": _I(),
        "voltage": _I(),
    },
    "readings": {
        "meter_id": _S(),
        "participant": _S(),
        "seq": _I(),
        "timestamp_ms": _I(),
        "energy_import_wh": _I(),
        "energy_export_wh": _I(),
        "power_w": _I(),
    },
    "metered": {
        "interval": _I(),
        "participant": _S(),
        "import_wh": _I(),
        "export_wh": _I(),
        "production_wh": _I(),
    },
    "settlements": {
        "interval": _I(),
        "account": _S(),
        "delta": _I(),
        "fee": _I(),
        "tx_hash": _S(),
    },
    "balances": {"interval": _I(), "account": _S(), "balance": _I()},
    "counterfactual": {
        "interval": _I(),
        **{
            f"{m}_{name}": kind
            for m in ("uniform", "nodal")
            for name, kind in (
                ("sold_wh", _I()),
                ("bought_wh", _I()),
                ("local_wh", _I()),
                ("price_min", _I()),
                ("price_max", _I()),
                ("converged", _B()),
                ("buses_over", _I()),
                ("lines_over", _I()),
                ("trafos_over", _I()),
                ("vm_min_pu", _F()),
                ("vm_max_pu", _F()),
                ("max_line_loading_percent", _F()),
                ("max_trafo_loading_percent", _F()),
                ("worst_voltage_pu", _F()),
                ("worst_overload_percent", _F()),
            )
        },
        "curtailed_wh": _I(),
        "deferred_wh": _I(),
        "congestion_rent": _I(),
        "voltage_rent": _I(),
    },
    "grid_state": {
        "interval": _I(),
        "mechanism": _S(),
        "kind": _S(),
        "element": _I(),
        "value": _F(),
        "price": _I(),
    },
}


def _empty(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[name])


@dataclass(frozen=True)
class ReportData:
    """All tables of one report (see the module docstring for the columns).

    Construction checks every table against :data:`SCHEMAS` and casts
    integer-compatible columns, so a report always has the same layout.
    """

    intervals: pl.DataFrame
    orders: pl.DataFrame
    fills: pl.DataFrame
    prices: pl.DataFrame
    readings: pl.DataFrame
    metered: pl.DataFrame
    settlements: pl.DataFrame
    balances: pl.DataFrame
    counterfactual: pl.DataFrame = field(default_factory=lambda: _empty("counterfactual"))
    grid_state: pl.DataFrame = field(default_factory=lambda: _empty("grid_state"))

    def __post_init__(self) -> None:
        for f in fields(self):
            frame: pl.DataFrame = getattr(self, f.name)
            schema = SCHEMAS[f.name]
            missing = [c for c in schema if c not in frame.columns]
            if missing:
                raise ValueError(f"report table {f.name!r}: missing columns {missing}")
            object.__setattr__(
                self,
                f.name,
                frame.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()]),
            )

    @classmethod
    def from_rows(cls, **rows: list[dict[str, object]]) -> ReportData:
        """Build from lists of row dicts, one keyword per table (missing tables empty)."""
        unknown = set(rows) - set(SCHEMAS)
        if unknown:
            raise ValueError(f"unknown report tables: {sorted(unknown)}")
        frames = {
            name: pl.DataFrame(rows[name], schema=SCHEMAS[name], orient="row")
            if rows.get(name)
            else _empty(name)
            for name in SCHEMAS
        }
        return cls(**frames)

    def write(self, folder: Path) -> list[Path]:
        """Write every table as ``folder/<name>.parquet``; return the paths."""
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name in SCHEMAS:
            path = folder / f"{name}.parquet"
            getattr(self, name).write_parquet(path)
            out.append(path)
        return out

    @classmethod
    def read(cls, folder: Path) -> ReportData:
        """Read the tables written by :meth:`write`."""
        return cls(
            **{
                name: pl.read_parquet(folder / f"{name}.parquet")
                for name in SCHEMAS
                if (folder / f"{name}.parquet").exists()
                or name not in ("counterfactual", "grid_state")
            }
        )
