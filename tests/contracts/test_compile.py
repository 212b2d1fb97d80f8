"""Compiling: pinned compiler, cached in the process and on disk, typed failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import vyper

from contracts import CompileError, _compile, compiled


def test_pinned_compiler_and_pragmas() -> None:
    assert vyper.__version__ == "0.4.3"
    for name in _compile.CONTRACT_NAMES:
        source = (Path(_compile.__file__).parent / f"{name}.vy").read_text()
        assert "# pragma version 0.4.3" in source
        assert "# pragma evm-version cancun" in source


def test_every_revert_has_a_reason() -> None:
    for name in _compile.CONTRACT_NAMES:
        source = (Path(_compile.__file__).parent / f"{name}.vy").read_text()
        for line in source.splitlines():
            if line.strip().startswith(("assert ", "raise")):
                assert ', "' in line, f"{name}: revert without a reason: {line.strip()}"


def test_compiles_once_then_reads_the_disk_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDEX_CACHE_DIR", str(tmp_path))
    compiled.cache_clear()
    try:
        first = compiled("Settlement")
        (entry,) = (tmp_path / "vyper").glob("Settlement-*.json")
        assert compiled("Settlement") is first  # process cache

        compiled.cache_clear()

        def no_compiler(*args: object, **kwargs: object) -> object:
            raise AssertionError("compiled although a cache entry exists")

        monkeypatch.setattr(vyper, "compile_code", no_compiler)
        second = compiled("Settlement")
        assert (second.abi, second.bytecode) == (first.abi, first.bytecode)
        assert entry.exists()
    finally:
        compiled.cache_clear()


def test_a_corrupt_cache_entry_is_recompiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDEX_CACHE_DIR", str(tmp_path))
    compiled.cache_clear()
    try:
        first = compiled("EnergyToken")
        (entry,) = (tmp_path / "vyper").glob("EnergyToken-*.json")
        entry.write_text("{not json")
        compiled.cache_clear()
        assert compiled("EnergyToken").bytecode == first.bytecode
    finally:
        compiled.cache_clear()


def test_compile_errors_are_typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(CompileError, match="unknown contract"):
        compiled("Nope")  # type: ignore[arg-type]
    monkeypatch.setattr(_compile, "_SOURCE_DIR", tmp_path)
    monkeypatch.setenv("GRIDEX_CACHE_DIR", str(tmp_path / "cache"))
    compiled.cache_clear()
    try:
        with pytest.raises(CompileError, match="cannot read"):
            compiled("Settlement")
        (tmp_path / "Settlement.vy").write_text("# pragma version 0.4.3\ndef broken(:\n")
        with pytest.raises(CompileError, match=r"Settlement\.vy"):
            compiled("Settlement")
    finally:
        compiled.cache_clear()
