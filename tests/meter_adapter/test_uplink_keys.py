"""Gateway key files: format, permissions, keygen."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from gridex.signing import Signer

from meter_adapter.cli import main
from meter_adapter.errors import MeterConfigError
from meter_adapter.uplink.keys import generate_key_file, load_key_file

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_reads_the_first_key_line_after_comments(tmp_path: Path) -> None:
    path = write(tmp_path / "k", f"# my gateway\n\n{KEY}\n")
    assert load_key_file(path).address == ADDRESS
    assert load_key_file(write(tmp_path / "k2", KEY[2:])).address == ADDRESS


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    path = write(tmp_path / "k", KEY, 0o644)
    with pytest.raises(MeterConfigError, match="chmod 600"):
        load_key_file(path)
    assert load_key_file(path, check_permissions=False).address == ADDRESS


@pytest.mark.parametrize("text", ["", "# only a comment\n", "0x1234\n", "not a key\n"])
def test_refuses_files_without_a_valid_key_and_never_echoes_it(tmp_path: Path, text: str) -> None:
    with pytest.raises(MeterConfigError) as info:
        load_key_file(write(tmp_path / "k", text))
    if text.strip() and not text.startswith("#"):
        assert text.strip() not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MeterConfigError, match="key file"):
        load_key_file(tmp_path / "nope")


def test_generate_writes_an_owner_only_file_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "k"
    signer = generate_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(path).address == signer.address
    assert signer.address in path.read_text()  # the comment names the address
    with pytest.raises(MeterConfigError, match="exists"):
        generate_key_file(path)
    assert load_key_file(path).address == signer.address


def test_keygen_command_prints_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gw.key"
    assert main(["keygen", "--out", str(path)]) == 0
    address = capsys.readouterr().out.strip()
    assert address == load_key_file(path).address
    assert main(["keygen", "--out", str(path)]) == 1
    assert Signer(load_key_file(path).private_key_hex).address == address
