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


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--port", "-1"], "argument --port: must be in 0..65535, got -1"),
        (["--port", "99999"], "argument --port: must be in 0..65535, got 99999"),
        (["--rate-limit", "-3"], "argument --rate-limit: must be a finite number >= 0"),
        (["--max-skew-s", "-1"], "argument --max-skew-s: must be a finite number >= 0"),
        (["--max-skew-s", "nan"], "argument --max-skew-s: must be a finite number >= 0"),
    ],
)
def test_out_of_range_flags_are_refused(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "engine.db"
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--grid", "cigre-lv", "--db", str(db), *flags])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not db.exists()


def test_missing_tls_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "engine.db"
    missing = tmp_path / "nope.pem"
    code = main(
        ["serve", "--grid", "cigre-lv", "--db", str(db), "--tls-cert", str(missing),
         "--tls-key", str(missing)]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"error: TLS file {missing}: cannot read" in err
    assert "Traceback" not in err
    assert not db.exists()


def test_negative_sim_start_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "engine.db"
    code = main(["serve", "--grid", "cigre-lv", "--db", str(db), "--clock", "sim",
                 "--sim-start-ms", "-5"])  # fmt: skip
    assert code == 2
    assert "--sim-start-ms: must be >= 0" in capsys.readouterr().err


def test_a_bad_base_forecast_file_stops_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "base.csv"
    bad.write_text("interval,element,p_mw,q_mvar\n5,load:0,0.1,0\n5,load:42,0.1,0\n")
    db = tmp_path / "engine.db"
    args = ["serve", "--grid", "cigre-lv", "--db", str(db), "--clock", "sim", "--port", "0"]
    assert main([*args, "--base-forecast", str(bad)]) == 2
    assert "base.csv row 2, column element" in capsys.readouterr().err
    assert not db.exists()


def test_a_forecast_that_misses_the_first_interval_stops_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.csv"
    old.write_text("interval,element,p_mw,q_mvar\n5,load:0,0.1,0\n6,load:0,0.1,0\n")
    db = tmp_path / "engine.db"
    args = ["serve", "--grid", "cigre-lv", "--db", str(db), "--clock", "sim", "--port", "0"]
    assert main([*args, "--sim-start-ms", "900000000", "--base-forecast", str(old)]) == 2
    assert "no values for interval" in capsys.readouterr().err
    assert not db.exists()


def test_serve_help_says_how_to_feed_the_base_forecast(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--base-forecast" in text
    assert "interval, bus or element" in text
    assert "refuses to start" in text


def test_a_port_in_use_fails_before_any_work_and_leaves_no_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    db = tmp_path / "engine.db"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--grid", "no-such-feeder", "--db", str(db), "--port", str(port)])
    assert code == 2
    err = capsys.readouterr().err
    # the port is checked first: the unknown feeder was never loaded
    assert err.strip() == f"error: --port {port}: 127.0.0.1:{port} is already in use " + (
        "(another gridex serve?)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_failed_start_removes_the_journal_it_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "engine.db"
    port_file = tmp_path / "missing-dir" / "port"
    args = ["--db", str(db), "--port", "0", "--port-file", str(port_file)]
    code = main(["serve", "--grid", "cigre-lv", *args])
    assert code == 2
    assert "--port-file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
