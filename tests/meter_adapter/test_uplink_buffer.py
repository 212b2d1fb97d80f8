"""The SQLite reading buffer: numbering, durability across reopen, ack and quarantine rules."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meter_adapter.errors import MeterConfigError
from meter_adapter.uplink.backoff import Backoff, BackoffPolicy
from meter_adapter.uplink.buffer import MEMORY, BufferedReading, ReadingBuffer


def fill(buffer: ReadingBuffer, n: int, *, t0: int = 1_000_000) -> list[BufferedReading]:
    return [buffer.append(t0 + 1000 * i, 10 * i, 5 * i, 100) for i in range(n)]


def test_numbers_readings_from_first_seq(tmp_path: Path) -> None:
    buffer = ReadingBuffer(tmp_path / "b.sqlite", meter_id="m1", first_seq=1)
    readings = fill(buffer, 3)
    assert [r.seq for r in readings] == [1, 2, 3]
    assert buffer.last_seq == 3
    assert buffer.pending_count == 3
    assert buffer.pending(10) == readings
    assert buffer.pending(2) == readings[:2]
    assert buffer.pending(10, upto=2) == readings[:2]


def test_default_first_seq_is_above_any_earlier_buffers_seqs(tmp_path: Path) -> None:
    before_ms = time.time_ns() // 1_000_000
    buffer = ReadingBuffer(tmp_path / "b.sqlite", meter_id="m1")
    assert fill(buffer, 1)[0].seq >= before_ms


def test_survives_reopen_and_keeps_counting(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = ReadingBuffer(path, meter_id="m1", first_seq=1)
    readings = fill(buffer, 5)
    assert buffer.acknowledge(2) == 2
    buffer.close()
    again = ReadingBuffer(path, meter_id="m1", first_seq=999)  # first_seq ignored now
    assert again.pending(100) == readings[2:]
    assert again.acked_seq == 2
    assert again.pending_count == 3
    assert again.append(10_000_000, 100, 100, 0).seq == 6
    # the ordering guard survives the reopen too
    assert again.accepts(10_000_000, 100, 100) is not None


def test_acknowledge_drops_only_up_to_ack_seq(tmp_path: Path) -> None:
    buffer = ReadingBuffer(MEMORY, meter_id="m1", first_seq=1)
    fill(buffer, 5)
    assert buffer.acknowledge(0) == 0
    assert buffer.acknowledge(3) == 3
    assert [r.seq for r in buffer.pending(10)] == [4, 5]
    assert buffer.acknowledge(2) == 0  # an older ack changes nothing
    assert buffer.acked_seq == 3
    assert buffer.acknowledge(99) == 2
    assert buffer.pending_count == 0


def test_quarantine_keeps_the_reading_and_the_reason(tmp_path: Path) -> None:
    buffer = ReadingBuffer(MEMORY, meter_id="m1", first_seq=1)
    readings = fill(buffer, 3)
    buffer.quarantine(readings[1], code=3, message="seq 2: counter decreased")
    assert [r.seq for r in buffer.pending(10)] == [1, 3]
    assert buffer.pending_count == 2
    (q,) = buffer.quarantined()
    assert q.reading == readings[1]
    assert (q.code, q.message) == (3, "seq 2: counter decreased")


def test_refuses_another_meters_file(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    ReadingBuffer(path, meter_id="m1").close()
    with pytest.raises(MeterConfigError, match="belongs to meter 'm1'"):
        ReadingBuffer(path, meter_id="m2")


def test_refuses_readings_that_cannot_follow() -> None:
    buffer = ReadingBuffer(MEMORY, meter_id="m1", first_seq=1)
    buffer.append(2000, 10, 10, 0)
    assert buffer.accepts(2000, 10, 10) is not None  # same instant
    assert buffer.accepts(3000, 9, 10) is not None  # import went down
    assert buffer.accepts(3000, 10, 10) is None
    with pytest.raises(ValueError, match="not after"):
        buffer.append(1000, 10, 10, 0)
    assert buffer.last_seq == 1


def test_production_counter_is_kept_where_present(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = ReadingBuffer(path, meter_id="m1", first_seq=1)
    with_pv = buffer.append(1000, 1, 2, 3, 4567)
    without = buffer.append(2000, 1, 2, 3)
    buffer.quarantine(with_pv, code=3, message="x")
    buffer.close()
    again = ReadingBuffer(path, meter_id="m1")
    assert again.pending(10) == [without]
    assert without.production_wh is None
    assert again.quarantined()[0].reading.production_wh == 4567


def test_meta_values_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    buffer = ReadingBuffer(path, meter_id="m1")
    buffer.set_meta([("a", "1"), ("b", "x")])
    buffer.close()
    again = ReadingBuffer(path, meter_id="m1")
    assert (again.get_meta("a"), again.get_meta("b"), again.get_meta("c")) == ("1", "x", None)


@given(st.lists(st.one_of(st.just("append"), st.integers(0, 40)), max_size=60))
def test_pending_is_exactly_the_unacknowledged_readings(ops: list[str | int]) -> None:
    buffer = ReadingBuffer(MEMORY, meter_id="m1", first_seq=1)
    model: list[int] = []
    acked = 0
    t = 0
    for op in ops:
        if op == "append":
            t += 1
            model.append(buffer.append(t, t, t, 0).seq)
        else:
            assert isinstance(op, int)
            buffer.acknowledge(op)
            acked = max(acked, op)
            model = [s for s in model if s > op]
        assert [r.seq for r in buffer.pending(1000)] == model
        assert buffer.pending_count == len(model)
        assert buffer.acked_seq == acked


def test_backoff_is_capped_exponential_with_jitter() -> None:
    import random

    backoff = Backoff(BackoffPolicy(initial_s=1.0, max_s=8.0), rng=random.Random(1))
    delays = [backoff.next_delay_s() for _ in range(7)]
    nominal = [1, 2, 4, 8, 8, 8, 8]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True))
    assert len(set(delays)) == len(delays)  # jittered
    backoff.reset()
    assert backoff.next_delay_s() <= 1.0
    assert BackoffPolicy(initial_s=2, max_s=1).problems()


def test_recount_takes_the_files_count_when_another_process_changed_it(tmp_path: Path) -> None:
    buffer = ReadingBuffer(tmp_path / "b.sqlite", meter_id="m1", first_seq=1)
    for i in range(3):
        buffer.append(1_000 + i, i, 0, 0)
    other = ReadingBuffer(tmp_path / "b.sqlite", meter_id="m1")  # a second process, in effect
    other.connection.execute("DELETE FROM pending")
    other.close()
    assert buffer.pending_count == 3  # the in-memory count cannot know
    assert buffer.pending(10) == []
    assert buffer.recount() == 0
    assert buffer.pending_count == 0
    buffer.close()
