"""Compile the package's Vyper sources, with a two-level cache.

The compiler is the pinned ``vyper`` package itself (nothing is downloaded).
Compiling both contracts takes about a second, so results are cached

* in the process: each source is compiled at most once per process;
* on disk: ``<cache dir>/vyper/<name>-<key>.json``, where the key is the
  SHA-256 of the compiler version and the source text. The cache dir is
  ``$GRIDEX_CACHE_DIR``, else ``$XDG_CACHE_HOME/gridex``, else
  ``~/.cache/gridex``. An unwritable cache dir only costs the compile time.

A changed source or compiler gets a new key, so a stale entry is never used.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from gridex.cache import cache_dir

from contracts.errors import CompileError

__all__ = ["CONTRACT_NAMES", "CompiledContract", "ContractName", "cache_dir", "compiled"]

logger = logging.getLogger(__name__)

ContractName = Literal["EnergyToken", "Settlement"]
CONTRACT_NAMES: Final[tuple[ContractName, ...]] = ("EnergyToken", "Settlement")
_SOURCE_DIR: Final = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CompiledContract:
    """ABI and deployable bytecode of one contract."""

    name: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str  # 0x-prefixed creation code
    source_sha256: str


@functools.cache
def compiled(name: ContractName) -> CompiledContract:
    """The compiled contract ``name``, from the process cache, the disk cache or vyper.

    Raises:
        CompileError: the source is missing or does not compile.
    """
    if name not in CONTRACT_NAMES:
        raise CompileError(f"unknown contract {name!r}; expected one of {CONTRACT_NAMES}")
    source_path = _SOURCE_DIR / f"{name}.vy"
    try:
        source = source_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CompileError(f"cannot read {source_path}: {exc}") from exc
    import vyper

    version = str(vyper.__version__)
    source_sha256 = hashlib.sha256(source.encode()).hexdigest()
    key = hashlib.sha256(f"{version}\0{source_sha256}".encode()).hexdigest()[:32]
    path = cache_dir() / "vyper" / f"{name}-{key}.json"
    cached = _read_cache(path)
    if cached is None:
        cached = _compile(source, source_path)
        _write_cache(path, cached)
    return CompiledContract(
        name=name,
        abi=tuple(cached["abi"]),
        bytecode=cached["bytecode"],
        source_sha256=source_sha256,
    )


def _compile(source: str, source_path: Path) -> dict[str, Any]:
    import vyper
    from vyper.exceptions import VyperException

    logger.debug("compiling %s with vyper %s", source_path.name, vyper.__version__)
    try:
        out = vyper.compile_code(
            source, contract_path=source_path.name, output_formats=["abi", "bytecode"]
        )
    except VyperException as exc:
        raise CompileError(f"{source_path.name}: {exc}") from exc
    return {"abi": out["abi"], "bytecode": out["bytecode"]}


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("abi"), list):
        return None
    if not isinstance(data.get("bytecode"), str):
        return None
    return data


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)  # atomic: concurrent processes never read half a file
    except OSError as exc:
        logger.debug("not caching %s: %s", path, exc)
