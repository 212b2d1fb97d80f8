"""``gridex serve`` flag rules that need no running server."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.cli import main


@pytest.mark.parametrize(
    "flags",
    [
        ["--rpc-url", "http://127.0.0.1:1"],
        ["--key", "op.key"],
        ["--rpc-url", "http://127.0.0.1:1", "--deployment", "d.json"],
    ],
)
def test_chain_flags_go_together(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "engine.db"
    assert main(["serve", "--grid", "cigre-lv", "--db", str(db), *flags]) == 2
    assert "give all three to settle on chain" in capsys.readouterr().err


def test_bad_tariffs_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "engine.db"
    code = main(
        ["serve", "--grid", "cigre-lv", "--db", str(db), "--retail-price", "10",
         "--feed-in-price", "20"]
    )  # fmt: skip
    assert code == 2
    assert "retail_price: must be >= feed_in_price" in capsys.readouterr().err
