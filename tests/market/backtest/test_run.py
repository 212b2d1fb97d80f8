"""Running backtests: Dask against a single process, resume after a kill, failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from market.backtest import BacktestSpec, ResultStore, read_intervals, resolve_feeders, run_backtest
from market.backtest.runner import TaskOutcome
from market.backtest.store import temporary
from market.errors import ConfigError
from tests.market.backtest.conftest import SMALL_FLAGS, write_tiny_feeder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "intervals").glob("*.parquet"))}


def test_a_partial_file_is_never_part_of_the_dataset(tmp_path: Path) -> None:
    import datetime as dt

    store = ResultStore(tmp_path)
    store.intervals.mkdir(parents=True)
    written = store.write(pl.DataFrame({"x": [1]}), "f", dt.date(2026, 6, 1))
    # a temporary file as a writer killed halfway leaves it
    temporary(store.path("f", dt.date(2026, 6, 2))).write_bytes(b"PAR1 torn")
    assert [p.name for p in store.intervals.glob("*.parquet")] == [written.name]
    assert pl.read_parquet(store.intervals / "*.parquet").height == 1


def test_local_cluster_gives_the_same_bytes_as_one_process(
    small_spec: BacktestSpec, reference: Path, tmp_path: Path
) -> None:
    outcome = run_backtest(small_spec, tmp_path, workers=2, processes=False)
    assert not outcome.failed
    assert outcome.total == 4
    assert {t.status for t in outcome.tasks} == {"done"}
    expected = _files(reference)
    assert len(expected) == 4
    assert _files(tmp_path) == expected


def test_the_folder_is_one_polars_dataset(small_spec: BacktestSpec, reference: Path) -> None:
    frame = pl.read_parquet(reference / "intervals" / "*.parquet")
    assert frame.height == 2 * 2 * small_spec.intervals_per_day
    assert sorted(frame["feeder"].unique().to_list()) == ["cigre-lv", "tiny"]
    assert frame.sort("feeder", "interval").equals(read_intervals(reference))


def test_books_of_every_interval_agree_with_the_meters(reference: Path) -> None:
    frame = read_intervals(reference)
    cleared = frame.filter(pl.col("status") == "cleared")
    assert cleared.height == frame.height
    # imbalance = metered − traded, summed over participants; the clearing's net
    # sales equal what the external grid took: export − import + losses
    net_traded = cleared["grid_export_wh"] - cleared["grid_import_wh"] + cleared["losses_wh"]
    net_metered = cleared["metered_export_wh"] - cleared["metered_import_wh"]
    imbalance = cleared["imbalance_export_wh"] - cleared["imbalance_import_wh"]
    assert (imbalance == net_metered - net_traded).all()
    assert (cleared["traded_wh"] <= cleared["offered_wh"]).all()
    assert (cleared["local_wh"] <= cleared["metered_import_wh"]).all()


def test_agents_order_from_the_first_interval_and_sell_only_in_daylight(
    small_spec: BacktestSpec, reference: Path
) -> None:
    frame = read_intervals(reference)
    hour = (pl.col("start_s") % 86_400) // 3600
    first = frame.filter(hour == 0)
    # the day before warmed the forecasts up: the first interval already has orders
    assert (first["orders"] > 0).all()
    # 01:00 UTC in June in Berlin: no PV, nothing offered
    assert (frame.filter(hour == 1)["offered_wh"] == 0).all()
    assert (frame.filter(hour == 11)["offered_wh"] > 0).all()


def test_resume_after_a_kill_runs_each_task_once(
    small_spec: BacktestSpec, reference: Path, tiny_feeder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    argv = ["backtest", "--serial", "--quiet", "--out", str(out)]
    argv += ["--feeders", f"cigre-lv,{tiny_feeder}"]
    for flag, value in SMALL_FLAGS.items():
        argv += [flag, value]
    code = f"import sys; from market.cli import main; sys.exit(main({argv!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[3])
    store = ResultStore(out)
    try:
        deadline = time.monotonic() + 600
        while len(list(out.glob("intervals/*.parquet"))) < 2:
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no two tasks finished in time"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "intervals").glob("*.parquet")}
    assert 2 <= len(before) < 4, "the kill should land halfway"

    ran: list[TaskOutcome] = []
    outcome = run_backtest(small_spec, out, serial=True, on_task=ran.append)

    names = {store.path(t.feeder, t.day).name for t in ran}
    assert {t.status for t in ran} == {"done"}
    assert names.isdisjoint(before), "a finished task ran again"
    assert names | set(before) == set(_files(reference))
    assert outcome.already_done == len(before)
    for name, mtime in before.items():
        assert (out / "intervals" / name).stat().st_mtime_ns == mtime
    assert not list((out / "intervals").glob(".tmp-*"))
    assert _files(out) == _files(reference)


def test_a_feeder_that_does_not_load_is_reported_and_the_rest_runs(tmp_path: Path) -> None:
    feeders = tmp_path / "feeders"
    feeders.mkdir()
    write_tiny_feeder(feeders / "good.json")
    (feeders / "broken.json").write_text('{"not": "a network"}', encoding="utf-8")
    spec = BacktestSpec(
        feeders=tuple(resolve_feeders([str(feeders)])), participants=2, interval_s=3600
    )
    outcome = run_backtest(spec, tmp_path / "out", serial=True)
    assert [(t.feeder, t.day) for t in outcome.failed] == [("broken", spec.start)]
    assert "feeder did not load" in outcome.failed[0].reason
    assert ResultStore(tmp_path / "out").is_done("good", spec.start)
    assert not ResultStore(tmp_path / "out").is_done("broken", spec.start)


def test_a_folder_of_another_backtest_is_refused(small_spec: BacktestSpec, reference: Path) -> None:
    from dataclasses import replace

    other = replace(small_spec, pv_penetration=0.5)
    with pytest.raises(ConfigError, match="pv_penetration"):
        ResultStore(reference).open(other)
    # a longer period asks the same question of each day: accepted
    ResultStore(reference).open(replace(small_spec, days=3))
