"""Rebuild a report's tables from an engine journal (read-only).

The journal holds every accepted input and every lifecycle step, so it holds
everything a report shows: the books are replayed into a
:class:`~market.engine.state.MarketState` exactly as the engine replays them
on restart; clearing results are decoded from their canonical bytes; raw
reading batches are decoded for the inverters' production counters.

Computed afresh: the ``counterfactual`` and ``grid_state`` tables
(:mod:`market.report.counterfactual`): the same book cleared ``uniform``
(copper plate) and its schedule run through an AC power flow at the
interval's journaled base; ``uniform_violations`` counts the limits the
copper plate would have broken, what the operator means by "congestion or
voltage events avoided". The nodal schedule's AC power flow is read from the
journal (the ``flows`` the engine's clearing journaled,
:mod:`market.clearing.flows`) and run again only for intervals journaled
without it (journals written before the engine journaled flows). The AC
power flow of what was metered is run here.
"""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from grid import AcReport, Feeder, load_feeder
from market.clearing import GRID, ClearingResult
from market.clearing.flows import flows_from_body
from market.config import MarketConfig
from market.errors import InputFileError, MarketError
from market.report.ahead import Ahead, delivered_figures, metered_key, uniform_key
from market.report.counterfactual import TOLERANCE, counterfactual_rows, violations_of
from market.report.data import ReportData

__all__ = ["JournalRun", "read_journal", "report_from_journal"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class JournalRun:
    """What a journal says about the run that wrote it.

    Attributes:
        feeder: the feeder name the engine ran (a built-in name or a file stem).
        market: the engine's tariffs and interval length.
        mechanism: the engine's default clearing mechanism.
        operator_account: the account that took the grid's side.
        state: the replayed engine state (``market.engine.state.MarketState``).
        batches: the serialized reading batches, in journal order.
        flows: per interval, the AC power flow the engine's clearing ran for the
            schedule it journaled (:mod:`market.clearing.flows`); intervals
            journaled without one (older journals, AC check off) are absent.
    """

    feeder: str
    market: MarketConfig
    mechanism: str
    operator_account: str
    state: Any
    batches: tuple[bytes, ...]
    flows: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)


def _entries(path: Path) -> Iterator[tuple[str, int, dict[str, Any], bytes | None]]:
    import json

    if not path.is_file():
        raise InputFileError(f"--db {path}: no such journal file")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputFileError(f"--db {path}: cannot open ({exc})") from exc
    try:
        rows = db.execute(
            "SELECT seq, kind, at_ms, body, blob FROM journal ORDER BY seq"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise InputFileError(f"--db {path}: not a gridex journal ({exc})") from exc
    finally:
        db.close()
    for seq, kind, at_ms, body, blob in rows:
        try:
            entry = json.loads(body)
        except (TypeError, ValueError) as exc:
            raise InputFileError(f"--db {path}: entry {seq} ({kind}): body is not JSON") from exc
        yield str(kind), int(at_ms), entry, blob


def read_journal(path: Path) -> JournalRun:
    """Replay the journal at ``path`` without writing to it.

    Raises:
        InputFileError: the file is missing, not a journal, or does not replay.
    """
    from market.engine.clearing import MarketClearing
    from market.engine.state import MarketState

    entries = iter(_entries(path))
    first = next(entries, None)
    if first is None or first[0] != "start":
        raise InputFileError(f"--db {path}: the journal does not begin with a start entry")
    start = first[2]
    try:
        tariffs = start.get("market", {})
        market = MarketConfig(interval_s=int(start["interval_s"]), **tariffs)
    except (MarketError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputFileError(f"--db {path}: the start entry is malformed ({exc!r})") from exc
    state = MarketState(interval_s=market.interval_s, skew_s=1e12, decode=MarketClearing().decode)
    batches: list[bytes] = []
    flows: dict[int, Mapping[str, Any]] = {}
    try:
        state.apply(*first)
        for kind, at_ms, body, blob in entries:
            state.apply(kind, at_ms, body, blob)
            if kind == "readings" and blob:
                batches.append(bytes(blob))
            elif kind == "cleared":
                # the last clearing of an interval counts; one without flows drops older ones
                k = int(body["interval"])
                if body.get("ok") and isinstance(body.get("flows"), dict):
                    flows[k] = body["flows"]
                else:
                    flows.pop(k, None)
    except InputFileError:
        raise
    except MarketError as exc:
        raise InputFileError(f"--db {path}: journal does not replay: {exc}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputFileError(
            f"--db {path}: journal does not replay: malformed entry ({exc!r})"
        ) from exc
    return JournalRun(
        feeder=str(start.get("feeder", "")),
        market=market,
        mechanism=str(start.get("mechanism", "nodal")),
        operator_account=str(start.get("operator_account", "")),
        state=state,
        batches=tuple(batches),
        flows=flows,
    )


def _production(run: JournalRun) -> dict[tuple[int, str], int]:
    """Inverter production per (interval, participant), Wh, from the raw batches.

    Each increase of a meter's production counter between two readings is
    booked to the interval in which the later reading falls.
    """
    from gridex.v1 import meter_pb2

    samples: dict[str, list[tuple[int, int]]] = {}
    for blob in run.batches:
        batch = meter_pb2.ReadingBatch.FromString(blob)
        samples.setdefault(batch.meter_id, []).extend(
            (r.timestamp_ms, r.production_wh) for r in batch.readings if r.HasField("production_wh")
        )
    interval_ms = run.market.interval_s * 1000
    out: dict[tuple[int, str], int] = {}
    for meter_id, raw in samples.items():
        participant = run.state.meters.get(meter_id, ("", ""))[1]
        for (_, before), (t, after) in itertools.pairwise(sorted(set(raw))):
            key = ((t - 1) // interval_ms, participant)
            out[key] = out.get(key, 0) + max(after - before, 0)
    return out


def report_from_journal(
    path: Path,
    *,
    feeder: Feeder | None = None,
    progress: Progress | None = None,
    timings: Any = None,
    ahead: Ahead | None = None,
) -> tuple[ReportData, JournalRun]:
    """Build every report table from the journal at ``path``.

    Args:
        path: the engine's SQLite journal.
        feeder: the feeder the engine ran; loaded by the name the journal
            records when omitted.
        progress: called with (intervals done, intervals total).
        timings: a :class:`market.demo.timing.Timings` to add the
            counterfactual's and the metered power flows' seconds to.
        ahead: copper-plate schedules and metered power flows computed while
            the day ran (:mod:`market.report.ahead`), each used where the
            journal shows the inputs it was computed from.

    Raises:
        InputFileError: the journal is missing, unreadable or does not replay.
        GridError: the feeder cannot be loaded.

    The report covers the intervals that were cleared and delivered; an
    interval cleared for a future delivery is left for a later report.
    """
    from gridex.v1 import types_pb2 as pb

    run = read_journal(path)
    feeder = feeder if feeder is not None else load_feeder(run.feeder)
    state = run.state
    rows: dict[str, list[dict[str, object]]] = {name: [] for name in _TABLES}
    cleared = sorted(
        i
        for i, s in state.intervals.items()
        if s.clearing is not None and s.phase >= pb.INTERVAL_PHASE_DELIVERED
    )
    balances: dict[str, int] = {}
    for done, interval in enumerate(cleared, start=1):
        _interval_rows(feeder, run, interval, rows, balances, timings=timings, ahead=ahead)
        if progress is not None:
            progress(done, len(cleared))
    production = _production(run)
    for interval, s in sorted(state.intervals.items()):
        if s.metered is None:
            continue
        per: dict[str, list[int]] = {}
        for meter_id, (imp, exp, _complete) in s.metered.items():
            participant = state.meters.get(meter_id, ("", meter_id))[1]
            acc = per.setdefault(participant, [0, 0])
            acc[0] += imp
            acc[1] += exp
        for participant, (imp, exp) in sorted(per.items()):
            rows["metered"].append(
                {
                    "interval": interval,
                    "participant": participant,
                    "import_wh": imp,
                    "export_wh": exp,
                    "production_wh": production.get((interval, participant), -1),
                }
            )
    readings = state.ledger.readings_frame()
    meters = pl.DataFrame(
        {
            "meter_id": list(state.meters),
            "participant": [v[1] for v in state.meters.values()],
        },
        schema={"meter_id": pl.String, "participant": pl.String},
    )
    readings = readings.join(meters, on="meter_id", how="left").with_columns(
        pl.col("participant").fill_null("")
    )
    data = ReportData.from_rows(**{k: v for k, v in rows.items() if k != "readings"})
    data = ReportData(
        intervals=data.intervals,
        orders=data.orders,
        fills=data.fills,
        prices=data.prices,
        readings=readings,
        metered=data.metered,
        settlements=data.settlements,
        balances=data.balances,
        counterfactual=data.counterfactual,
        grid_state=data.grid_state,
    )
    return data, run


_TABLES = (
    "intervals",
    "orders",
    "fills",
    "prices",
    "metered",
    "settlements",
    "balances",
    "counterfactual",
    "grid_state",
)


def _interval_rows(
    feeder: Feeder,
    run: JournalRun,
    interval: int,
    rows: dict[str, list[dict[str, object]]],
    balances: dict[str, int],
    *,
    timings: Any = None,
    ahead: Ahead | None = None,
) -> None:
    import time

    from gridex.v1 import types_pb2 as pb

    s = run.state.intervals[interval]
    record = s.clearing
    if record.base is not None:
        from market.forecast import BaseInterval

        # the interval's grid as the engine cleared it: its journaled base
        feeder = BaseInterval.from_json(record.base).view(feeder)
    for r in s.orders:
        o = r.order
        rows["orders"].append(
            {
                "interval": interval,
                "participant": o.participant,
                "order_id": o.order_id,
                "side": str(o.side),
                "bus": run.state.participants[o.participant].bus,
                "quantity_wh": o.quantity_wh,
                "limit_price": o.limit_price,
            }
        )
    if not record.ok:
        return
    result = ClearingResult.from_json(record.result_json)
    for f in result.fills:
        rows["fills"].append(
            {
                "interval": interval,
                "participant": f.participant,
                "order_id": f.order_id,
                "side": f.side,
                "bus": f.bus,
                "filled_wh": f.filled_wh,
                "price": f.price,
                "amount": f.amount,
            }
        )
    connectable = {b.index for b in feeder.connectable_buses}
    local_prices = [p.price for p in result.prices if p.bus in connectable]
    for p in result.prices:
        rows["prices"].append(
            {
                "interval": interval,
                "bus": p.bus,
                "price": p.price,
                "energy": p.energy,
                "loss": p.loss,
                "congestion": p.congestion,
                "voltage": p.voltage,
            }
        )
    settlement = s.settlement
    if settlement is not None:
        for account, delta in sorted(settlement.deltas.items()):
            rows["settlements"].append(
                {
                    "interval": interval,
                    "account": account,
                    "delta": delta,
                    "fee": settlement.fee,
                    "tx_hash": settlement.receipt,
                }
            )
            balances[account] = balances.get(account, 0) + delta
        for account, balance in sorted(balances.items()):
            rows["balances"].append({"interval": interval, "account": account, "balance": balance})
    ac = result.ac
    orders = tuple(r.order for r in s.orders if r.status != pb.ORDER_STATUS_CANCELLED)
    t0 = time.perf_counter()
    cf_row, state_rows = counterfactual_rows(
        feeder,
        orders,
        run.state.participants,
        run.market,
        interval=interval,
        nodal=result,
        nodal_flows=_journaled_flows(feeder, run, interval),
        uniform=None
        if ahead is None
        else ahead.uniform(interval, uniform_key(orders, record.base)),
    )
    t1 = time.perf_counter()
    delivered = None if ahead is None else ahead.delivered(interval, metered_key(s.metered))
    if delivered is None:
        delivered = delivered_figures(
            feeder,
            s.metered,
            meters=run.state.meters,
            participants=run.state.participants,
            interval_s=run.market.interval_s,
            interval=interval,
        )
    if timings is not None:
        timings.add("report: uniform counterfactual (clearing and AC flow)", t1 - t0)
        timings.add("report: AC flow of what was metered", time.perf_counter() - t1)
    rows["counterfactual"].append(cf_row)
    rows["grid_state"].extend(state_rows)
    rows["intervals"].append(
        {
            "interval": interval,
            "start_s": interval * run.market.interval_s,
            "local_wh": sum(t.energy_wh for t in result.trades if GRID not in (t.buyer, t.seller)),
            "import_wh": result.grid_import_wh,
            "export_wh": result.grid_export_wh,
            "losses_wh": result.losses_wh,
            "price_min": min(local_prices, default=0),
            "price_mean": sum(local_prices) / len(local_prices) if local_prices else 0.0,
            "price_max": max(local_prices, default=0),
            "max_line_loading_percent": ac.max_line_loading_percent if ac else 0.0,
            "max_trafo_loading_percent": ac.max_trafo_loading_percent if ac else 0.0,
            "vm_min_pu": ac.vm_min_pu if ac else 1.0,
            "vm_max_pu": ac.vm_max_pu if ac else 1.0,
            "rounds": result.rounds,
            "ac_passed": ac.passed if ac else True,
            "uniform_violations": violations_of(cf_row) if orders else 0,
            "operator_surplus": result.operator_surplus,
            "settled_volume": sum(d for d in settlement.deltas.values() if d > 0)
            + max(settlement.fee, 0)
            if settlement
            else 0,
            "gas_used": settlement.gas_used if settlement else 0,
            **delivered,
        }
    )


def _journaled_flows(feeder: Feeder, run: JournalRun, interval: int) -> AcReport | None:
    """The engine's AC power flow of ``interval``'s schedule, or None when not journaled."""
    body = run.flows.get(interval)
    if body is None:
        return None
    try:
        return flows_from_body(feeder, body, tolerance=TOLERANCE)
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning(
            "interval %d: journaled flows unreadable (%s); running them again", interval, exc
        )
        return None
