"""One process per buffer: an advisory lock file next to the gateway's buffer.

Two ``gridex-meter run`` processes on one buffer file would number and
deliver the same readings twice (the engine then quarantines them as
"already applied with other content"). :class:`BufferLock` takes an exclusive
``flock`` on ``<buffer>.lock`` and writes its PID into it; a second process
is refused at once with the first one's PID. The operating system drops the
lock when the holder exits, however it exits (SIGKILL and power cuts
included), so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import os
from pathlib import Path

from meter_adapter.errors import MeterConfigError

__all__ = ["BufferLock", "holder_pid"]


def _lock_path(buffer_path: str | Path) -> Path:
    return Path(f"{buffer_path}.lock")


def holder_pid(buffer_path: str | Path) -> int | None:
    """The PID of the process holding the buffer's lock, or None when nobody holds it."""
    path = _lock_path(buffer_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class BufferLock:
    """Holds ``<buffer>.lock`` for this process (a context manager).

    Raises (on :meth:`acquire`):
        MeterConfigError: Another process holds the lock (its PID is named),
            or the lock file cannot be created.
    """

    def __init__(self, buffer_path: str | Path) -> None:
        self.path = _lock_path(buffer_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise at once (never waits)."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise MeterConfigError(f"buffer lock {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f"process {text}" if text.isdigit() else "another process"
            raise MeterConfigError(
                f"buffer {str(self.path)[: -len('.lock')]} is in use by {who} "
                "(another gridex-meter run for this meter); stop it first or give --buffer"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (idempotent); the file stays, empty of meaning."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BufferLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
