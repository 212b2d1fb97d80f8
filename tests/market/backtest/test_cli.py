"""``gridex backtest`` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.cli import main


def test_a_backtest_writes_the_dataset_and_the_report(
    tiny_feeder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    argv = ["backtest", "--serial", "--feeders", str(tiny_feeder), "--participants", "2"]
    code = main([*argv, "--interval-s", "3600", "--out", str(out)])
    assert code == 0
    assert (out / "intervals" / "tiny__2026-06-01.parquet").is_file()
    assert (out / "index.html").is_file()
    text = capsys.readouterr().out
    assert "1 (feeder, day) tasks: 0 already done, 1 run now, 0 failed" in text
    # a rerun finds the day done and runs nothing
    assert main([*argv, "--interval-s", "3600", "--out", str(out)]) == 0
    assert "1 already done, 0 run now" in capsys.readouterr().out


def test_parameter_flags_next_to_a_study_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = tmp_path / "s.toml"
    study.write_text('[backtest]\nfeeders = ["cigre-lv"]\n', encoding="utf-8")
    code = main(["backtest", "--study", str(study), "--days", "3", "--seed", "1"])
    assert code == 2
    assert "--days, --seed: the study file describes the backtest" in capsys.readouterr().err


def test_a_bad_value_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "--pv-penetration", "1.5", "--out", str(tmp_path)])
    assert code == 2
    assert "pv_penetration: must be a number within 0..1, got 1.5" in capsys.readouterr().err
