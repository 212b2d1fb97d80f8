"""What goes on chain for each posting: the hash of its manifest.

A *posting manifest* is one JSON document per posting (version ``v`` of
interval ``k``) that names everything the posting follows from and what it
moved::

    {"interval": k, "version": v,
     "previous_hash": "<hex of version v-1's hash>" | "",     (v = 0: empty)
     "inputs": {"feeder": {"name", "sha256"}, "base", "market", "mechanism",
                "options", "operator",
                "orders_sha256", "participants_sha256",
                "metering": {meter_id: [participant, import_wh, export_wh,
                                        complete, estimated]}},
     "outputs": {"clearing": {"ok", "result_hash"},
                 "deltas": {account: delta}, "fee": fee}}

Its bytes are canonical JSON (:func:`canonical`: sorted keys, no
whitespace), and ``keccak256(bytes)`` (:func:`manifest_hash`) is the
``result_hash`` the Settlement contract records for the posting. Because
each manifest names the hash of the version before it, every version
commits to the whole chain of postings before it.

``orders_sha256`` is SHA-256 of the canonical JSON list of the interval's
orders as the clearing took them (``[order_id, participant, side, interval,
quantity_wh, limit_price]``, in acceptance order); ``participants_sha256``
the same of ``[[address, bus], ...]`` sorted by address, for the
participants the orders or the metering name. The published bundle
(:mod:`market.bundle`) holds those rows in parquet, so anyone can rebuild
the manifest from the bundle and compare its hash with the chain.

An interval cleared in a flexibility roll (:mod:`market.engine.rolling`)
follows from the whole roll, so its inputs also hold ``"roll"``
(:meth:`RollRows.digest`): the number of intervals cleared, and the SHA-256
of the later intervals' orders (rows as above, interval by interval), of
the flexibility orders as cleared (``[version, body]``, the journal's body
of each) and of the base of every interval (``[interval, bus position,
p_mw, q_mvar]``; null without a forecast). ``participants_sha256`` then
covers every participant the roll names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from eth_hash.auto import keccak

__all__ = [
    "BaseRow",
    "MeteringRow",
    "OrderRow",
    "RollRows",
    "book_rows",
    "canonical",
    "feeder_digest",
    "interval_inputs",
    "manifest_hash",
    "metering_rows",
    "options_json",
    "posting_manifest",
    "roll_rows",
    "rows_sha256",
]

#: ``[order_id, participant, side, interval, quantity_wh, limit_price]``
OrderRow = tuple[str, str, str, int, int, int]
#: ``meter_id → [participant, import_wh, export_wh, complete, estimated]``
MeteringRow = tuple[str, int, int, bool, bool]
#: ``[interval, bus position, p_mw, q_mvar]``
BaseRow = tuple[int, int, float, float]


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def rows_sha256(rows: Iterable[Sequence[Any]]) -> str:
    """SHA-256 (hex) of the canonical JSON list of ``rows``."""
    return hashlib.sha256(canonical([list(r) for r in rows])).hexdigest()


def feeder_digest(feeder: Any) -> str:
    """SHA-256 (hex) of a feeder's pandapower JSON: the version of the network.

    Taken of ``feeder.net``, the network as loaded (power flows run on a
    separate working copy, so the digest does not change as the market runs).
    """
    import pandapower as pp

    return hashlib.sha256(pp.to_json(feeder.net).encode()).hexdigest()


def options_json(options: Any) -> dict[str, Any] | None:
    """Clearing options as JSON values (sets sorted); None for a backend without options."""
    if options is None:
        return None
    return {
        k: sorted(v) if isinstance(v, frozenset | set) else v for k, v in asdict(options).items()
    }


def book_rows(state: Any, s: Any) -> tuple[list[OrderRow], dict[str, int]]:
    """The orders the clearing of ``s`` took (all but cancelled ones, in acceptance
    order) and the bus of every participant they name (all the clearing looks up).

    ``state`` is a :class:`market.engine.state.MarketState` (live or replayed),
    ``s`` one of its intervals.
    """
    from gridex.v1 import types_pb2 as pb

    orders = [r.order for r in s.orders if r.status != pb.ORDER_STATUS_CANCELLED]
    rows = [_order_row(o) for o in orders]
    named = sorted({o.participant for o in orders})
    participants = {a: int(state.participants[a].bus) for a in named if a in state.participants}
    return rows, participants


@dataclass(frozen=True)
class RollRows:
    """What a roll cleared beyond its firm book, as rows (see the module docstring)."""

    intervals: int
    orders: list[OrderRow]
    flex: list[list[Any]]
    bases: list[BaseRow] | None
    participants: dict[str, int]

    def digest(self) -> dict[str, Any]:
        """The manifest's ``"roll"``."""
        return {
            "intervals": self.intervals,
            "orders_sha256": rows_sha256(self.orders),
            "flex_sha256": rows_sha256(self.flex),
            "bases_sha256": None if self.bases is None else rows_sha256(self.bases),
        }


def _order_row(o: Any) -> OrderRow:
    return (o.order_id, o.participant, o.side.value, o.interval, o.quantity_wh, o.limit_price)


def roll_rows(state: Any, interval: int) -> RollRows | None:
    """The roll that cleared ``interval`` (None if none did), as rows.

    ``state`` is a :class:`market.engine.state.MarketState`.
    """
    roll = state.flex_rolls.get(interval)
    if roll is None:
        return None
    orders = [_order_row(state.orders[key].order) for book in roll.orders[1:] for key in book]
    flex = [[v, dict(body)] for v, body in roll.flex]
    bases: list[BaseRow] | None = None
    if roll.bases is not None:
        bases = []
        for t, base in enumerate(roll.bases):
            rows = zip(base["p_mw"], base["q_mvar"], strict=True)
            bases += [(interval + t, i, float(p), float(q)) for i, (p, q) in enumerate(rows)]
    named = {state.orders[key].order.participant for book in roll.orders for key in book}
    named |= {str(body["participant"]) for _, body in roll.flex}
    participants = {
        a: int(state.participants[a].bus) for a in sorted(named) if a in state.participants
    }
    return RollRows(len(roll.orders), orders, flex, bases, participants)


def metering_rows(
    state: Any, meters: Mapping[str, Sequence[Any]], estimated: Iterable[str]
) -> dict[str, MeteringRow]:
    """One posting's metering (``{meter_id: (import_wh, export_wh, complete)}``)
    with each meter's owner and estimated flag."""
    flagged = set(estimated)
    return {
        m: (str(state.meters[m][1]), int(v[0]), int(v[1]), bool(v[2]), m in flagged)
        for m, v in sorted(meters.items())
    }


def interval_inputs(
    *,
    feeder_name: str,
    feeder_sha256: str,
    base: Mapping[str, Any] | None,
    market: Any,
    mechanism: str,
    options: Any,
    operator: str,
    orders: Sequence[OrderRow],
    participants: Mapping[str, int],
    roll: RollRows | None = None,
) -> dict[str, Any]:
    """The inputs every posting of one interval shares (all but its metering).

    Args:
        orders: the orders the clearing took, in acceptance order.
        participants: bus per participant address, for those the orders name
            (ignored with ``roll``: those the roll names).
        roll: the roll that cleared the interval, if one did.
    """
    if roll is not None:
        participants = roll.participants
    inputs = {
        "feeder": {"name": feeder_name, "sha256": feeder_sha256},
        "base": None if base is None else dict(base),
        "market": asdict(market),
        "mechanism": mechanism,
        "options": options_json(options),
        "operator": operator,
        "orders_sha256": rows_sha256(orders),
        "participants_sha256": rows_sha256(sorted(participants.items())),
    }
    if roll is not None:
        inputs["roll"] = roll.digest()
    return inputs


def posting_manifest(
    inputs: Mapping[str, Any],
    *,
    interval: int,
    version: int,
    previous_hash: bytes,
    metering: Mapping[str, MeteringRow],
    clearing_ok: bool,
    clearing_hash: bytes,
    deltas: Mapping[str, int],
    fee: int,
) -> dict[str, Any]:
    """The manifest of one posting (see the module docstring); hash it with
    :func:`manifest_hash`."""
    return {
        "interval": interval,
        "version": version,
        "previous_hash": previous_hash.hex(),
        "inputs": {
            **inputs,
            "metering": {m: list(row) for m, row in sorted(metering.items())},
        },
        "outputs": {
            "clearing": {"ok": clearing_ok, "result_hash": clearing_hash.hex()},
            "deltas": {a: d for a, d in sorted(deltas.items()) if d != 0},
            "fee": fee,
        },
    }


def manifest_hash(manifest: Mapping[str, Any]) -> bytes:
    """keccak-256 of the manifest's canonical JSON: what the contract records."""
    return bytes(keccak(canonical(manifest)))
