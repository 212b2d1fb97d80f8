"""Files of the operator's offline job (``gridex clear``): orders in, results out.

Formats are documented in ``docs/clearing.md``. Reading checks every cell
and raises :class:`~market.errors.InputFileError` naming the row (1-based,
data rows; the header is line 1, so data row N is line N+1 of a CSV) and the
column; polars' and pyarrow's own exceptions never leave this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from market.clearing.result import ClearingResult
from market.errors import InputFileError
from market.orders import Order, Participant, Side, normalise_address

__all__ = [
    "REQUIRED_COLUMNS",
    "OrderFile",
    "read_orders",
    "summary_of",
    "write_results",
]

#: Columns every orders file must have.
REQUIRED_COLUMNS = ("order_id", "participant", "bus", "side", "quantity_wh", "limit_price")
#: Columns an orders file may add.
OPTIONAL_COLUMNS = ("interval",)


@dataclass(frozen=True)
class OrderFile:
    """The orders of a file, grouped by interval, and the participants they imply.

    Attributes:
        intervals: interval id → its orders in file order, ascending by id.
        participants: address → participant (its bus from the file).
    """

    intervals: dict[int, list[Order]]
    participants: dict[str, Participant]

    @property
    def n_orders(self) -> int:
        """Number of orders in the file."""
        return sum(len(v) for v in self.intervals.values())


def _frame(path: Path) -> Any:
    import polars as pl

    if not path.is_file():
        raise InputFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
            return frame.with_columns(pl.all().cast(pl.Utf8))
        if suffix in (".csv", ".txt"):
            return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except Exception as exc:  # polars/pyarrow raise many types for a bad file
        raise InputFileError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc
    raise InputFileError(f"{path}: expected a .csv or .parquet file, got {suffix or 'no suffix'!r}")


def _int(value: str | None, *, where: str, positive: bool = False) -> int:
    text = (value or "").strip()
    try:
        number = int(text)
    except ValueError:
        rule = "a positive integer" if positive else "an integer"
        raise InputFileError(f"{where}: expected {rule}, got {value!r}") from None
    if positive and number <= 0:
        raise InputFileError(f"{where}: expected a positive integer, got {value!r}")
    return number


def read_orders(path: str | Path, *, default_interval: int = 0) -> OrderFile:
    """Read an orders CSV or parquet file.

    Args:
        path: the file (``.csv`` or ``.parquet``).
        default_interval: interval of every order when the file has no
            ``interval`` column.

    Raises:
        InputFileError: the file is missing, unreadable, lacks a column, or a
            cell breaks a rule (the message names row and column), or one
            participant appears at two buses.
    """
    path = Path(path)
    frame = _frame(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        hint = ""
        if len(frame.columns) == 1 and ";" in frame.columns[0]:
            hint = " (the header is one column with ';' in it: the file seems to use ';' as "
            hint += "its delimiter; gridex reads comma-separated files)"
        raise InputFileError(
            f"{path}: missing column{'' if len(missing) == 1 else 's'} {', '.join(missing)}; "
            f"expected at least {', '.join(REQUIRED_COLUMNS)}{hint}"
        )
    columns = {c: frame[c].to_list() for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in frame}
    intervals: dict[int, list[Order]] = {}
    participants: dict[str, Participant] = {}
    first_row: dict[str, int] = {}
    for i in range(frame.height):
        row = i + 1

        def at(column: str, row: int = row) -> str:
            return f"{path.name} row {row}, column {column}"

        order_id = (columns["order_id"][i] or "").strip()
        if not order_id:
            raise InputFileError(f"{at('order_id')}: must not be empty")
        try:
            address = normalise_address((columns["participant"][i] or "").strip())
        except ValueError:
            raise InputFileError(
                f"{at('participant')}: expected 0x followed by 40 hex digits, "
                f"got {columns['participant'][i]!r}"
            ) from None
        bus = _int(columns["bus"][i], where=at("bus"))
        side_text = (columns["side"][i] or "").strip().lower()
        if side_text not in ("buy", "sell"):
            raise InputFileError(
                f"{at('side')}: expected 'buy' or 'sell', got {columns['side'][i]!r}"
            )
        quantity = _int(columns["quantity_wh"][i], where=at("quantity_wh"), positive=True)
        limit = _int(columns["limit_price"][i], where=at("limit_price"))
        if "interval" in columns:
            interval = _int(columns["interval"][i], where=at("interval"))
        else:
            interval = default_interval
        known = participants.get(address)
        if known is not None and known.bus != bus:
            raise InputFileError(
                f"{at('bus')}: participant {address} is at bus {known.bus} in row "
                f"{first_row[address]}, got {bus}"
            )
        if known is None:
            participants[address] = Participant(address, bus)
            first_row[address] = row
        intervals.setdefault(interval, []).append(
            Order(order_id, address, Side(side_text), interval, quantity, limit)
        )
    return OrderFile(dict(sorted(intervals.items())), participants)


def summary_of(result: ClearingResult) -> dict[str, Any]:
    """The per-interval entry of ``summary.json``."""
    stats = asdict(result.stats)
    return {
        "interval": result.interval,
        "status": str(result.status),
        "termination": result.status.termination.value,
        "solution": result.status.solution.value,
        "welfare": result.welfare,
        "orders": len(result.fills),
        "filled_orders": sum(1 for f in result.fills if f.filled_wh > 0),
        "traded_wh": sum(f.filled_wh for f in result.fills if f.side == "sell"),
        "grid_import_wh": result.grid_import_wh,
        "grid_export_wh": result.grid_export_wh,
        "losses_wh": result.losses_wh,
        "buyers_pay": result.buyers_pay,
        "sellers_receive": result.sellers_receive,
        "grid_import_amount": result.grid_import_amount,
        "grid_export_amount": result.grid_export_amount,
        "grid_rounding_amount": result.grid_rounding_amount,
        "operator_surplus": result.operator_surplus,
        "rounds": result.rounds,
        "ac_check": None if result.ac is None else asdict(result.ac),
        "timings_s": {k: v for k, v in stats.items() if k.endswith("_s")},
        "result_sha256": hashlib.sha256(result.to_json()).hexdigest(),
    }


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    import polars as pl

    if not rows:
        pl.DataFrame(schema=dict.fromkeys(columns, pl.Utf8)).write_csv(path)
        return
    pl.DataFrame({c: [r[c] for r in rows] for c in columns}).write_csv(path)


def write_results(
    out_dir: str | Path, results: Sequence[ClearingResult], *, header: dict[str, Any]
) -> None:
    """Write ``fills.csv``, ``prices.csv``, ``trades.csv``, ``payments.csv`` and ``summary.json``.

    Args:
        out_dir: the output folder (created if missing).
        results: one result per interval.
        header: run-level entries of ``summary.json`` (grid, mechanism, …).

    Raises:
        InputFileError: the folder cannot be written.
    """
    out = Path(out_dir)
    tables: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {
        "fills": ([], ("interval", *_fields("fills"))),
        "prices": ([], ("interval", *_fields("prices"))),
        "trades": ([], ("interval", *_fields("trades"))),
        "payments": ([], ("interval", *_fields("payments"))),
    }
    for result in results:
        for name, (rows, _) in tables.items():
            rows.extend({"interval": result.interval, **v._asdict()} for v in getattr(result, name))
    summary = {**header, "intervals": [summary_of(r) for r in results]}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, (rows, columns) in tables.items():
            _write_csv(out / f"{name}.csv", rows, columns)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise InputFileError(f"{out}: cannot write results ({exc})") from exc


def _fields(name: str) -> tuple[str, ...]:
    from market.clearing.result import BusPrice, Fill, Payment, Trade

    kinds: dict[str, Any] = {
        "fills": Fill,
        "prices": BusPrice,
        "trades": Trade,
        "payments": Payment,
    }
    return tuple(kinds[name]._fields)
