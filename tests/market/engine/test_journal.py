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


def test_a_group_commits_in_one_transaction_and_resolves_to_its_last_seq(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    with journal.group():
        futures = [journal.append("order", 0, {"n": i})[1] for i in range(5)]
        with journal.group():  # a nested group joins the outer one
            futures.append(journal.append("order", 0, {"n": 5})[1])
        assert journal.durable_seq == 0  # nothing reaches the writer before the block ends
    assert {f.result(5) for f in futures} == {6}
    assert journal.durable_seq == 6
    journal.close()


def test_a_failed_group_write_fails_its_futures_and_the_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.append("a", 0, {})[1].result(5)
    with sqlite3.connect(tmp_path / "j.db") as other:
        other.execute("INSERT INTO journal VALUES (3, 'x', 0, '{}', NULL, NULL)")
    with journal.group():
        futures = [journal.append("order", 0, {"n": i})[1] for i in range(3)]
    for future in futures:
        with pytest.raises(JournalError, match="write failed"):
            future.result(5)
    assert journal.when_durable(2).exception(5) is not None  # the writer failed loudly
    with sqlite3.connect(tmp_path / "j.db") as other:  # all or nothing: seq 2 is not there
        assert other.execute("SELECT seq FROM journal ORDER BY seq").fetchall() == [(1,), (3,)]
    journal.close()


def test_durable_resolves_every_waiter_of_a_commit_with_its_own_outcome() -> None:
    import asyncio
    import threading
    from concurrent.futures import Future

    from market.engine.journal import durable

    async def scenario() -> list[object]:
        futures: list[Future[int]] = [Future() for _ in range(50)]
        waits = [asyncio.ensure_future(durable(f)) for f in futures]
        await asyncio.sleep(0)
        waits[3].cancel()  # a handler whose caller went away

        def commit() -> None:  # the writer thread completes them together
            for i, f in enumerate(futures):
                if i == 7:
                    f.set_exception(JournalError("write failed"))
                else:
                    f.set_result(i)

        thread = threading.Thread(target=commit)
        thread.start()
        outcomes = await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 30)
        thread.join()
        return outcomes

    outcomes = asyncio.run(scenario())
    assert isinstance(outcomes[3], asyncio.CancelledError)
    assert isinstance(outcomes[7], JournalError)
    assert [o for i, o in enumerate(outcomes) if i not in (3, 7)] == [
        i for i in range(50) if i not in (3, 7)
    ]
