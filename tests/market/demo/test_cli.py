"""``gridex demo`` and ``gridex report``: bad flags end in one line on stderr, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.cli import main


def test_demo_report_folder_that_cannot_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--intervals", "1", "--report", str(blocker / "report")]) == 2
    err = capsys.readouterr().err
    assert f"error: report_dir: cannot create {blocker / 'report'}" in err
    assert "Traceback" not in err


def test_demo_unreadable_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "missing.key"
    code = main(
        ["demo", "--intervals", "1", "--report", str(tmp_path / "r"),
         "--rpc-url", "http://127.0.0.1:1", "--key", str(key)]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: key file {key}: No such file" in err
    assert "Traceback" not in err


def test_report_folder_that_cannot_be_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from grid import load_feeder
    from market.engine.clock import SimClock
    from market.engine.engine import Engine

    db = tmp_path / "engine.db"
    engine = Engine(load_feeder("cigre-lv"), db, clock=SimClock(1944000 * 900_000))
    engine.start()
    engine.close()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["report", "--db", str(db), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert f"error: --out: cannot create {blocker / 'out'}" in err
    assert "Traceback" not in err
