"""The SQLite journal: durable before acknowledged, replayed in order, fails loudly."""

from __future__ import annotations

import sqlite3
from concurrent.futures import wait
from pathlib import Path

import pytest

from market.engine.journal import Journal, canonical_json
from market.errors import JournalError


def test_entries_come_back_in_order_after_reopening(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    futures = [
        journal.append("order", i, {"n": i, "z": [1, 2]}, blob=bytes([i]), nonce=f"a:n{i}:{i}")[1]
        for i in range(200)
    ]
    wait(futures, timeout=30)
    assert [f.result() for f in futures] == list(range(1, 201))
    assert journal.durable_seq == 200
    assert journal.when_durable(150).result(5) == 150
    journal.close()

    again = Journal(tmp_path / "j.db")
    entries = list(again.entries())
    assert [e.seq for e in entries] == list(range(1, 201))
    assert entries[7].body == {"n": 7, "z": [1, 2]}
    assert entries[7].blob == b"\x07"
    assert entries[7].nonce == "a:n7:7"
    assert again.last_seq == 200
    assert again.append("next", 0, {})[1].result(5) == 201
    again.close()


def test_when_durable_waits_for_the_commit(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.append("a", 0, {})
    later = journal.when_durable(2)
    journal.append("b", 0, {})
    assert later.result(5) == 2
    journal.close()


def test_a_failed_write_fails_every_pending_and_later_entry(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.append("a", 0, {})[1].result(5)
    # a row with the next seq already present makes the writer's INSERT fail
    with sqlite3.connect(tmp_path / "j.db") as other:
        other.execute("INSERT INTO journal VALUES (2, 'x', 0, '{}', NULL, NULL)")
    _, future = journal.append("b", 0, {})
    with pytest.raises(JournalError, match="write failed"):
        future.result(5)
    with pytest.raises(JournalError):
        journal.append("c", 0, {})
    journal.close()


def test_canonical_json_is_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == '{"a":[1,{"c":3,"d":2}],"b":1}'


def test_nonces_are_kept_until_they_expire_and_are_not_entries(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    entry, done = journal.append("order", 1, {"a": 1}, nonce="0xabc:n-1:1000")
    kept = [journal.remember_nonce(f"0xabc:n-{i}:1000", 5_000 + i) for i in range(3)]
    wait([done, *kept])
    # on disk; n-1 costs no row: the order entry carries it (its future is the entry's seq)
    assert [f.result() for f in kept] == [0, entry.seq, 0]
    journal.close()
    reopened = Journal(tmp_path / "j.db")
    assert sorted(reopened.nonces(now_ms=5_001)) == ["0xabc:n-2:1000"]
    assert sorted(reopened.nonces(now_ms=0)) == ["0xabc:n-0:1000", "0xabc:n-2:1000"]
    assert [e.seq for e in reopened.entries()] == [entry.seq]  # replay never sees them
    reopened.close()
