"""The gateway's key file: the format of :mod:`gridex.keys`, shared by every gridex tool.

A text file whose first line that is neither empty nor a ``#`` comment is the
secp256k1 private key (64 hex digits, ``0x`` optional), mode ``0600`` (a key
readable by group or others is refused on POSIX systems), or an encrypted
JSON keystore whose password is in ``$GRIDEX_KEY_PASSWORD`` (or typed at a
prompt). ``gridex-meter keygen --out FILE`` (or ``gridex keygen``) writes a
fresh one and prints its address, which the operator registers (``gridex
register gateway``; the same address is the participant when the prosumer
agent trades).
"""

from __future__ import annotations

from pathlib import Path

from gridex.keys import KeyFileError, load_signer, write_key_file
from gridex.signing import Signer

from meter_adapter.errors import MeterConfigError

__all__ = ["generate_key_file", "load_key_file"]


def load_key_file(path: str | Path, *, check_permissions: bool = True) -> Signer:
    """Read a key file (see :mod:`gridex.keys`).

    Args:
        path: The file.
        check_permissions: Refuse a plain key that group or others may read (POSIX only).

    Raises:
        MeterConfigError: The file is missing, unreadable, too open, or holds no valid key.
    """
    try:
        return load_signer(path, check_permissions=check_permissions)
    except KeyFileError as exc:
        raise MeterConfigError(str(exc)) from None


def generate_key_file(path: str | Path) -> Signer:
    """Write a fresh random key to ``path`` (mode 0600) and return its signer.

    Raises:
        MeterConfigError: ``path`` exists already (never overwritten) or cannot be written.
    """
    try:
        return write_key_file(path, label="gridex gateway key")
    except KeyFileError as exc:
        raise MeterConfigError(str(exc)) from None
