"""Output folders that are complete or absent: build in a hidden sibling, then swap in.

An interrupted or failed run removes its work folder and leaves the target as
it was (an earlier complete report, or nothing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from market.errors import ConfigError

__all__ = ["discard", "prepare", "publish", "work_folder"]


def work_folder(final: Path) -> Path:
    """The hidden work folder of ``final`` for this process (not created)."""
    return final.with_name(f".{final.name}.partial-{os.getpid()}")


def prepare(final: Path, *, field: str) -> Path:
    """A fresh, empty :func:`work_folder` next to ``final`` (whose parent is created).

    Raises:
        ConfigError: the parent folder cannot be created (``field`` names the option).
    """
    work = work_folder(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
    except OSError as exc:
        raise ConfigError(f"{field}: cannot create {final} ({exc.strerror or exc})") from exc
    return work


def publish(work: Path, final: Path, *, field: str) -> None:
    """Put the finished ``work`` folder in place of ``final`` (an earlier one is replaced).

    Raises:
        ConfigError: ``final`` is not a folder, or cannot be replaced.
    """
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    try:
        if final.exists() and not final.is_dir():
            raise ConfigError(f"{field}: {final} exists and is not a folder")
        if final.exists():
            final.rename(old)
        work.rename(final)
    except OSError as exc:
        raise ConfigError(f"{field}: cannot write {final} ({exc.strerror or exc})") from exc
    shutil.rmtree(old, ignore_errors=True)


def discard(work: Path) -> None:
    """Remove an unfinished work folder."""
    shutil.rmtree(work, ignore_errors=True)
