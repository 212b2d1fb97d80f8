"""Published bundles: one interval's inputs and outputs, and their verification.

A bundle is a folder::

    manifest.json        the index: interval, the inputs every posting shares
                         (market.manifest.interval_inputs: feeder name and
                         SHA-256, base-load forecast, tariffs, mechanism,
                         clearing options, operator, digests of the orders and
                         participants), the clearing's status and result hash,
                         every posting's version, fee and the hash it carries
                         (as posted), and the SHA-256 of each file below
    posting-v<N>.json    the manifest of posting N (market.manifest), canonical
                         JSON: keccak-256 of these bytes is what the Settlement
                         contract records for version N
    orders.parquet       order_id, participant, side, interval, quantity_wh, limit_price
    participants.parquet address, bus (of the participants the orders name)
    metered.parquet      version, meter_id, participant, import_wh, export_wh,
                         complete, estimated: the metering each posting used
    postings.parquet     version, account, delta: what each posting moved
    result.json          the clearing result's canonical JSON (absent if it failed)

An interval cleared in a flexibility roll also has what the roll cleared
(the manifest's ``inputs.roll`` names their digests, see
:mod:`market.manifest`)::

    horizon-orders.parquet  the later intervals' orders (columns as orders.parquet)
    flex.json               [[version, body], ...]: the flexibility orders as cleared
    bases.parquet           interval, position, p_mw, q_mvar: every interval's base
                            (absent when the roll had no forecast)
    horizon.json            the roll's horizon result (firm and indicative intervals)

and participants.parquet holds every participant the roll names.

:func:`verify_bundle` works from the bundle alone (and the named built-in
feeder, checked against its hash). It rebuilds each posting's manifest from
the parquet rows and the index, chaining each version to the hash of the
version before, and checks that its hash is the one posted (and, given the
chain's postings, :class:`ChainPostings`, the one on chain); it recomputes
the clearing (byte for byte: its keccak-256 must be the clearing hash the
manifests name) and every posting (the settlement of its metering minus the
postings before it). A rolled interval is cleared again as the whole roll
(:func:`market.engine.rolling.clear_roll`), and its horizon result compared
byte for byte too. Every difference comes back as a line of text.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import polars as pl
from eth_hash.auto import keccak

from grid import GridError
from market.config import MarketConfig
from market.errors import InputFileError, MarketError
from market.manifest import (
    BaseRow,
    MeteringRow,
    RollRows,
    book_rows,
    canonical,
    feeder_digest,
    interval_inputs,
    manifest_hash,
    metering_rows,
    posting_manifest,
    roll_rows,
    rows_sha256,
)
from market.orders import Order, Participant, Side
from market.settlement import IntervalSettlement, settle_interval

__all__ = ["ChainPostings", "verify_bundle", "write_bundle"]

_FILES = ("orders.parquet", "participants.parquet", "metered.parquet", "postings.parquet")
_ROLL_FILES = ("horizon-orders.parquet", "flex.json", "bases.parquet", "horizon.json")
_BASE_SCHEMA = {
    "interval": pl.Int64,
    "position": pl.Int64,
    "p_mw": pl.Float64,
    "q_mvar": pl.Float64,
}
_ORDER_SCHEMA = {
    "order_id": pl.String,
    "participant": pl.String,
    "side": pl.String,
    "interval": pl.Int64,
    "quantity_wh": pl.Int64,
    "limit_price": pl.Int64,
}
_METERED_SCHEMA = {
    "version": pl.Int64,
    "meter_id": pl.String,
    "participant": pl.String,
    "import_wh": pl.Int64,
    "export_wh": pl.Int64,
    "complete": pl.Boolean,
    "estimated": pl.Boolean,
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
        The index's (``manifest.json``) path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    s = state.intervals[interval]
    orders, participants = book_rows(state, s)
    roll = roll_rows(state, interval)
    if roll is not None:
        participants = roll.participants
        _write_roll(folder, roll, state.flex_rolls[interval].horizon_json)
    pl.DataFrame(orders, schema=_ORDER_SCHEMA, orient="row").write_parquet(
        folder / "orders.parquet"
    )
    pl.DataFrame(
        sorted(participants.items()),
        schema={"address": pl.String, "bus": pl.Int64},
        orient="row",
    ).write_parquet(folder / "participants.parquet")
    clearing = s.clearing
    inputs = interval_inputs(
        feeder_name=feeder_name,
        feeder_sha256=feeder_sha256,
        base=None if clearing is None else clearing.base,
        market=market,
        mechanism=mechanism if clearing is None else clearing.mechanism,
        options=options,
        operator=operator,
        orders=orders,
        participants=participants,
        roll=roll,
    )
    records = [r for r in [s.settlement, *s.corrections] if r is not None]
    rows: list[tuple[Any, ...]] = []
    postings: list[tuple[int, str, int]] = []
    previous = b""
    for version, (record, (meters, estimated)) in enumerate(
        zip(records, s.meterings, strict=False)
    ):
        metering = metering_rows(state, meters, estimated)
        rows += [(version, m, *row) for m, row in metering.items()]
        postings += [(version, a, d) for a, d in sorted(record.deltas.items())]
        manifest = posting_manifest(
            inputs,
            interval=interval,
            version=version,
            previous_hash=previous,
            metering=metering,
            clearing_ok=bool(clearing is not None and clearing.ok),
            clearing_hash=b"" if clearing is None else clearing.result_hash,
            deltas=record.deltas,
            fee=record.fee,
        )
        (folder / f"posting-v{version}.json").write_bytes(canonical(manifest))
        previous = record.result_hash
    pl.DataFrame(rows, schema=_METERED_SCHEMA, orient="row").write_parquet(
        folder / "metered.parquet"
    )
    pl.DataFrame(
        postings,
        schema={"version": pl.Int64, "account": pl.String, "delta": pl.Int64},
        orient="row",
    ).write_parquet(folder / "postings.parquet")
    if clearing is not None and clearing.ok:
        (folder / "result.json").write_bytes(clearing.result_json)
    names = [*_FILES, *_ROLL_FILES, "result.json"]
    names += [f"posting-v{r.version}.json" for r in records]
    index = {
        "interval": interval,
        "inputs": inputs,
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
        "files": {n: _sha256(folder / n) for n in names if (folder / n).exists()},
    }
    path = folder / "manifest.json"
    path.write_text(json.dumps(index, sort_keys=True, indent=1) + "\n")
    return path


def _write_roll(folder: Path, roll: RollRows, horizon_json: bytes) -> None:
    pl.DataFrame(roll.orders, schema=_ORDER_SCHEMA, orient="row").write_parquet(
        folder / "horizon-orders.parquet"
    )
    (folder / "flex.json").write_bytes(canonical(roll.flex))
    if roll.bases is not None:
        pl.DataFrame(roll.bases, schema=_BASE_SCHEMA, orient="row").write_parquet(
            folder / "bases.parquet"
        )
    (folder / "horizon.json").write_bytes(horizon_json)


class ChainPostings:
    """Every posting of a Settlement contract, read once: events by interval.

    ``ledger`` is a :class:`contracts.Ledger` on any node (the embedded EVM or
    JSON-RPC). Deltas are decoded from each posting's transaction when asked.
    """

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self._by_interval: dict[int, list[Any]] = {}
        for event in ledger.settled_events():
            self._by_interval.setdefault(event.interval_id, []).append(event)
        for event in sorted(ledger.corrected_events(), key=lambda e: e.version):
            self._by_interval.setdefault(event.interval_id, []).append(event)

    def intervals(self) -> list[int]:
        """Every interval with a posting on chain, ascending."""
        return sorted(self._by_interval)

    def of(self, interval: int) -> list[Any]:
        """The postings of ``interval`` in version order (Settled first, then Corrected)."""
        return self._by_interval.get(interval, [])

    def deltas(self, event: Any) -> dict[str, int]:
        """What ``event``'s posting moved, by lower-case account."""
        return {a.lower(): d for a, d in self.ledger.settlement_deltas(event).items()}


def _read(folder: Path) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        frames = {name: pl.read_parquet(folder / name) for name in _FILES}
        int(manifest["interval"]), manifest["inputs"], manifest["postings"], manifest["files"]
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as exc:
        raise InputFileError(f"bundle {folder}: cannot read it ({exc!r})") from exc
    return manifest, frames


def _clearing_backend(options: dict[str, Any] | None) -> Any:
    """The clearing with the options the manifest names (sets were written sorted)."""
    from market.clearing.options import ClearingOptions
    from market.engine.clearing import MarketClearing

    if options is None:
        return MarketClearing()
    values: dict[str, Any] = {
        k: frozenset(v) if isinstance(v, list) else v for k, v in options.items()
    }
    return MarketClearing(ClearingOptions(**values))


def verify_bundle(
    folder: Path,
    *,
    feeder: Any = None,
    feeder_sha256: str | None = None,
    chain: ChainPostings | None = None,
    views: Any = None,
) -> list[str]:
    """Rebuild a bundle's manifests, recompute its clearing and postings; return
    every difference found.

    Args:
        folder: the bundle.
        feeder: the feeder to clear on (default: the built-in one the manifest
            names); its SHA-256 must match the manifest's.
        feeder_sha256: ``feeder``'s digest if the caller already has it
            (:func:`market.manifest.feeder_digest`), to spare computing it again.
        chain: the postings on chain to compare the bundle with.
        views: a :class:`market.forecast.BaseViews` of ``feeder`` to take a
            rolled interval's views from (bundle after bundle reuse them).

    Returns:
        One line per difference; empty when everything agrees.

    Raises:
        InputFileError: the bundle cannot be read.
    """
    from grid import load_feeder

    manifest, frames = _read(folder)
    k = int(manifest["interval"])
    inputs = manifest["inputs"]
    out: list[str] = []
    for name, digest in manifest["files"].items():
        path = folder / name
        if not path.exists() or _sha256(path) != digest:
            out.append(f"interval {k}: {name} does not match the manifest's SHA-256")
    if feeder is None:
        feeder = load_feeder(inputs["feeder"]["name"])
        feeder_sha256 = None
    if (feeder_sha256 or feeder_digest(feeder)) != inputs["feeder"]["sha256"]:
        out.append(f"interval {k}: the feeder is not the version the manifest names")
    order_rows = list(frames["orders.parquet"].iter_rows())
    participant_rows = sorted(frames["participants.parquet"].iter_rows())
    if rows_sha256(order_rows) != inputs["orders_sha256"]:
        out.append(f"interval {k}: orders.parquet is not the order book the manifest names")
    if rows_sha256(participant_rows) != inputs["participants_sha256"]:
        out.append(f"interval {k}: participants.parquet is not the set the manifest names")
    orders = _orders(order_rows)
    participants = {a: Participant(a, int(b)) for a, b in participant_rows}
    summary = None
    clearing_hash = bytes.fromhex(manifest["clearing"]["result_hash"])
    published = folder / "result.json"
    if published.exists() and bytes(keccak(published.read_bytes())) != clearing_hash:
        out.append(f"interval {k}: result.json is not the clearing result the manifest names")
    if manifest["clearing"]["ok"]:
        clearing = _clearing_backend(inputs.get("options"))
        try:
            blob, found = _clear_again(
                folder, k, inputs, feeder=feeder, orders=orders, participants=participants,
                clearing=clearing, views=views,
            )  # fmt: skip
        except InputFileError:
            raise
        except (MarketError, GridError) as exc:  # forged inputs the engine never cleared
            out.append(
                f"interval {k}: the bundle's inputs do not clear again "
                f"({type(exc).__name__}: {exc}), yet the bundle says they cleared"
            )
        else:
            out += found
            recomputed = bytes(keccak(blob))
            if recomputed != clearing_hash:
                out.append(
                    f"interval {k}: clearing recomputed from the inputs has hash "
                    f"0x{recomputed.hex()}, the bundle says 0x{clearing_hash.hex()}"
                )
                out += _fill_differences(k, published, blob, clearing)
            summary = clearing.decode(blob)
    out += _posting_differences(k, manifest, frames, summary)
    out += _manifest_differences(
        k, folder, manifest=manifest, frames=frames, clearing_hash=clearing_hash, chain=chain
    )
    return out


def _clear_again(
    folder: Path,
    k: int,
    inputs: dict[str, Any],
    *,
    feeder: Any,
    orders: list[Order],
    participants: dict[str, Participant],
    clearing: Any,
    views: Any,
) -> tuple[bytes, list[str]]:
    """The interval cleared again from the bundle: its result JSON, and what
    differs on the way (a rolled interval's roll inputs and horizon result)."""
    from market.forecast.base import BaseInterval

    market = MarketConfig(**inputs["market"])
    if inputs.get("roll") is not None:
        roll, out = _roll_inputs(folder, k, inputs, orders, participants)
        blob, found = _clear_roll(folder, feeder, roll, market, clearing, views)
        return blob, out + found
    if inputs.get("base") is not None:
        feeder = BaseInterval.from_json(inputs["base"]).view(feeder)
    mechanism = inputs["mechanism"]
    blob = clearing.clear(feeder, orders, participants, market, interval=k, mechanism=mechanism)
    return blob, []


def _orders(rows: Any) -> list[Order]:
    return [Order(o_id, who, Side(side), iv, q, p) for o_id, who, side, iv, q, p in rows]


def _roll_inputs(
    folder: Path,
    k: int,
    inputs: dict[str, Any],
    orders: list[Order],
    participants: dict[str, Participant],
) -> tuple[Any, list[str]]:
    """A rolled interval's roll inputs, read from its files and checked against
    the manifest's digests.

    Raises:
        InputFileError: a roll file cannot be read.
    """
    from market.engine._flex import flex_from_body
    from market.engine.rolling import RollInputs
    from market.forecast.base import BaseInterval

    digests = inputs["roll"]
    n = int(digests["intervals"])
    try:
        later = list(pl.read_parquet(folder / "horizon-orders.parquet").iter_rows())
        flex_rows = json.loads((folder / "flex.json").read_bytes())
        base_rows: list[BaseRow] | None = None
        if digests["bases_sha256"] is not None:
            base_rows = list(pl.read_parquet(folder / "bases.parquet").iter_rows())
        flex = tuple(flex_from_body(body) for _, body in flex_rows)
        versions = tuple(int(v) for v, _ in flex_rows)
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        MarketError,
        pl.exceptions.PolarsError,
    ) as exc:
        raise InputFileError(f"bundle {folder}: cannot read the roll ({exc!r})") from exc
    out = []
    for name, rows, digest in (
        ("horizon-orders.parquet", later, digests["orders_sha256"]),
        ("flex.json", flex_rows, digests["flex_sha256"]),
        ("bases.parquet", base_rows, digests["bases_sha256"]),
    ):
        if rows is not None and rows_sha256(rows) != digest:
            out.append(f"interval {k}: {name} is not the roll input the manifest names")
    books: list[list[Order]] = [orders] + [[] for _ in range(n - 1)]
    for o in _orders(later):
        if not k < o.interval < k + n:
            out.append(f"interval {k}: horizon order {o.order_id!r} is outside the roll")
            continue
        books[o.interval - k].append(o)
    bases = None
    if base_rows is not None:
        label = "" if inputs.get("base") is None else str(inputs["base"]["forecast"])
        by_interval: dict[int, tuple[list[float], list[float]]] = {}
        for iv, _, p, q in base_rows:  # rows are in position order within an interval
            p_mw, q_mvar = by_interval.setdefault(int(iv), ([], []))
            p_mw.append(float(p))
            q_mvar.append(float(q))
        try:
            bases = tuple(
                BaseInterval(label, tuple(by_interval[k + t][0]), tuple(by_interval[k + t][1]))
                for t in range(n)
            )
        except KeyError as exc:
            raise InputFileError(f"bundle {folder}: bases.parquet lacks interval {exc}") from exc
        if inputs.get("base") is not None and bases[0].to_json() != inputs["base"]:
            out.append(f"interval {k}: bases.parquet's first interval is not the manifest's base")
    roll = RollInputs(k, tuple(tuple(b) for b in books), flex, versions, participants, bases)
    return roll, out


def _clear_roll(  # noqa: PLR0917 - one roll's inputs
    folder: Path, feeder: Any, roll: Any, market: MarketConfig, clearing: Any, views: Any
) -> tuple[bytes, list[str]]:
    """Clear the roll again: the firm interval's result JSON, and a difference if
    the horizon result is not the published one."""
    from market.engine.rolling import clear_roll

    n = len(roll.orders)
    if roll.bases is None:
        feeders = [feeder] * n
    elif views is not None and views.feeder is feeder:
        feeders = [views.view(b) for b in roll.bases]
    else:
        feeders = [b.view(feeder) for b in roll.bases]
    result = clear_roll(feeders, roll, market, clearing.options)
    out = []
    published = folder / "horizon.json"
    if not published.exists() or published.read_bytes() != result.to_json():
        out.append(
            f"interval {roll.interval}: the roll cleared again from the inputs is not horizon.json"
        )
    return result.firm.to_json(), out


def _metering_of(metered: pl.DataFrame, version: int) -> dict[str, MeteringRow]:
    rows = metered.filter(pl.col("version") == version).drop("version")
    return {m: (who, imp, exp, c, e) for m, who, imp, exp, c, e in rows.iter_rows()}


def _deltas_of(postings: pl.DataFrame, version: int) -> dict[str, int]:
    return {a: d for _, a, d in postings.filter(pl.col("version") == version).iter_rows()}


def _settlement(
    manifest: dict[str, Any], summary: Any, metered: pl.DataFrame, version: int
) -> IntervalSettlement:
    net: dict[str, int] = {}
    for who, imp, exp, _, _ in _metering_of(metered, version).values():
        net[who] = net.get(who, 0) + exp - imp
    surplus = 0 if summary is None else max(summary.operator_surplus, 0)
    return settle_interval(
        int(manifest["interval"]),
        traded_wh={} if summary is None else dict(summary.traded_wh),
        payments={} if summary is None else dict(summary.payments),
        operator_surplus=surplus,
        metered_wh=net,
        config=MarketConfig(**manifest["inputs"]["market"]),
        operator=manifest["inputs"]["operator"],
        result_hash=b"\x01" * 32,  # not what is checked here: see _manifest_differences
    )


def _posting_differences(
    k: int, manifest: dict[str, Any], frames: dict[str, pl.DataFrame], summary: Any
) -> list[str]:
    """Each posting recomputed: its metering's settlement minus the one before."""
    out: list[str] = []
    previous: IntervalSettlement | None = None
    for meta in manifest["postings"]:
        v = int(meta["version"])
        wanted = _settlement(manifest, summary, frames["metered.parquet"], v)
        expected = dict(wanted.deltas)
        if previous is not None:
            accounts = wanted.deltas.keys() | previous.deltas.keys()
            diff = {a: wanted.deltas.get(a, 0) - previous.deltas.get(a, 0) for a in accounts}
            expected = {a: d for a, d in diff.items() if d}
        got = _deltas_of(frames["postings.parquet"], v)
        for account in sorted(expected.keys() | got.keys()):
            if expected.get(account, 0) != got.get(account, 0):
                out.append(
                    f"interval {k} v{v}: {account} posted {got.get(account, 0)}, "
                    f"recomputed {expected.get(account, 0)}"
                )
        fee = wanted.fee if previous is None else 0
        if int(meta["fee"]) != fee:
            out.append(f"interval {k} v{v}: fee posted {meta['fee']}, recomputed {fee}")
        previous = wanted
    return out


def _manifest_differences(
    k: int,
    folder: Path,
    *,
    manifest: dict[str, Any],
    frames: dict[str, pl.DataFrame],
    clearing_hash: bytes,
    chain: ChainPostings | None,
) -> list[str]:
    """Each posting's manifest rebuilt from the bundle, its hash chained to the
    version before: equal to the hash posted, the published manifest, the chain's."""
    out: list[str] = []
    events = None if chain is None else chain.of(k)
    if events is not None and len(events) != len(manifest["postings"]):
        out.append(
            f"interval {k}: {len(events)} postings on chain, "
            f"{len(manifest['postings'])} in the bundle"
        )
    inputs = manifest["inputs"]
    previous = b""
    for i, meta in enumerate(manifest["postings"]):
        v = int(meta["version"])
        rebuilt = posting_manifest(
            inputs,
            interval=k,
            version=v,
            previous_hash=previous,
            metering=_metering_of(frames["metered.parquet"], v),
            clearing_ok=bool(manifest["clearing"]["ok"]),
            clearing_hash=clearing_hash,
            deltas=_deltas_of(frames["postings.parquet"], v),
            fee=int(meta["fee"]),
        )
        digest = manifest_hash(rebuilt)
        if digest.hex() != meta["result_hash"]:
            out.append(
                f"interval {k} v{v}: the manifest rebuilt from the bundle hashes to "
                f"0x{digest.hex()}, the posting carried 0x{meta['result_hash']}"
            )
        out += _published_differences(k, v, folder / f"posting-v{v}.json", rebuilt)
        if events is not None and i < len(events):
            out += _event_differences(k, v, chain, events[i], digest=digest, rebuilt=rebuilt)
        previous = digest
    return out


def _published_differences(k: int, v: int, path: Path, rebuilt: dict[str, Any]) -> list[str]:
    """Where the published manifest of posting ``v`` says something the bundle does not."""
    try:
        published = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return [f"interval {k} v{v}: {path.name} is missing or does not parse"]
    out = []
    for where, a, b in _walk("", published, rebuilt):
        out.append(f"interval {k} v{v}: {path.name} says {where} = {a!r}, the bundle gives {b!r}")
    return out


def _walk(where: str, a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(a.keys() | b.keys()):
            out += _walk(f"{where}.{key}" if where else key, a.get(key), b.get(key))
        return out
    return [] if canonical(a) == canonical(b) else [(where, a, b)]


def _event_differences(
    k: int, v: int, chain: Any, event: Any, *, digest: bytes, rebuilt: dict[str, Any]
) -> list[str]:
    out = []
    if event.result_hash != "0x" + digest.hex():
        out.append(
            f"interval {k} v{v}: the chain holds hash {event.result_hash}, the manifest "
            f"rebuilt from the bundle hashes to 0x{digest.hex()}"
        )
    on_chain = chain.deltas(event)
    posted = rebuilt["outputs"]["deltas"]
    for account in sorted(on_chain.keys() | posted.keys()):
        if on_chain.get(account, 0) != posted.get(account, 0):
            out.append(
                f"interval {k} v{v}: {account} moved {on_chain.get(account, 0)} on chain, "
                f"{posted.get(account, 0)} in the bundle"
            )
    if event.fee != rebuilt["outputs"]["fee"]:
        out.append(f"interval {k} v{v}: chain fee {event.fee}, bundle {rebuilt['outputs']['fee']}")
    return out


def _fill_differences(k: int, published: Path, recomputed: bytes, clearing: Any) -> list[str]:
    try:
        fills = clearing.decode(published.read_bytes()).fills
        old = {(f.participant, f.order_id): f for f in fills}
    except Exception:  # a tampered (or missing) result may not even parse
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
