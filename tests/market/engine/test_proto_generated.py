"""The committed generated code of ``gridex.v1`` is what the generation script makes now."""

from __future__ import annotations

from pathlib import Path

from gridex.v1 import _generate

PROTO_DIR = Path(_generate.__file__).resolve().parent


def test_regenerating_changes_nothing(tmp_path: Path) -> None:
    written = _generate.generate(tmp_path)
    assert written, "the script generated no file"
    for fresh in written:
        committed = PROTO_DIR / fresh.name
        assert committed.exists(), f"{fresh.name} is generated but not committed"
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{fresh.name} differs from a fresh generation: run `make proto` and commit"
        )
    generated = {p.name for p in PROTO_DIR.glob("*_pb2*.py*")}
    assert generated == {p.name for p in written}, "a stale generated file is committed"


def test_every_file_carries_the_header() -> None:
    for path in PROTO_DIR.glob("*_pb2*.py*"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert "do not edit" in first, path.name
