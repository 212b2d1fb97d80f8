"""Published bundles: one interval's inputs and outputs, and their verification.

A bundle is a folder::

    manifest.json        interval, feeder (name and SHA-256 of its pandapower JSON),
                         tariffs, mechanism, clearing options, operator account,
                         the clearing's status and result hash, every posting's
                         version, fee, result hash and previous hash, and the
                         SHA-256 of each file below
    orders.parquet       order_id, participant, side, interval, quantity_wh, limit_price
    participants.parquet address, bus
    metered.parquet      version, meter_id, participant, import_wh, export_wh,
                         complete, estimated: the metering each posting used
    postings.parquet     version, account, delta: what each posting moved
    result.json          the clearing result's canonical JSON (absent if it failed)

:func:`verify_bundle` recomputes, from the bundle alone (and the named
built-in feeder, checked against its hash), the clearing (byte for byte:
its keccak-256 must be the posted hash) and every posting (the settlement of
its metering minus the postings before it, and a reconciliation's chained
hash), and returns every difference it finds as a line of text; with a
:class:`contracts.Ledger` it also compares the postings with the chain's
Settled and Corrected events and their transactions' deltas. The manifest's
own hash is keccak-256 of its bytes (:func:`manifest_hash`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import polars as pl
from eth_hash.auto import keccak
from gridex.v1 import types_pb2 as pb

from market.config import MarketConfig
from market.errors import InputFileError
from market.orders import Order, Participant, Side
from market.settlement import correction_hash, settle_interval

__all__ = ["manifest_hash", "verify_bundle", "write_bundle"]

_FILES = ("orders.parquet", "participants.parquet", "metered.parquet", "postings.parquet")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def feeder_digest(feeder: Any) -> str:
    """SHA-256 of a feeder's pandapower JSON (its version)."""
    import pandapower as pp

    return hashlib.sha256(pp.to_json(feeder.net).encode()).hexdigest()


def write_bundle(
    folder: Path,
    state: Any,
    interval: int,
    *,
    feeder_name: str,
    feeder_sha256: str,
    market: MarketConfig,
    mechanism: str,
    operator: str,
    options: Any,
) -> Path:
    """Write the bundle of ``interval`` from an engine state (live or replayed).

    Returns:
        The manifest's path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    s = state.intervals[interval]
    orders = [r.order for r in s.orders if r.status != pb.ORDER_STATUS_CANCELLED]
    pl.DataFrame(
        {
            "order_id": [o.order_id for o in orders],
            "participant": [o.participant for o in orders],
            "side": [o.side.value for o in orders],
            "interval": [o.interval for o in orders],
            "quantity_wh": [o.quantity_wh for o in orders],
            "limit_price": [o.limit_price for o in orders],
        },
        schema={
            "order_id": pl.String,
            "participant": pl.String,
            "side": pl.String,
            "interval": pl.Int64,
            "quantity_wh": pl.Int64,
            "limit_price": pl.Int64,
        },
    ).write_parquet(folder / "orders.parquet")
    people = sorted(state.participants.values(), key=lambda p: p.address)
    pl.DataFrame(
        {"address": [p.address for p in people], "bus": [p.bus for p in people]},
        schema={"address": pl.String, "bus": pl.Int64},
    ).write_parquet(folder / "participants.parquet")
    rows: list[tuple[int, str, str, int, int, bool, bool]] = []
    postings: list[tuple[int, str, int]] = []
    records = [r for r in [s.settlement, *s.corrections] if r is not None]
    meterings = _meterings(state, s)
    for version, (meters, estimated) in enumerate(meterings[: len(records)]):
        for m, (imp, exp, complete) in sorted(meters.items()):
            rows.append((version, m, state.meters[m][1], imp, exp, complete, m in estimated))
    for record in records:
        postings += [(record.version, a, d) for a, d in sorted(record.deltas.items())]
    pl.DataFrame(
        rows,
        schema={
            "version": pl.Int64,
            "meter_id": pl.String,
            "participant": pl.String,
            "import_wh": pl.Int64,
            "export_wh": pl.Int64,
            "complete": pl.Boolean,
            "estimated": pl.Boolean,
        },
        orient="row",
    ).write_parquet(folder / "metered.parquet")
    pl.DataFrame(
        postings,
        schema={"version": pl.Int64, "account": pl.String, "delta": pl.Int64},
        orient="row",
    ).write_parquet(folder / "postings.parquet")
    clearing = s.clearing
    if clearing is not None and clearing.ok:
        (folder / "result.json").write_bytes(clearing.result_json)
    files = {
        name: _sha256(folder / name)
        for name in (*_FILES, "result.json")
        if (folder / name).exists()
    }
    manifest = {
        "interval": interval,
        "feeder": {"name": feeder_name, "sha256": feeder_sha256},
        # the base-load forecast the interval was cleared against (None: the
        # feeder's own base), as the engine journaled it
        "base": clearing.base if clearing is not None else None,
        "market": asdict(market),
        "mechanism": clearing.mechanism if clearing is not None else mechanism,
        "options": _options_json(options),
        "operator": operator,
        "clearing": {
            "ok": bool(clearing is not None and clearing.ok),
            "result_hash": "" if clearing is None else clearing.result_hash.hex(),
        },
        "postings": [
            {
                "version": r.version,
                "fee": r.fee,
                "result_hash": r.result_hash.hex(),
                "previous_hash": r.previous_hash.hex(),
            }
            for r in records
        ],
        "files": files,
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n")
    return path


def _options_json(options: Any) -> dict[str, Any]:
    """Clearing options as JSON values (sets sorted, so the manifest is deterministic)."""
    return {
        k: sorted(v) if isinstance(v, frozenset | set) else v for k, v in asdict(options).items()
    }


def _meterings(
    state: Any, s: Any
) -> list[tuple[dict[str, tuple[int, int, bool]], tuple[str, ...]]]:
    """The metering of each posting of ``s``, in version order."""
    return list(s.meterings)


def manifest_hash(folder: Path) -> bytes:
    """keccak-256 of the bundle's manifest bytes."""
    return bytes(keccak((folder / "manifest.json").read_bytes()))


def _read(folder: Path) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        frames = {name: pl.read_parquet(folder / name) for name in _FILES}
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise InputFileError(f"bundle {folder}: cannot read it ({exc})") from exc
    return manifest, frames


def _settlement(
    manifest: dict[str, Any],
    summary: Any,
    metered: pl.DataFrame,
    version: int,
    result_hash: bytes,
) -> Any:
    rows = metered.filter(pl.col("version") == version)
    net: dict[str, int] = {}
    for participant, imp, exp in rows.select("participant", "import_wh", "export_wh").iter_rows():
        net[participant] = net.get(participant, 0) + exp - imp
    surplus = 0 if summary is None else max(summary.operator_surplus, 0)
    return settle_interval(
        int(manifest["interval"]),
        traded_wh={} if summary is None else dict(summary.traded_wh),
        payments={} if summary is None else dict(summary.payments),
        operator_surplus=surplus,
        metered_wh=net,
        config=MarketConfig(**manifest["market"]),
        operator=manifest["operator"],
        result_hash=result_hash,
    )


def verify_bundle(folder: Path, *, feeder: Any = None, ledger: Any = None) -> list[str]:
    """Recompute a bundle's clearing and postings; return every difference found.

    Args:
        folder: the bundle.
        feeder: the feeder to clear on (default: the built-in one the manifest
            names); its SHA-256 must match the manifest's.
        ledger: a :class:`contracts.Ledger` to compare the postings with the chain.

    Returns:
        One line per difference; empty when everything agrees.

    Raises:
        InputFileError: the bundle cannot be read.
    """
    from grid import load_feeder
    from market.engine.clearing import MarketClearing

    manifest, frames = _read(folder)
    k = int(manifest["interval"])
    out: list[str] = []
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.exists() or _sha256(path) != digest:
            out.append(f"interval {k}: {name} does not match the manifest's SHA-256")
    if feeder is None:
        feeder = load_feeder(manifest["feeder"]["name"])
    if feeder_digest(feeder) != manifest["feeder"]["sha256"]:
        out.append(f"interval {k}: the feeder is not the version the manifest names")
    market = MarketConfig(**manifest["market"])
    orders = [
        Order(o_id, who, Side(side), iv, q, p)
        for o_id, who, side, iv, q, p in frames["orders.parquet"].iter_rows()
    ]
    participants = {
        a: Participant(a, int(b)) for a, b in frames["participants.parquet"].iter_rows()
    }
    if manifest.get("base") is not None:
        from market.forecast.base import BaseInterval

        feeder = BaseInterval.from_json(manifest["base"]).view(feeder)
    clearing = MarketClearing()
    summary = None
    posted_hash = bytes.fromhex(manifest["clearing"]["result_hash"])
    if manifest["clearing"]["ok"]:
        blob = clearing.clear(
            feeder, orders, participants, market, interval=k, mechanism=manifest["mechanism"]
        )
        recomputed = bytes(keccak(blob))
        if recomputed != posted_hash:
            out.append(
                f"interval {k}: clearing recomputed from the inputs has hash 0x{recomputed.hex()}, "
                f"the bundle says 0x{posted_hash.hex()}"
            )
            out += _fill_differences(k, (folder / "result.json").read_bytes(), blob, clearing)
        summary = clearing.decode(blob)
    out += _posting_differences(k, manifest, frames, summary, posted_hash)
    if ledger is not None:
        out += _chain_differences(k, manifest, frames["postings.parquet"], ledger)
    return out


def _posting_differences(
    k: int,
    manifest: dict[str, Any],
    frames: dict[str, pl.DataFrame],
    summary: Any,
    posted_hash: bytes,
) -> list[str]:
    """Each posting recomputed: its metering's settlement minus the one before."""
    out: list[str] = []
    postings = frames["postings.parquet"]
    metered = frames["metered.parquet"]
    previous = None
    for meta in manifest["postings"]:
        v = int(meta["version"])
        wanted = _settlement(manifest, summary, metered, v, posted_hash)
        if previous is None:
            expected = dict(wanted.deltas)
        else:
            accounts = wanted.deltas.keys() | previous.deltas.keys()
            diff = {a: wanted.deltas.get(a, 0) - previous.deltas.get(a, 0) for a in accounts}
            expected = {a: d for a, d in diff.items() if d}
            rows = metered.filter(pl.col("version") == v)
            basis = {
                m: [imp, exp, complete, est]
                for m, imp, exp, complete, est in rows.select(
                    "meter_id", "import_wh", "export_wh", "complete", "estimated"
                ).iter_rows()
            }
            chained = correction_hash(
                bytes.fromhex(meta["previous_hash"]),
                interval=k,
                version=v,
                meters=basis,
                deltas=dict(sorted(expected.items())),
            )
            if chained.hex() != meta["result_hash"]:
                out.append(f"interval {k} v{v}: the posting's hash does not follow from its body")
        got = {a: d for _, a, d in postings.filter(pl.col("version") == v).iter_rows()}
        for account in sorted(expected.keys() | got.keys()):
            if expected.get(account, 0) != got.get(account, 0):
                out.append(
                    f"interval {k} v{v}: {account} posted {got.get(account, 0)}, "
                    f"recomputed {expected.get(account, 0)}"
                )
        previous = wanted
    return out


def _fill_differences(k: int, published: bytes, recomputed: bytes, clearing: Any) -> list[str]:
    try:
        old = {(f.participant, f.order_id): f for f in clearing.decode(published).fills}
    except Exception:  # a tampered result may not even parse
        return [f"interval {k}: the published result does not parse"]
    new = {(f.participant, f.order_id): f for f in clearing.decode(recomputed).fills}
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        wa = None if a is None else (a.filled_wh, a.price, a.amount)
        wb = None if b is None else (b.filled_wh, b.price, b.amount)
        if wa != wb:
            out.append(
                f"interval {k}: fill of order {key[1]!r} ({key[0]}): published "
                f"(filled_wh, price, amount) {wa}, recomputed {wb}"
            )
    return out


def _chain_differences(
    k: int, manifest: dict[str, Any], postings: pl.DataFrame, ledger: Any
) -> list[str]:
    out: list[str] = []
    events: list[Any] = [*ledger.settled_events(interval_id=k)]
    events += sorted(ledger.corrected_events(interval_id=k), key=lambda e: e.version)
    if len(events) != len(manifest["postings"]):
        out.append(
            f"interval {k}: {len(events)} postings on chain, "
            f"{len(manifest['postings'])} in the bundle"
        )
    for meta, event in zip(manifest["postings"], events, strict=False):
        v = int(meta["version"])
        if event.result_hash != "0x" + meta["result_hash"]:
            out.append(
                f"interval {k} v{v}: chain hash {event.result_hash}, bundle 0x{meta['result_hash']}"
            )
        on_chain = {a.lower(): d for a, d in ledger.settlement_deltas(event).items()}
        got = {a: d for _, a, d in postings.filter(pl.col("version") == v).iter_rows()}
        if on_chain != got:
            out.append(f"interval {k} v{v}: the chain's deltas differ from the bundle's")
        if event.fee != int(meta["fee"]):
            out.append(f"interval {k} v{v}: chain fee {event.fee}, bundle {meta['fee']}")
    return out
