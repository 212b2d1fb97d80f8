"""``gridex-meter status``: what the gateway's buffer holds, and whether a ``run`` holds it.

Reads the buffer file without changing it (it may be open in a running
``gridex-meter run``)::

    gridex-meter status --key gateway.key
    gridex-meter status --buffer /var/lib/gridex/home-1.sqlite --meter-id home-1

Prints the meter, the process running on the buffer (if any), the readings
taken, acknowledged, waiting and quarantined, what the agent last learnt of
the engine's clock, and the agent's latest orders. Exit codes: 0 done, 1 no
such buffer or an unreadable one, 2 usage.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``status`` subcommand."""
    parser = subparsers.add_parser(
        "status",
        help="show the gateway's buffer: readings waiting, acknowledged, quarantined, orders",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--key", type=Path, metavar="KEYFILE", help="gateway key (for the id)")
    parser.add_argument("--meter-id", help="meter id as registered (default: the key's address)")
    parser.add_argument("--buffer", type=Path, metavar="PATH", help="buffer file (default: as run)")
    parser.add_argument(
        "--orders", type=int, default=5, metavar="N", help="latest agent orders to list (5)"
    )
    parser.set_defaults(func=run)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _table(db: sqlite3.Connection, name: str) -> bool:
    row = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,))
    return row.fetchone() is not None


def run(args: argparse.Namespace) -> int:
    """Print the buffer's state; exit 1 with one line when there is no readable buffer."""
    from meter_adapter.commands.run import default_buffer_path
    from meter_adapter.errors import MeterError
    from meter_adapter.uplink.keys import load_key_file
    from meter_adapter.uplink.lock import holder_pid

    prog = "gridex-meter status"
    meter_id = args.meter_id
    if args.buffer is None and meter_id is None:
        if args.key is None:
            print(f"{prog}: give --key, --meter-id or --buffer", file=sys.stderr)
            return 2
        try:
            meter_id = load_key_file(args.key).address
        except MeterError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 1
    path = args.buffer or default_buffer_path(meter_id)
    if not path.exists():
        print(f"{prog}: no buffer at {path} (gridex-meter run has not run for it)", file=sys.stderr)
        return 1
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        lines = _describe(db, path, args.orders, holder_pid(path))
        db.close()
    except sqlite3.Error as exc:
        print(f"{prog}: buffer {path}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _describe(db: sqlite3.Connection, path: Path, n_orders: int, pid: int | None) -> list[str]:
    head = db.execute(
        "SELECT meter_id, last_seq, last_timestamp_ms, acked_seq FROM head"
    ).fetchone()
    if head is None:
        raise sqlite3.DatabaseError("not a gridex-meter buffer (no head row)")
    meter_id, last_seq, last_ts, acked = head
    (pending,) = db.execute("SELECT COUNT(*) FROM pending").fetchone()
    (quarantined,) = db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
    running = "not running" if pid is None else f"in use by gridex-meter run, PID {pid}"
    lines = [
        f"meter {meter_id}: buffer {path} ({running})",
        f"latest reading seq {last_seq}"
        + (f" at {_iso(last_ts)}" if last_ts > 0 else " (none taken yet)"),
        f"acknowledged up to seq {acked}; {_count(pending, 'reading')} waiting, "
        f"{quarantined} quarantined",
    ]
    for seq, code, message in db.execute(
        "SELECT seq, code, message FROM quarantine ORDER BY seq DESC LIMIT 3"
    ):
        lines.append(f"  quarantined seq {seq}: code {code}: {message}")
    meta = dict(db.execute("SELECT key, value FROM meta"))
    if "events.now_ms" in meta:
        lines.append(
            f"engine clock as last seen: {_iso(int(meta['events.now_ms']))}; "
            f"latest gate closed: interval {meta.get('events.gate_closed', '-')}"
        )
    if _table(db, "agent_orders"):
        rows = db.execute(
            "SELECT interval, side, quantity_wh, limit_price, status, detail FROM agent_orders"
            " ORDER BY interval DESC LIMIT ?",
            (max(0, n_orders),),
        ).fetchall()
        lines.append(f"agent orders (latest {len(rows)}):" if rows else "agent orders: none")
        for interval, side, quantity, price, status, detail in rows:
            what = f"{side} {quantity} Wh at {price}/kWh" if side else "no order due"
            note = f" ({detail})" if detail else ""
            lines.append(f"  interval {interval}: {what}, {status}{note}")
    return lines
