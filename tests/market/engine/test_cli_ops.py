"""``gridex keygen``, ``register``, ``clock advance`` and ``info`` against a real server."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from gridex.keys import load_signer, write_key_file

from market._cli_ops import _duration_ms
from market.cli import main
from market.engine.engine import Engine
from market.engine.server import ServerThread
from market.engine.signing import Signer
from tests.market.engine.conftest import OPERATOR_KEY, T0_MS


def test_durations() -> None:
    assert [_duration_ms(t) for t in ("15m", "2h", "1d", "90s", "250ms")] == [
        900_000, 7_200_000, 86_400_000, 90_000, 250,
    ]  # fmt: skip
    for bad in ("15", "-1h", "1.5h", "m"):
        with pytest.raises(argparse.ArgumentTypeError, match="positive integer with a unit"):
            _duration_ms(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="must be positive"):
        _duration_ms("0m")


def test_the_operator_joins_a_participant_and_moves_the_clock(
    engine: Engine,
    engine_server: ServerThread,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    operator_key = tmp_path / "operator.key"
    write_key_file(operator_key, Signer(OPERATOR_KEY))
    assert main(["keygen", "--out", str(tmp_path / "home.key")]) == 0
    home = capsys.readouterr().out.strip()
    assert home == load_signer(tmp_path / "home.key").address
    assert main(["keygen", "--out", str(tmp_path / "home.key")]) == 1  # never overwritten
    assert "exists already" in capsys.readouterr().err
    common = ["--engine", engine_server.address, "--key", str(operator_key)]
    bus = engine.feeder.connectable_buses[0].index
    assert main(["register", "participant", home, "--bus", str(bus), *common]) == 0
    assert capsys.readouterr().out.strip() == f"participant {home} registered at bus {bus}"
    assert main(["register", "gateway", home, *common]) == 0
    assert capsys.readouterr().out.strip() == (
        f"gateway {home} registered for meter {home} of participant {home}"
    )
    assert engine.state.meters[home] == (home, home)
    assert main(["clock", "advance", "--intervals", "2", *common]) == 0
    assert engine.clock.now_ms() == T0_MS + 2 * 900_000
    assert main(["clock", "advance", "--by", "15m", *common]) == 0
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .startswith(f"engine clock now {T0_MS + 3 * 900_000} ms")
    )
    # the engine's refusals are one line with the status code, exit 1
    assert main(["clock", "advance", "--to-ms", "0", *common]) == 1
    assert "INVALID_ARGUMENT: to_ms: must not lie in the past" in capsys.readouterr().err
    assert main(["register", "participant", home, "--bus", "99999", *common]) == 1
    assert "INVALID_ARGUMENT: bus: feeder cigre-lv has no bus 99999" in capsys.readouterr().err
    home_key = ["--engine", engine_server.address, "--key", str(tmp_path / "home.key")]
    assert main(["register", "participant", home, "--bus", str(bus), *home_key]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    assert main(["info", *home_key]) == 0
    out = capsys.readouterr().out
    assert "engine cigre-lv (feeder cigre-lv, nodal clearing, sim clock)" in out
    assert "limit prices 0..1000000 per kWh; retail 300000, feed-in 80000" in out


def test_an_unreachable_engine_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k"
    write_key_file(key)
    args = ["info", "--engine", "127.0.0.1:1", "--key", str(key), "--timeout-s", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("gridex info: ")
    assert "is `gridex serve` running there?" in err or "DEADLINE_EXCEEDED" in err
    assert "Traceback" not in err
    assert main(["info", "--key", str(tmp_path / "missing")]) == 2
    assert "key file" in capsys.readouterr().err
