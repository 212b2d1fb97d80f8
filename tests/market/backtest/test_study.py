"""Study files: the sweep's grid of points, and errors that name the key."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest
from hypothesis import given

from market.backtest.report import ReportPoint, write_report
from market.backtest.runner import run_backtests
from market.backtest.study import load_study, parse_study
from market.errors import ConfigError
from tests.strategies import study_sweeps

BASE = {"feeders": ["cigre-lv"], "start": dt.date(2026, 6, 1), "days": 2, "participants": 4}


def _problems(raw: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_study(raw)
    return str(info.value).split("; ")


def test_every_combination_is_a_point_with_its_values() -> None:
    study = parse_study(
        {
            "backtest": BASE,
            "sweep": {
                "pv_penetration": [0.2, 0.6, 1.0],
                "mechanism": ["nodal", "uniform"],
                "tariff": [
                    {"name": "standard"},
                    {"name": "fee", "grid_fee_per_kwh": 20_000, "feed_in_price": 60_000},
                ],
            },
        }
    )
    assert study.swept == ("pv_penetration", "mechanism", "tariff")
    assert len(study.points) == 12
    assert len({p.key for p in study.points}) == 12
    fee = [p for p in study.points if p.values["tariff"] == "fee"]
    assert {p.spec.grid_fee_per_kwh for p in fee} == {20_000}
    assert {p.spec.feed_in_price for p in fee} == {60_000}
    assert {p.spec.retail_price for p in study.points} == {300_000}
    point = study.points[0]
    assert (point.spec.pv_penetration, point.spec.mechanism) == (0.2, "nodal")
    assert point.spec.days == 2
    assert point.spec.participants == 4


@pytest.mark.parametrize(
    ("sweep", "key"),
    [
        ({"pv_penetration": [0.2, 1.5]}, "sweep.pv_penetration[1]"),
        ({"pv_penetration": [0.2, "lots"]}, "sweep.pv_penetration[1]"),
        ({"mechanism": ["nodal", "zonal"]}, "sweep.mechanism[1]"),
        ({"participants": [10, 0]}, "sweep.participants[1]"),
        ({"interval_s": [900, 7]}, "sweep.interval_s[1]"),
        ({"days": [1, 2]}, "sweep.days"),
        ({"pv_penetration": []}, "sweep.pv_penetration"),
        ({"pv_penetration": 0.5}, "sweep.pv_penetration"),
        ({"tariff": [{"name": "low", "retail_price": 10}]}, "sweep.tariff[0].retail_price"),
        ({"tariff": [{"name": "x", "feed_in": 1}]}, "sweep.tariff[0].feed_in"),
        ({"tariff": [{"retail_price": 400_000}]}, "sweep.tariff[0].name"),
    ],
)
def test_a_bad_sweep_value_names_its_key(sweep: dict[str, object], key: str) -> None:
    problems = _problems({"backtest": BASE, "sweep": sweep})
    assert any(p.startswith(f"{key}:") for p in problems), problems


@pytest.mark.parametrize(
    ("backtest", "key"),
    [
        ({**BASE, "dayz": 3}, "backtest.dayz"),
        ({**BASE, "days": 400}, "backtest.days"),
        ({**BASE, "start": "June"}, "backtest.start"),
        ({**BASE, "feeders": ["no-such-feeder"]}, "backtest.feeders"),
        ({k: v for k, v in BASE.items() if k != "feeders"}, "backtest.feeders"),
    ],
)
def test_a_bad_base_value_names_its_key(backtest: dict[str, object], key: str) -> None:
    problems = _problems({"backtest": backtest, "sweep": {}})
    assert any(p.startswith(f"{key}:") for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        {
            "backtest": BASE,
            "sweep": {"pv_penetration": [2.0], "mechanism": ["zonal"]},
            "extra": {},
        }
    )
    assert [p.split(":")[0] for p in problems] == [
        "extra",
        "sweep.pv_penetration[0]",
        "sweep.mechanism[0]",
    ]


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text("[backtest\nfeeders = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"study: .*study\.toml is not valid TOML"):
        load_study(path)


def test_a_small_sweep_runs_and_reports_each_point(tiny_feeder: Path, tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(
        f"""
[backtest]
feeders = ["{tiny_feeder}"]
start = 2026-06-01
participants = 3
interval_s = 3600

[sweep]
pv_penetration = [0.0, 1.0]
""",
        encoding="utf-8",
    )
    study = load_study(path)
    points = [ReportPoint(p.key, p.values, tmp_path / p.key) for p in study.points]
    outcomes = run_backtests(
        [(p.spec, rp.folder) for p, rp in zip(study.points, points, strict=True)], serial=True
    )
    points = [
        ReportPoint(p.key, p.values, p.folder, o) for p, o in zip(points, outcomes, strict=True)
    ]
    page = write_report(tmp_path, points, title="t", swept=study.swept)
    text = page.read_text(encoding="utf-8")
    assert "pv_penetration-0.0" in text
    assert "pv_penetration-1.0" in text
    for name in ("hosting.png", "spread.png", "self_sufficiency.png", "summary.csv"):
        assert (tmp_path / name).is_file()
    import polars as pl

    summary = pl.read_csv(tmp_path / "summary.csv")
    by_pv = dict(zip(summary["pv_penetration"], summary["traded_kwh"], strict=True))
    # without PV nobody sells: nothing is traded locally; with PV on every roof, something is
    assert by_pv[0.0] == 0
    assert by_pv[1.0] > 0


@given(sweep=study_sweeps())
def test_the_points_are_the_product_of_the_sweep(sweep: dict[str, list[object]]) -> None:
    study = parse_study({"backtest": BASE, "sweep": sweep})
    assert len(study.points) == math.prod(len(v) for v in sweep.values())
    assert len({p.key for p in study.points}) == len(study.points)
    combos = {tuple(repr(p.values[k]) for k in sweep) for p in study.points}
    assert len(combos) == len(study.points)
    for point in study.points:
        for key, value in point.values.items():
            assert getattr(point.spec, key) == value
