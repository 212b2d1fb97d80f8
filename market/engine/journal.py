"""The engine's journal: every accepted input, durable before it is acknowledged.

One SQLite database in WAL mode holds one table::

    journal(seq INTEGER PRIMARY KEY, kind TEXT, at_ms INTEGER, body TEXT, blob BLOB, nonce TEXT)

``seq`` numbers entries densely from 1 in the order the engine applied them;
``body`` is canonical JSON; ``blob`` carries raw bytes (a signed reading
batch, a clearing result); ``nonce`` is ``address:nonce:timestamp_ms`` of the
signed request that made the entry, so that nonces survive a restart.

A second table keeps the nonce of *every* signed request, journaled or not
(reads, refused requests), until it expires::

    nonces(tag TEXT PRIMARY KEY, expires_ms INTEGER)

Its rows go through the same writer thread and commit in the same
transactions as journal entries (:meth:`Journal.remember_nonce`), so keeping
a nonce costs no extra fsync under load; expired rows are deleted as new ones
are written. Nonce rows are not entries: replay never sees them.

Writes go through one writer thread that commits whatever has queued up in
one transaction (group commit) with ``synchronous=FULL``: a commit is on disk
when its futures resolve, and hundreds of concurrent order submissions share
one fsync. A failed write is fatal: the journal stops accepting entries and
every pending future fails with :class:`~market.errors.JournalError`.

Entries appended inside :meth:`Journal.group` (one SubmitOrders request's
orders) reach the writer as one item, so they commit in one transaction: all
of them or none are on disk after a crash.

An asyncio handler waits for a durability future with :func:`durable`, which
wakes the event loop once for every future that completed together (one
commit) instead of once per future as :func:`asyncio.wrap_future` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from market.errors import JournalError

__all__ = ["Entry", "Journal", "canonical_json", "durable"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq   INTEGER PRIMARY KEY,
    kind  TEXT    NOT NULL,
    at_ms INTEGER NOT NULL,
    body  TEXT    NOT NULL,
    blob  BLOB,
    nonce TEXT
)
"""


_NONCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    tag        TEXT    PRIMARY KEY,
    expires_ms INTEGER NOT NULL
)
"""

_PRUNE_EVERY = 1000  # nonce rows written between deletions of expired ones
_RECENT_NONCES = 65_536  # nonce tags of the latest entries, looked up before writing a row


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal entry.

    Attributes:
        seq: position in the journal, from 1.
        kind: what the entry records (``order``, ``gate``, ``readings``, ...).
        at_ms: engine clock when it happened, Unix ms.
        body: the entry's fields (JSON object).
        blob: raw bytes, if the entry carries any.
        nonce: ``address:nonce:timestamp_ms`` of the request that made it, if signed.
    """

    seq: int
    kind: str
    at_ms: int
    body: Mapping[str, Any]
    blob: bytes | None = None
    nonce: str | None = None


@dataclass(slots=True)
class _Pending:
    entry: Entry
    future: Future[int] = field(default_factory=Future)


@dataclass(slots=True)
class _Nonce:
    tag: str
    expires_ms: int
    future: Future[int] = field(default_factory=Future)


@dataclass(slots=True)
class _Group:
    pendings: list[_Pending]
    future: Future[int]  # every entry's: it resolves to the group's last seq


_STOP = object()


class Journal:
    """An append-only SQLite journal with a group-committing writer thread.

    Args:
        path: database file (created if missing).
        synchronous: SQLite ``synchronous`` pragma: ``FULL`` (durable against
            power loss, the default) or ``NORMAL`` (durable against a process
            crash only).
        on_durable: called from the writer thread with the highest committed
            seq after every commit.

    Raises:
        JournalError: the database cannot be opened or has another schema.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        on_durable: Callable[[int], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._on_durable = on_durable
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute(_SCHEMA)
            self._db.execute(_NONCE_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: cannot open: {exc}") from exc
        if str(mode).lower() != "wal":
            raise JournalError(f"journal {self.path}: WAL mode refused (got {mode!r})")
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        self._last_seq: int = row[0]
        self._durable_seq: int = row[0]
        self._durable = threading.Condition()
        self._queue: queue.SimpleQueue[_Pending | _Group | _Nonce | object] = queue.SimpleQueue()
        self._group: _Group | None = None
        self._nonces_written = 0
        self._appended_nonces: dict[str, int] = {}  # nonce tag -> seq, the latest entries
        self._failed: JournalError | None = None
        self._watchers: list[tuple[int, int, Future[int]]] = []  # heap of (seq, tie, future)
        self._tie = itertools.count()
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="gridex-journal", daemon=True)
        self._writer.start()

    @property
    def last_seq(self) -> int:
        """Seq of the latest entry appended (durable or not)."""
        return self._last_seq

    @property
    def durable_seq(self) -> int:
        """Seq of the latest entry committed to disk."""
        return self._durable_seq

    def entries(self) -> Iterator[Entry]:
        """Every committed entry in seq order (for replay; call before appending)."""
        cursor = self._db.execute(
            "SELECT seq, kind, at_ms, body, blob, nonce FROM journal ORDER BY seq"
        )
        for seq, kind, at_ms, body, blob, nonce in cursor:
            try:
                parsed = json.loads(body)
            except json.JSONDecodeError as exc:
                raise JournalError(f"journal entry {seq}: body is not JSON: {exc}") from exc
            yield Entry(seq, kind, at_ms, parsed, blob, nonce)

    def append(
        self,
        kind: str,
        at_ms: int,
        body: Mapping[str, Any],
        *,
        blob: bytes | None = None,
        nonce: str | None = None,
    ) -> tuple[Entry, Future[int]]:
        """Queue an entry; the future resolves to its seq once it is on disk.

        The caller serialises appends (the engine holds its lock), so seq
        order is the order of calls.

        Raises:
            JournalError: the journal is closed or a previous write failed.
        """
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise JournalError("journal: closed")
        self._last_seq += 1
        entry = Entry(self._last_seq, kind, at_ms, dict(body), blob, nonce)
        if nonce:
            self._appended_nonces[nonce] = entry.seq
            if len(self._appended_nonces) > _RECENT_NONCES:
                del self._appended_nonces[next(iter(self._appended_nonces))]
        if self._group is not None:  # one future for the group: a Future costs ~3-15 us
            pending = _Pending(entry, self._group.future)
            self._group.pendings.append(pending)
        else:
            pending = _Pending(entry)
            self._queue.put(pending)
        return entry, pending.future

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Commit every entry appended inside the block in one transaction.

        The entries go to the writer when the block ends (also when it raises:
        they were applied, so they must be journaled). They share one future,
        which resolves to the last seq of the group. Nested blocks join the
        outer one. Hold the engine's lock for the whole block, as for
        :meth:`append`.
        """
        if self._group is not None:
            yield
            return
        self._group = _Group([], Future())
        try:
            yield
        finally:
            group, self._group = self._group, None
            if group.pendings:
                self._queue.put(group)

    def remember_nonce(self, tag: str, expires_ms: int) -> Future[int]:
        """Keep a signed request's nonce tag until ``expires_ms`` (wall Unix ms).

        The future resolves once the nonce is on disk. A tag that an entry
        appended recently already carries costs no row: the future is that
        entry's durability. Otherwise a row is written, in the same group
        commit as the entries queued with it.

        Raises:
            JournalError: the journal is closed or a previous write failed.
        """
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise JournalError("journal: closed")
        seq = self._appended_nonces.get(tag)
        if seq is not None:
            return self.when_durable(seq)
        pending = _Nonce(tag, expires_ms)
        self._queue.put(pending)
        return pending.future

    def nonces(self, now_ms: int) -> list[str]:
        """Tags of the nonces kept that have not expired at ``now_ms`` (call before appending)."""
        cursor = self._db.execute("SELECT tag FROM nonces WHERE expires_ms > ?", (now_ms,))
        return [tag for (tag,) in cursor]

    def wait_durable(self, seq: int, timeout_s: float | None = None) -> bool:
        """Block until entry ``seq`` is on disk; False on timeout.

        Raises:
            JournalError: a write failed.
        """
        with self._durable:
            ok = self._durable.wait_for(
                lambda: self._durable_seq >= seq or self._failed is not None, timeout_s
            )
        if self._failed is not None:
            raise self._failed
        return ok

    def when_durable(self, seq: int) -> Future[int]:
        """A future that resolves to ``seq`` once entry ``seq`` is on disk."""
        future: Future[int] = Future()
        with self._durable:
            if self._failed is not None:
                future.set_exception(self._failed)
            elif self._durable_seq >= seq:
                future.set_result(seq)
            else:
                heapq.heappush(self._watchers, (seq, next(self._tie), future))
        return future

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the database."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join()
        self._db.close()

    def _fail_all(self, batch: list[_Pending], nonces: list[_Nonce], error: JournalError) -> None:
        for n in nonces:
            n.future.set_exception(error)
        for p in batch:
            with contextlib.suppress(InvalidStateError):  # a group's shared future, a cancelled one
                p.future.set_exception(error)
        with self._durable:
            watchers, self._watchers = self._watchers, []
            self._durable.notify_all()
        for _, _, future in watchers:
            future.set_exception(error)

    def _write_nonces(self, nonces: list[_Nonce]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO nonces VALUES (?, ?)", [(n.tag, n.expires_ms) for n in nonces]
        )
        self._nonces_written += len(nonces)
        if self._nonces_written >= _PRUNE_EVERY:
            self._nonces_written = 0
            now_ms = time.time_ns() // 1_000_000  # expiries are wall-clock times
            self._db.execute("DELETE FROM nonces WHERE expires_ms <= ?", (now_ms,))

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: list[_Pending] = []
            nonces: list[_Nonce] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Pending):
                    batch.append(item)
                elif isinstance(item, _Group):
                    batch.extend(item.pendings)
                elif isinstance(item, _Nonce):
                    nonces.append(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch or nonces:
                self._commit(batch, nonces)

    def _commit(self, batch: list[_Pending], nonces: list[_Nonce] | None = None) -> None:
        nonces = nonces or []
        if self._failed is None:
            rows = [
                (
                    p.entry.seq,
                    p.entry.kind,
                    p.entry.at_ms,
                    canonical_json(p.entry.body),
                    p.entry.blob,
                    p.entry.nonce,
                )
                for p in batch
            ]
            try:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT INTO journal VALUES (?, ?, ?, ?, ?, ?)", rows)
                if nonces:
                    self._write_nonces(nonces)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                logger.critical("journal %s: write failed: %s", self.path, exc)
                self._failed = JournalError(f"journal {self.path}: write failed: {exc}")
        if self._failed is not None:
            self._fail_all(batch, nonces, self._failed)
            return
        for n in nonces:
            n.future.set_result(0)
        if not batch:
            return
        last = batch[-1].entry.seq
        ready: list[tuple[int, int, Future[int]]] = []
        with self._durable:
            self._durable_seq = last
            while self._watchers and self._watchers[0][0] <= last:
                ready.append(heapq.heappop(self._watchers))
            self._durable.notify_all()
        # A caller that gave up (a gRPC deadline) may have cancelled its future;
        # that must not kill the journal thread. Last first: a group's shared
        # future takes the group's last seq.
        for p in reversed(batch):
            _resolve(p.future, p.entry.seq)
        for seq, _, future in ready:
            _resolve(future, seq)
        if self._on_durable is not None:
            try:
                self._on_durable(last)
            except Exception:  # a listener's bug must not stop the journal
                logger.exception("journal on_durable callback failed")


def _resolve(future: Future[int], seq: int) -> None:
    """Set ``future``'s result unless its caller cancelled it meanwhile."""
    with contextlib.suppress(InvalidStateError):  # cancelled by a caller that stopped waiting
        future.set_result(seq)


class _Waker:
    """Resolves the asyncio waits of one event loop for durability futures, in bursts.

    A concurrent future's completion (in the writer thread) schedules one
    drain on the loop unless one is already due; the drain resolves every
    wait whose future is done by then. One commit that completes hundreds of
    futures thus costs the loop one wake-up, not hundreds.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._waiting: list[tuple[Future[Any], asyncio.Future[Any]]] = []
        self._due = False

    def wait(self, future: Future[Any]) -> asyncio.Future[Any]:
        waiter = self._loop.create_future()
        self._waiting.append((future, waiter))
        future.add_done_callback(self._on_done)
        return waiter

    def _on_done(self, _: Future[Any]) -> None:  # any thread
        if not self._due:
            self._due = True
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:  # the loop's thread
        self._due = False  # before the scan: a future done after it schedules another drain
        still: list[tuple[Future[Any], asyncio.Future[Any]]] = []
        for future, waiter in self._waiting:
            if not future.done():
                still.append((future, waiter))
            elif waiter.done():  # the waiting task was cancelled
                continue
            elif future.cancelled():
                waiter.cancel()
            elif (exc := future.exception()) is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(future.result())
        self._waiting = still


_WAKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waker] = weakref.WeakKeyDictionary()


async def durable(future: Future[int]) -> int:
    """Wait on the running loop for a journal future (see :class:`_Waker`); its result.

    Raises:
        JournalError: the write failed.
    """
    if future.done():
        return future.result()
    loop = asyncio.get_running_loop()
    waker = _WAKERS.get(loop)
    if waker is None:
        waker = _WAKERS[loop] = _Waker(loop)
    result: int = await waker.wait(future)
    return result
