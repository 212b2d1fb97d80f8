"""gridex.keys: the one key-file format every command and client reads."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from eth_account import Account
from gridex.keys import KeyFileError, load_signer, read_private_key, write_key_file
from gridex.signing import Signer

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def no_prompt(_: Path) -> None:
    return None


@pytest.mark.parametrize(
    "text",
    [
        KEY,
        KEY[2:],
        f"# gridex key, address {ADDRESS} -- keep secret\n{KEY}\n",
        f"\n\n   # indented comment\n  {KEY.upper().replace('0X', '0x')}  \n# trailing\n",
    ],
)
def test_plain_forms_all_read_the_same_key(tmp_path: Path, text: str) -> None:
    assert load_signer(write(tmp_path / "k", text)).address == ADDRESS


def test_written_file_is_owner_only_and_reads_back_everywhere(tmp_path: Path) -> None:
    path = tmp_path / "k"
    signer = write_key_file(path, label="test key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith(f"# test key, address {signer.address}")
    assert read_private_key(path) == bytes.fromhex(signer.private_key_hex[2:])
    assert Account.from_key(read_private_key(path)).address.lower() == signer.address
    with pytest.raises(KeyFileError, match="exists already"):
        write_key_file(path)
    assert path.read_text() == text  # never overwritten


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_plain_key_others_can_read_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "k", KEY, 0o640)
    with pytest.raises(KeyFileError, match=r"mode 0640 lets others read it; run: chmod 600"):
        load_signer(path)
    assert load_signer(path, check_permissions=False).address == ADDRESS


@pytest.mark.parametrize("text", ["", "# only a comment\n", "0x1234\n", "zz" * 32 + "\n"])
def test_no_valid_key_is_an_error_that_never_echoes_the_line(tmp_path: Path, text: str) -> None:
    with pytest.raises(KeyFileError) as info:
        load_signer(write(tmp_path / "k", text))
    assert "key file" in str(info.value)
    if text.strip() and not text.startswith("#"):
        assert text.strip() not in str(info.value)


def test_keystore_password_from_argument_env_or_prompt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = Account.encrypt(bytes.fromhex(KEY[2:]), "pw", iterations=2)
    path = write(tmp_path / "k.json", json.dumps(document), 0o644)  # encrypted: any mode
    monkeypatch.delenv("GRIDEX_KEY_PASSWORD", raising=False)
    with pytest.raises(KeyFileError, match=r"encrypted keystore: set \$GRIDEX_KEY_PASSWORD"):
        load_signer(path, prompt=no_prompt)
    assert load_signer(path, password="pw").address == ADDRESS
    assert load_signer(path, prompt=lambda _: "pw").address == ADDRESS
    monkeypatch.setenv("GRIDEX_KEY_PASSWORD", "wrong")
    with pytest.raises(KeyFileError, match="cannot decrypt"):
        load_signer(path)
    monkeypatch.setenv("GRIDEX_KEY_PASSWORD", "pw")
    assert load_signer(path).address == ADDRESS


def test_json_that_is_not_a_keystore_is_named(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not a keystore"):
        load_signer(write(tmp_path / "k.json", '{"address": "x"}'), password="pw")
    with pytest.raises(KeyFileError, match="not valid keystore JSON"):
        load_signer(write(tmp_path / "k2.json", "{not json"), password="pw")


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="No such file"):
        load_signer(tmp_path / "nope")
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00")
    binary.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a text file"):
        load_signer(binary)


def test_the_clients_and_the_gateway_read_the_same_file(tmp_path: Path) -> None:
    from market.client import TraderClient
    from meter_adapter.uplink.keys import load_key_file

    path = tmp_path / "k"
    signer = write_key_file(path)
    with TraderClient("127.0.0.1:1", key_file=path) as client:
        assert client.address == signer.address
    assert load_key_file(path).address == signer.address
    with pytest.raises(ValueError, match="exactly one"):
        TraderClient("127.0.0.1:1", key=signer, key_file=path)
    with pytest.raises(ValueError, match="exactly one"):
        TraderClient("127.0.0.1:1")
    assert Signer(signer.private_key_hex).address == signer.address
