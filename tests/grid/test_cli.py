"""``gridex grid info`` as an operator runs it."""

from __future__ import annotations

import pytest

from market.cli import main


def test_grid_info_prints_size_limits_and_connectable_buses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["grid", "info", "cigre-lv"]) == 0
    out = capsys.readouterr().out
    assert "44 buses" in out
    assert "37 lines" in out
    assert "connectable buses (40)" in out
    assert "rating MVA" in out
    # captured output is not a terminal: lines are not wrapped at 80 columns
    (base,) = [line for line in out.splitlines() if "base case:" in line]
    assert len(base) > 80
    assert base.rstrip().endswith("0 violations")


def test_grid_info_unknown_feeder_exits_2_and_lists_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["grid", "info", "atlantis"]) == 2
    out = capsys.readouterr().out
    assert "unknown feeder 'atlantis'" in out
    assert "cigre-lv" in out
