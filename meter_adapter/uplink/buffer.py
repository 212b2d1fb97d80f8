"""The gateway's on-disk buffer of readings the engine has not acknowledged (SQLite).

One buffer file belongs to one meter. It numbers the readings (``seq``, +1 per
reading, never reused: the counter lives in the same file), keeps every
reading until the engine acknowledges it, and drops only readings with
``seq <= ack_seq`` of a successful ``BatchAck``. A reading the engine refuses
for a rule it breaks is never dropped silently: it moves to the
``quarantine`` table with the engine's status code and message
(:meth:`ReadingBuffer.quarantined` lists them).

Durability: the file is in WAL mode. With ``synchronous="FULL"`` (the default)
every append is on disk before :meth:`ReadingBuffer.append` returns, so a
power cut loses nothing; with ``"NORMAL"`` an append survives a crash of the
process but not of the operating system, and costs no fsync (for fleets of
simulated gateways in one process). The path ``":memory:"`` keeps the buffer in
RAM and gives up durability altogether; it must be asked for explicitly.

A fresh buffer starts numbering at ``first_seq``; by default that is the
wall clock's Unix time in ms (even when the market runs on a simulated clock),
which is larger than any seq a previous buffer of the same meter can have used
(as long as it took fewer than 1000 readings a second), so a gateway whose
buffer was lost never collides with readings the engine already holds; the
engine records the jump as a gap.

SQLite calls run on the caller's thread (the event loop): each append is a
few tens of µs with ``NORMAL``, plus one fsync with ``FULL``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from meter_adapter.errors import MeterConfigError

__all__ = ["MEMORY", "BufferedReading", "QuarantinedReading", "ReadingBuffer"]

logger = logging.getLogger(__name__)

MEMORY = ":memory:"
"""The buffer path that keeps readings in RAM only: not durable, for tests and benchmarks."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS head (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    meter_id TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    last_timestamp_ms INTEGER NOT NULL,
    last_import_wh INTEGER NOT NULL,
    last_export_wh INTEGER NOT NULL,
    acked_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY,
    timestamp_ms INTEGER NOT NULL,
    energy_import_wh INTEGER NOT NULL,
    energy_export_wh INTEGER NOT NULL,
    power_w INTEGER NOT NULL,
    production_wh INTEGER
);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    timestamp_ms INTEGER NOT NULL,
    energy_import_wh INTEGER NOT NULL,
    energy_export_wh INTEGER NOT NULL,
    power_w INTEGER NOT NULL,
    production_wh INTEGER,
    code INTEGER NOT NULL,
    message TEXT NOT NULL,
    quarantined_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_COLUMNS = "seq, timestamp_ms, energy_import_wh, energy_export_wh, power_w, production_wh"


@dataclass(frozen=True, slots=True)
class BufferedReading:
    """A reading as buffered and sent (the fields of ``gridex.v1.Reading``).

    Attributes:
        seq: The meter's reading counter, +1 per reading.
        timestamp_ms: When the reading was taken, Unix ms.
        energy_import_wh: Cumulative energy drawn from the grid, Wh.
        energy_export_wh: Cumulative energy fed into the grid, Wh.
        power_w: Net active power, W, positive into the grid.
        production_wh: Cumulative energy of the inverter behind the meter, Wh,
            where the source reads one (reported, not settled); else None.
    """

    seq: int
    timestamp_ms: int
    energy_import_wh: int
    energy_export_wh: int
    power_w: int
    production_wh: int | None = None


@dataclass(frozen=True, slots=True)
class QuarantinedReading:
    """A reading the engine refused, kept with the reason.

    Attributes:
        reading: The reading.
        code: The gRPC status code of the refusal (3 = INVALID_ARGUMENT).
        message: The engine's message, naming the field and the rule.
        quarantined_at_ms: Wall-clock time of the quarantine, Unix ms.
    """

    reading: BufferedReading
    code: int
    message: str
    quarantined_at_ms: int


class ReadingBuffer:
    """Readings of one meter waiting for the engine's acknowledgement.

    Args:
        path: The SQLite file (created if missing), or :data:`MEMORY`.
        meter_id: The meter this buffer belongs to; an existing file of another
            meter is refused.
        first_seq: Seq of the first reading of a fresh buffer (default: now in
            Unix ms, see the module docstring). Ignored for an existing file.
        synchronous: ``"FULL"`` (power-cut safe) or ``"NORMAL"`` (process-crash safe).

    Raises:
        MeterConfigError: The file belongs to another meter, ``first_seq`` is
            below 1, or the file is not a readable buffer.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        meter_id: str,
        first_seq: int | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        if not meter_id:
            raise MeterConfigError("meter_id must not be empty")
        if synchronous not in ("FULL", "NORMAL"):
            raise MeterConfigError(f"synchronous must be FULL or NORMAL, got {synchronous!r}")
        self.path = str(path)
        self.meter_id = meter_id
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            if self.path != MEMORY:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(_SCHEMA)
            head = self._db.execute(
                "SELECT meter_id, last_seq, last_timestamp_ms, last_import_wh, last_export_wh,"
                " acked_seq FROM head"
            ).fetchone()
            if head is None:
                start = first_seq if first_seq is not None else time.time_ns() // 1_000_000
                if start < 1:
                    raise MeterConfigError(f"first_seq must be at least 1, got {start}")
                head = (meter_id, start - 1, -(2**62), 0, 0, 0)
                self._db.execute("INSERT INTO head VALUES (0, ?, ?, ?, ?, ?, ?)", head)
            (pending,) = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()
        except sqlite3.Error as exc:
            raise MeterConfigError(f"buffer {self.path}: {exc}") from exc
        if head[0] != meter_id:
            self._db.close()
            raise MeterConfigError(
                f"buffer {self.path} belongs to meter {head[0]!r}, not {meter_id!r}"
            )
        _, self._last_seq, self._last_ts, self._last_imp, self._last_exp, self._acked = head
        self._pending = int(pending)

    # -- state -------------------------------------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection (the agent keeps its small state in the same file)."""
        return self._db

    @property
    def last_seq(self) -> int:
        """Seq of the latest appended reading (``first_seq - 1`` before the first)."""
        return int(self._last_seq)

    @property
    def last_counters(self) -> tuple[int, int]:
        """Import and export counters of the latest appended reading, Wh (0, 0 before any)."""
        return int(self._last_imp), int(self._last_exp)

    @property
    def acked_seq(self) -> int:
        """Highest ``ack_seq`` the engine has confirmed (0 before the first ack)."""
        return int(self._acked)

    @property
    def pending_count(self) -> int:
        """Readings waiting for an acknowledgement."""
        return self._pending

    def recount(self) -> int:
        """Count the waiting readings in the file again; return the count.

        The count is kept in memory; it can only disagree with the file when
        something else changed the file (a second process on the same buffer,
        which ``gridex-meter run``'s lock prevents). A disagreement is logged.
        """
        (count,) = self._db.execute("SELECT COUNT(*) FROM pending").fetchone()
        if count != self._pending:
            logger.warning(
                "buffer %s: %d readings waiting in the file, %d counted; another process "
                "changed it?",
                self.path,
                count,
                self._pending,
            )
            self._pending = int(count)
        return int(count)

    def accepts(
        self, timestamp_ms: int, energy_import_wh: int, energy_export_wh: int
    ) -> str | None:
        """Why a reading cannot follow the latest appended one, or None if it can.

        The engine refuses a reading whose timestamp does not increase or whose
        counters decrease; such a reading is not worth buffering.
        """
        if timestamp_ms <= self._last_ts:
            return f"timestamp {timestamp_ms} ms is not after the previous {self._last_ts} ms"
        if energy_import_wh < self._last_imp or energy_export_wh < self._last_exp:
            return (
                f"counters went down: import {self._last_imp} -> {energy_import_wh} Wh, "
                f"export {self._last_exp} -> {energy_export_wh} Wh"
            )
        return None

    # -- writing -----------------------------------------------------------------------

    def append(
        self,
        timestamp_ms: int,
        energy_import_wh: int,
        energy_export_wh: int,
        power_w: int,
        production_wh: int | None = None,
    ) -> BufferedReading:
        """Number a reading and store it durably (see the module docstring).

        Raises:
            ValueError: The reading cannot follow the previous one (:meth:`accepts`).
        """
        problem = self.accepts(timestamp_ms, energy_import_wh, energy_export_wh)
        if problem is not None:
            raise ValueError(problem)
        reading = BufferedReading(
            self._last_seq + 1,
            timestamp_ms,
            energy_import_wh,
            energy_export_wh,
            power_w,
            production_wh,
        )
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute(f"INSERT INTO pending ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", _row(reading))
            db.execute(
                "UPDATE head SET last_seq = ?, last_timestamp_ms = ?, last_import_wh = ?,"
                " last_export_wh = ?",
                (reading.seq, timestamp_ms, energy_import_wh, energy_export_wh),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._last_seq, self._last_ts = reading.seq, timestamp_ms
        self._last_imp, self._last_exp = energy_import_wh, energy_export_wh
        self._pending += 1
        return reading

    def acknowledge(self, ack_seq: int) -> int:
        """Drop every pending reading with ``seq <= ack_seq``; return how many were dropped."""
        if ack_seq <= self._acked and self._pending == 0:
            return 0
        db = self._db
        db.execute("BEGIN")
        try:
            dropped = db.execute("DELETE FROM pending WHERE seq <= ?", (ack_seq,)).rowcount
            if ack_seq > self._acked:
                db.execute("UPDATE head SET acked_seq = ?", (ack_seq,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._acked = max(self._acked, ack_seq)
        self._pending -= dropped
        return int(dropped)

    def quarantine(self, reading: BufferedReading, *, code: int, message: str) -> None:
        """Move a pending reading the engine refuses to the quarantine table."""
        db = self._db
        db.execute("BEGIN")
        try:
            moved = db.execute("DELETE FROM pending WHERE seq = ?", (reading.seq,)).rowcount
            db.execute(
                f"INSERT OR REPLACE INTO quarantine ({_COLUMNS}, code, message, quarantined_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*_row(reading), code, message, time.time_ns() // 1_000_000),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._pending -= moved

    # -- reading -----------------------------------------------------------------------

    def pending(self, limit: int, *, upto: int | None = None) -> list[BufferedReading]:
        """The oldest pending readings in seq order, at most ``limit``, none above ``upto``."""
        if upto is None:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM pending ORDER BY seq LIMIT ?", (limit,)
            )
        else:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM pending WHERE seq <= ? ORDER BY seq LIMIT ?",
                (upto, limit),
            )
        return [BufferedReading(*row) for row in rows]

    def pending_upto(self, upto: int) -> int:
        """Pending readings with ``seq <= upto``."""
        if upto >= self._last_seq:
            return self._pending
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM pending WHERE seq <= ?", (upto,)
        ).fetchone()
        return int(count)

    def quarantined(self) -> list[QuarantinedReading]:
        """Every quarantined reading, in seq order."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS}, code, message, quarantined_at_ms FROM quarantine ORDER BY seq"
        )
        return [QuarantinedReading(BufferedReading(*r[:6]), r[6], r[7], r[8]) for r in rows]

    def get_meta(self, key: str) -> str | None:
        """A value stored with :meth:`set_meta`, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, items: Iterable[tuple[str, str]]) -> None:
        """Store small key/value pairs atomically (the agent's progress)."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", items)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def delete_meta(self, keys: Iterable[str]) -> None:
        """Remove the named entries of the small key-value table (absent ones are ignored)."""
        self._db.executemany("DELETE FROM meta WHERE key = ?", [(k,) for k in keys])

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._db.close()


def _row(reading: BufferedReading) -> tuple[int, int, int, int, int, int | None]:
    """The reading's values in column order."""
    return (
        reading.seq,
        reading.timestamp_ms,
        reading.energy_import_wh,
        reading.energy_export_wh,
        reading.power_w,
        reading.production_wh,
    )
