"""The gateway's key file.

Format: a text file whose first non-empty line that is not a ``#`` comment is
the secp256k1 private key as ``0x`` followed by 64 hex digits (the ``0x`` may
be left out). Nothing else is read. Example::

    # gridex gateway key for meter garage-1 -- keep secret
    0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318

The file must be readable by its owner only (mode ``0600`` or stricter, as
ssh demands of its keys); a key readable by group or others is refused on
POSIX systems. ``gridex-meter keygen --out FILE`` writes a fresh one with the
right mode and prints its address, which the operator registers
(``OperatorService/RegisterGateway``; the same address is the participant
when the prosumer agent trades).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gridex.signing import Signer

from meter_adapter.errors import MeterConfigError

__all__ = ["generate_key_file", "load_key_file"]


def load_key_file(path: str | Path, *, check_permissions: bool = True) -> Signer:
    """Read a key file (see the module docstring).

    Args:
        path: The file.
        check_permissions: Refuse a file that group or others may read (POSIX only).

    Raises:
        MeterConfigError: The file is missing, unreadable, too open, or holds no valid key.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MeterConfigError(f"key file {path}: {exc.strerror or exc}") from exc
    if check_permissions and os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MeterConfigError(
            f"key file {path}: mode {stat.S_IMODE(mode):04o} lets others read it; "
            f"run: chmod 600 {path}"
        )
    lines = [line.strip() for line in text.splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if not keys:
        raise MeterConfigError(f"key file {path}: no key in it")
    try:
        return Signer(keys[0])
    except ValueError as exc:
        raise MeterConfigError(f"key file {path}: {exc}") from None  # never echo the key


def generate_key_file(path: str | Path) -> Signer:
    """Write a fresh random key to ``path`` (mode 0600) and return its signer.

    Raises:
        MeterConfigError: ``path`` exists already (never overwritten) or cannot be written.
    """
    path = Path(path)
    signer = Signer.generate()
    text = f"# gridex gateway key, address {signer.address} -- keep secret\n"
    text += signer.private_key_hex + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise MeterConfigError(f"key file {path} exists already; not overwriting it") from None
    except OSError as exc:
        raise MeterConfigError(f"key file {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return signer
