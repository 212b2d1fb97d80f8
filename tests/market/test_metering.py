"""The meter ledger: batch rules, duplicates, gaps, interval energy, archive, replay."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from fractions import Fraction
from math import floor
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.errors import (
    ClockSkewError,
    ConfigError,
    CounterDecreaseError,
    DuplicateReadingError,
    MarketError,
    MeteringError,
    MeterRegistrationError,
    ReadingOrderError,
    ReadingValueError,
    UnknownMeterError,
)
from market.metering import (
    BatchOutcome,
    MeteredEnergy,
    MeterLedger,
    Reading,
    SeqGap,
    read_archive,
)
from tests.strategies import reading_streams

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
NOW = 10**15  # far-future clock for ledgers whose skew window is wide open
WIDE = 1e12  # skew_s wide enough to accept any test timestamp


def ledger(*meters: str, interval_s: int = 60, skew_s: float = WIDE) -> MeterLedger:
    out = MeterLedger(interval_s, skew_s=skew_s)
    for i, meter in enumerate(meters):
        out.register_meter(meter, ALICE if i % 2 == 0 else BOB)
    return out


def r(seq: int, ts: int, imp: int, exp: int, power: int = 0, *, meter: str = "m1") -> Reading:
    return Reading(meter, seq, ts, imp, exp, power)


def counter_at(readings: Sequence[Reading], t_ms: int, field: str) -> int:
    """Reference boundary counter: exact rational interpolation, rounded half up."""
    if not readings:
        return 0
    ts = [x.timestamp_ms for x in readings]
    vals: list[int] = [getattr(x, field) for x in readings]
    if t_ms <= ts[0]:
        return vals[0]
    if t_ms >= ts[-1]:
        return vals[-1]
    i = bisect.bisect_right(ts, t_ms) - 1
    if ts[i] == t_ms:
        return vals[i]
    frac = Fraction(vals[i + 1] - vals[i]) * (t_ms - ts[i]) / (ts[i + 1] - ts[i])
    return vals[i] + floor(frac + Fraction(1, 2))


# --- hand-computed examples ---------------------------------------------------------


def test_interval_energy_hand_example() -> None:
    book = ledger("m1", "m2", interval_s=900)
    out = book.apply(
        "m1", [r(0, 0, 0, 0), r(1, 450_000, 10, 100), r(2, 900_000, 20, 200)], now_ms=NOW
    )
    assert out == BatchOutcome("m1", ack_seq=2, applied=3, duplicates=0)
    out = book.apply("m1", [r(2, 900_000, 20, 200), r(5, 1_200_000, 30, 300)], now_ms=NOW)
    assert out == BatchOutcome("m1", 5, 1, 1, (SeqGap(3, 4),))
    assert book.metered(0) == {
        "m1": MeteredEnergy(import_wh=20, export_wh=200, complete=True),
        "m2": MeteredEnergy(0, 0, complete=False),
    }
    # interval 1 ends at 1_800_000, after the last reading: counted up to it, incomplete
    assert book.metered(1)["m1"] == MeteredEnergy(10, 100, complete=False)
    # before the first reading nothing was metered, but the interval is over
    assert book.metered(-1)["m1"] == MeteredEnergy(0, 0, complete=True)
    assert book.gaps("m1") == (SeqGap(3, 4),)
    assert SeqGap(3, 4).count == 2
    assert book.ack_seq("m1") == 5
    assert book.ack_seq("m2") is None


def test_boundary_counter_rounds_half_up_once() -> None:
    book = ledger("m1", interval_s=1)
    # boundary 1000 ms lies halfway: import 1.5 -> 2, export 0.5 -> 1
    book.apply("m1", [r(0, 0, 0, 0), r(1, 2_000, 3, 1)], now_ms=NOW)
    frame = book.metered_frame(0, 1)
    assert frame["import_wh"].to_list() == [2, 1]
    assert frame["export_wh"].to_list() == [1, 0]
    assert frame["complete"].to_list() == [True, True]


def test_interpolation_is_exact_for_huge_counters_and_spans() -> None:
    big = 2**63 - 1
    stream = [r(0, 0, 0, 0), r(1, 10**15, big, big // 3)]
    book = ledger("m1", interval_s=3_600)
    book.apply("m1", stream, now_ms=NOW)
    for k in (0, 123_456, 277_777_777):
        start, end = k * 3_600_000, (k + 1) * 3_600_000
        got = book.metered(k)["m1"]
        assert got.import_wh == counter_at(stream, end, "energy_import_wh") - counter_at(
            stream, start, "energy_import_wh"
        )
        assert got.export_wh == counter_at(stream, end, "energy_export_wh") - counter_at(
            stream, start, "energy_export_wh"
        )


def test_metered_by_participant_sums_meters() -> None:
    book = ledger("m1", "m2", "m3", interval_s=60)  # m1, m3 -> ALICE; m2 -> BOB
    for meter, k in (("m1", 1), ("m2", 2), ("m3", 3)):
        book.apply(
            meter,
            [r(0, 0, 0, 0, meter=meter), r(1, 60_000, 10 * k, k, meter=meter)],
            now_ms=NOW,
        )
    by = book.metered_by_participant(0)
    assert by == {ALICE: MeteredEnergy(40, 4, True), BOB: MeteredEnergy(20, 2, True)}
    assert by[ALICE].net_export_wh == -36


def test_metered_frame_rejects_reversed_range() -> None:
    with pytest.raises(ValueError, match="last"):
        ledger("m1").metered_frame(3, 2)


# --- batch rules ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "error", "field"),
    [
        pytest.param([r(4, 1_500, 10, 10)], ReadingOrderError, "timestamp_ms", id="ts-not-after"),
        pytest.param([r(4, 2_000, 9, 10)], CounterDecreaseError, "energy_import_wh", id="import"),
        pytest.param([r(4, 2_000, 10, 9)], CounterDecreaseError, "energy_export_wh", id="export"),
        pytest.param([r(2, 1_000, 10, 11)], DuplicateReadingError, "seq", id="dup-conflict"),
        pytest.param([r(0, 1, 1, 1)], ReadingOrderError, "seq", id="late-before-first"),
        pytest.param([r(4, 2_000, 10, 10, meter="m2")], ReadingValueError, "meter_id", id="meter"),
        pytest.param([r(4, 400_000, 10, 10)], ClockSkewError, "timestamp_ms", id="future"),
    ],
)
def test_bad_reading_rejects_the_whole_batch(
    batch: list[Reading], error: type[MeteringError], field: str
) -> None:
    book = ledger("m1", "m2", skew_s=300)
    book.apply("m1", [r(1, 500, 5, 5), r(2, 1_000, 10, 10)], now_ms=1_000)
    before = book.snapshot()
    good = r(3, 1_500, 10, 10)
    with pytest.raises(error) as info:
        book.apply("m1", [good, *batch], now_ms=1_000)
    assert info.value.field == field
    assert info.value.meter_id == "m1"
    assert field in str(info.value)
    assert isinstance(info.value, MarketError)
    assert isinstance(info.value, ValueError)
    assert book.snapshot() == before
    assert book.apply("m1", [good], now_ms=1_000).applied == 1


def test_late_reading_in_a_gap_is_refused() -> None:
    book = ledger("m1")
    book.apply("m1", [r(1, 1, 0, 0), r(4, 4, 0, 0)], now_ms=NOW)
    with pytest.raises(ReadingOrderError, match="never applied"):
        book.apply("m1", [r(2, 2, 0, 0)], now_ms=NOW)


def test_skew_window_is_inclusive_both_ways() -> None:
    book = MeterLedger(60, skew_s=1.5, max_age_s=2.0)
    book.register_meter("m1", "0x" + "1" * 40)
    book.apply("m1", [r(0, 8_000, 0, 0), r(1, 11_500, 0, 0)], now_ms=10_000)
    with pytest.raises(ClockSkewError, match="1500 ms ahead"):
        book.apply("m1", [r(2, 11_501, 0, 0)], now_ms=10_000)
    stale = MeterLedger(60, skew_s=1.5, max_age_s=2.0)
    stale.register_meter("m1", "0x" + "1" * 40)
    with pytest.raises(ClockSkewError, match="2000 ms behind"):
        stale.apply("m1", [r(0, 7_999, 0, 0)], now_ms=10_000)


def test_readings_buffered_through_a_long_outage_are_accepted() -> None:
    # a gateway offline for six hours sends its buffer late: nothing may be lost
    book = MeterLedger(900, skew_s=300)
    book.register_meter("m1", "0x" + "1" * 40)
    hour_ms = 3_600_000
    late = [r(i, i * 60_000, i, 0) for i in range(1, 361)]
    outcome = book.apply("m1", late, now_ms=6 * hour_ms + 60_000)
    assert outcome.applied == 360
    assert outcome.ack_seq == 360


def test_duplicate_is_acknowledged_even_outside_the_skew_window() -> None:
    book = ledger("m1", skew_s=1)
    book.apply("m1", [r(0, 1_000, 0, 0)], now_ms=1_000)
    assert book.apply("m1", [r(0, 1_000, 0, 0)], now_ms=99_000) == BatchOutcome("m1", 0, 0, 1)


def test_unknown_meter_and_registration_rules() -> None:
    book = ledger("m1")
    with pytest.raises(UnknownMeterError, match="not registered"):
        book.apply("nope", [], now_ms=NOW)
    with pytest.raises(UnknownMeterError):
        book.gaps("nope")
    book.register_meter("m1", ALICE.upper().replace("0X", "0x"))  # same owner, any case
    with pytest.raises(MeterRegistrationError, match="already registered"):
        book.register_meter("m1", BOB)
    with pytest.raises(MeterRegistrationError, match="participant"):
        book.register_meter("m9", "0x12")
    with pytest.raises(MeterRegistrationError, match="meter_id"):
        book.register_meter("", ALICE)
    assert book.meters == {"m1": ALICE}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"meter_id": ""}, "meter_id"),
        ({"seq": -1}, "seq"),
        ({"seq": True}, "seq"),
        ({"timestamp_ms": 1.0}, "timestamp_ms"),
        ({"energy_import_wh": -1}, "energy_import_wh"),
        ({"energy_export_wh": 2**63}, "energy_export_wh"),
        ({"power_w": -(2**63) - 1}, "power_w"),
    ],
)
def test_reading_fields_are_checked(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "meter_id": "m1",
        "seq": 0,
        "timestamp_ms": 0,
        "energy_import_wh": 0,
        "energy_export_wh": 0,
        "power_w": 0,
    }
    with pytest.raises(ReadingValueError) as info:
        Reading(**(values | kwargs))  # type: ignore[arg-type]
    assert info.value.field == field


def test_ledger_arguments_are_checked() -> None:
    with pytest.raises(ConfigError, match="interval_s"):
        MeterLedger(0)
    with pytest.raises(ConfigError, match="skew_s"):
        MeterLedger(60, skew_s=-1)


# --- properties -----------------------------------------------------------------


@given(stream=reading_streams(max_size=25), first=st.integers(-2, 2))
def test_interval_energy_telescopes_and_matches_reference(
    stream: list[Reading], first: int
) -> None:
    book = ledger("m1", interval_s=60)
    book.apply("m1", stream, now_ms=NOW)
    last = max(stream[-1].timestamp_ms // 60_000 + 2, first + 1)
    frame = book.metered_frame(first, last)
    assert frame["interval"].to_list() == list(range(first, last + 1))
    for column, field in (("import_wh", "energy_import_wh"), ("export_wh", "energy_export_wh")):
        energies = frame[column].to_list()
        assert all(e >= 0 for e in energies)
        expected = [
            counter_at(stream, (k + 1) * 60_000, field) - counter_at(stream, k * 60_000, field)
            for k in range(first, last + 1)
        ]
        assert energies == expected
        if first * 60_000 <= stream[0].timestamp_ms:  # the range covers every reading
            assert sum(energies) == getattr(stream[-1], field) - getattr(stream[0], field)
    complete = frame["complete"].to_list()
    ends = [(k + 1) * 60_000 for k in range(first, last + 1)]
    assert complete == [stream[-1].timestamp_ms >= end for end in ends]
    k = first + 1
    row = frame.filter(pl.col("interval") == k).row(0, named=True)
    assert book.metered(k)["m1"] == MeteredEnergy(
        row["import_wh"], row["export_wh"], row["complete"]
    )


@st.composite
def resent_batches(draw: st.DrawFn) -> tuple[list[Reading], list[list[Reading]]]:
    """A stream cut into batches, each possibly starting with re-sent readings."""
    stream = draw(reading_streams(max_size=25))
    batches: list[list[Reading]] = []
    pos = 0
    while pos < len(stream):
        back = draw(st.integers(0, pos))
        size = draw(st.integers(1, 6))
        batches.append(stream[pos - back : pos + size])
        pos += size
    return stream, batches


@given(case=resent_batches())
def test_duplicates_are_acknowledged_and_applied_once(
    case: tuple[list[Reading], list[list[Reading]]],
) -> None:
    stream, batches = case
    once = ledger("m1")
    once.apply("m1", stream, now_ms=NOW)
    book = ledger("m1")
    outcomes = [book.apply("m1", batch, now_ms=NOW) for batch in batches]
    assert book.snapshot() == once.snapshot()
    assert sum(o.applied for o in outcomes) == len(stream)
    assert sum(o.duplicates for o in outcomes) == sum(len(b) for b in batches) - len(stream)
    assert [g for o in outcomes for g in o.gaps] == list(book.gaps("m1"))
    assert outcomes[-1].ack_seq == stream[-1].seq
    assert book.reading_count == len(stream)


Journal = list[tuple[str, list[Reading], bool]]


@st.composite
def journals(draw: st.DrawFn) -> Journal:
    """Interleaved batches of two meters; some valid batches are preceded by a
    corrupted copy (same readings plus one whose timestamp does not advance)."""
    streams = {m: draw(reading_streams(m, max_size=12)) for m in ("m1", "m2")}
    order = draw(st.permutations([m for m in streams for _ in streams[m]]))
    cursor = dict.fromkeys(streams, 0)
    journal: Journal = []
    for meter in order:
        start = cursor[meter]
        if start >= len(streams[meter]):
            continue
        batch = streams[meter][start : start + draw(st.integers(1, 3))]
        cursor[meter] = start + len(batch)
        if draw(st.integers(0, 3)) == 0:
            x = batch[-1]
            bad = Reading(meter, x.seq + 1, x.timestamp_ms, x.energy_import_wh, 0, 0)
            journal.append((meter, [*batch, bad], True))
        journal.append((meter, batch, False))
    return journal


def replay(journal: Journal) -> tuple[MeterLedger, list[object]]:
    book = ledger("m1", "m2")
    answers: list[object] = []
    for meter, batch, corrupt in journal:
        before = book.snapshot()
        try:
            answers.append(book.apply(meter, batch, now_ms=NOW))
        except MeteringError as exc:
            assert corrupt
            assert book.snapshot() == before  # all or nothing
            answers.append((type(exc), str(exc)))
        else:
            assert not corrupt
    return book, answers


@given(journal=journals())
def test_replaying_a_journal_rebuilds_the_same_state(journal: Journal) -> None:
    first, answers1 = replay(journal)
    second, answers2 = replay(journal)
    assert answers1 == answers2
    assert first.snapshot() == second.snapshot()
    assert first.readings_frame().equals(second.readings_frame())
    assert first.metered_frame(0, 3).equals(second.metered_frame(0, 3))
    # refused batches left no trace: the state is that of the valid batches alone
    clean = ledger("m1", "m2")
    for meter, batch, corrupt in journal:
        if not corrupt:
            clean.apply(meter, batch, now_ms=NOW)
    assert clean.snapshot() == first.snapshot()


# --- frames and archive -----------------------------------------------------------


def test_readings_frame_is_sorted_and_typed() -> None:
    book = ledger("m2", "m1")
    book.apply("m2", [r(0, 5, 1, 2, -3, meter="m2")], now_ms=NOW)
    book.apply("m1", [r(7, 9, 4, 5, 6)], now_ms=NOW)
    frame = book.readings_frame()
    assert frame.rows() == [("m1", 7, 9, 4, 5, 6), ("m2", 0, 5, 1, 2, -3)]
    assert frame.schema == pl.Schema(
        {
            "meter_id": pl.String,
            "seq": pl.Int64,
            "timestamp_ms": pl.Int64,
            "energy_import_wh": pl.Int64,
            "energy_export_wh": pl.Int64,
            "power_w": pl.Int64,
        }
    )
    assert ledger().readings_frame().height == 0


def test_archive_appends_files_and_resumes_after_replay(tmp_path: Path) -> None:
    journal = [
        ("m1", [r(0, 1, 0, 0), r(1, 2, 1, 0)]),
        ("m2", [r(0, 1, 0, 0, meter="m2")]),
        ("m1", [r(2, 3, 2, 0)]),
        ("m1", [r(2, 3, 2, 0), r(3, 4, 3, 0)]),  # one duplicate
        ("m2", [r(1, 5, 0, 9, meter="m2")]),
    ]
    book = ledger("m1", "m2")
    for meter, batch in journal[:3]:
        book.apply(meter, batch, now_ms=NOW)
    first = book.archive(tmp_path)
    assert first is not None
    assert first.name == "readings-000000000000-000000000004.parquet"
    assert book.archive(tmp_path) is None

    restarted = ledger("m1", "m2")  # the engine restarts and replays its journal
    for meter, batch in journal:
        restarted.apply(meter, batch, now_ms=NOW)
    second = restarted.archive(tmp_path)
    assert second is not None
    assert second.name == "readings-000000000004-000000000006.parquet"
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, second.name]

    archived = read_archive(tmp_path)
    assert [(m, s) for m, s in archived.select("meter_id", "seq").iter_rows()] == [
        ("m1", 0),
        ("m1", 1),
        ("m2", 0),
        ("m1", 2),
        ("m1", 3),
        ("m2", 1),
    ]
    assert archived.sort("meter_id", "seq").equals(restarted.readings_frame())
    assert read_archive(tmp_path / "empty").height == 0
