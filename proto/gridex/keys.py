"""Key files: the one format every gridex command and client reads.

Hand-written (not generated), next to :mod:`gridex.signing`, so the engine's
CLIs, the Python clients, the chain commands and the home gateway all read
keys the same way. A key file is either

- **plain text**: the first line that is neither empty nor a ``#`` comment is
  the secp256k1 private key, 64 hex digits with or without ``0x``; nothing
  else in the file is read. The file must not be readable by group or others
  on POSIX systems (mode ``0600``, as ssh demands of its keys)::

      # gridex key, address 0x90f8bf6a479f320ead074411a4b0e7944ea8c9c1 -- keep secret
      0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d

- or an **encrypted JSON keystore** (Web3 Secret Storage, as geth, Foundry's
  ``cast wallet`` and eth-account write them), whose password comes from
  ``$GRIDEX_KEY_PASSWORD`` or, on a terminal, a prompt. A keystore may have
  any mode: it is encrypted.

:func:`write_key_file` (``gridex keygen``, ``gridex-meter keygen``) writes a
plain-text file with mode ``0600`` and never overwrites one. Errors are
:class:`KeyFileError` (a ``ValueError``) naming the file and the rule; a
message never contains the key.
"""

from __future__ import annotations

import getpass
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gridex.signing import Signer

__all__ = ["PASSWORD_ENV", "KeyFileError", "load_signer", "read_private_key", "write_key_file"]

#: Environment variable holding a keystore's password.
PASSWORD_ENV = "GRIDEX_KEY_PASSWORD"


class KeyFileError(ValueError):
    """A key file is missing, unreadable, too open, or holds no valid key."""


def _prompt(path: Path) -> str | None:
    """Ask for a keystore password on a terminal; None when there is none to ask."""
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"password for keystore {path}: ")


def read_private_key(
    path: str | os.PathLike[str],
    *,
    password: str | None = None,
    check_permissions: bool = True,
    prompt: Callable[[Path], str | None] = _prompt,
) -> bytes:
    """The 32-byte private key in a key file (see the module docstring).

    Args:
        path: The key file.
        password: A keystore's password (default: ``$GRIDEX_KEY_PASSWORD``, then ``prompt``).
        check_permissions: Refuse a plain-text key that group or others may read (POSIX).
        prompt: Asks for a keystore password when none is given (None: cannot ask).

    Raises:
        KeyFileError: The file is missing or unreadable, a plain key is readable
            by others, no key is in it, or a keystore's password is missing or wrong.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyFileError(f"key file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise KeyFileError(f"key file {path}: not a text file") from None
    if text.lstrip().startswith("{"):
        return _decrypt_keystore(path, text, password, prompt)
    if check_permissions and os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key file {path}: mode {stat.S_IMODE(mode):04o} lets others read it; "
            f"run: chmod 600 {path}"
        )
    lines = [line.strip() for line in text.splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if not keys:
        raise KeyFileError(f"key file {path}: no key in it (expected 64 hex digits)")
    try:
        return bytes.fromhex(Signer(keys[0]).private_key_hex[2:])
    except ValueError as exc:
        raise KeyFileError(f"key file {path}: {exc}") from None  # never echo the key


def _decrypt_keystore(
    path: Path, text: str, password: str | None, prompt: Callable[[Path], str | None]
) -> bytes:
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise KeyFileError(f"key file {path}: not valid keystore JSON ({exc})") from None
    if not isinstance(document, dict) or "crypto" not in {k.lower() for k in document}:
        raise KeyFileError(f"key file {path}: JSON without a 'crypto' section is not a keystore")
    if password is None:
        password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = prompt(path)
    if password is None:
        raise KeyFileError(f"key file {path} is an encrypted keystore: set ${PASSWORD_ENV}")
    from eth_keyfile.keyfile import decode_keyfile_json  # eth-account's own keystore code

    try:
        key = bytes(decode_keyfile_json(document, password.encode()))
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"key file {path}: cannot decrypt the keystore ({exc})") from None
    if len(key) != 32:
        raise KeyFileError(f"key file {path}: the keystore holds {len(key)} bytes, not 32")
    return key


def load_signer(
    path: str | os.PathLike[str],
    *,
    password: str | None = None,
    check_permissions: bool = True,
    prompt: Callable[[Path], str | None] = _prompt,
) -> Signer:
    """A :class:`~gridex.signing.Signer` for the key in ``path`` (see :func:`read_private_key`).

    Raises:
        KeyFileError: As :func:`read_private_key`.
    """
    key = read_private_key(
        path, password=password, check_permissions=check_permissions, prompt=prompt
    )
    return Signer(key)


def write_key_file(
    path: str | os.PathLike[str], signer: Signer | None = None, *, label: str = "gridex key"
) -> Signer:
    """Write ``signer``'s key (default: a fresh random one) to ``path`` with mode 0600.

    The file starts with a comment naming ``label`` and the address.

    Raises:
        KeyFileError: ``path`` exists already (never overwritten) or cannot be written.
    """
    path = Path(path)
    signer = signer if signer is not None else Signer.generate()
    text = f"# {label}, address {signer.address} -- keep secret\n{signer.private_key_hex}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} exists already; not overwriting it") from None
    except OSError as exc:
        raise KeyFileError(f"key file {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return signer
