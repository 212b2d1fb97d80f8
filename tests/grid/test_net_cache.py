"""The disk cache of the built-in feeders' networks (grid._net_cache).

Each test points ``GRIDEX_CACHE_DIR`` at its own folder. The reference is
always a network built afresh by ``builtin_net``, never one read back.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from gridex.cache import cache_dir

from grid import Feeder, check_schedule, feeders, load_feeder


def _cache_file(folder: Path, name: str) -> Path:
    (path,) = (folder / "feeders").glob(f"{name}-*.pickle")
    return path


def _same(a: Feeder, b: Feeder) -> None:
    assert (a.buses, a.lines, a.trafos, a.ext_grid) == (b.buses, b.lines, b.trafos, b.ext_grid)
    np.testing.assert_array_equal(a.base_p_mw, b.base_p_mw)
    np.testing.assert_array_equal(a.base_q_mvar, b.base_q_mvar)
    zeros = np.zeros(a.n_bus)
    np.testing.assert_array_equal(check_schedule(a, zeros).vm_pu, check_schedule(b, zeros).vm_pu)


def _no_build(name: str) -> object:
    raise AssertionError(f"built {name} instead of reading the cache")


def test_the_second_load_reads_the_network_the_first_one_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDEX_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path
    first = load_feeder("kerber-dorfnetz")
    path = _cache_file(tmp_path, "kerber-dorfnetz")
    assert (path.stat().st_mode & 0o077) == 0
    assert (path.parent.stat().st_mode & 0o077) == 0
    fresh = Feeder.from_net(feeders.builtin_net("kerber-dorfnetz"), name="kerber-dorfnetz")
    monkeypatch.setattr(feeders, "builtin_net", _no_build)
    again = load_feeder("kerber-dorfnetz")
    _same(again, fresh)
    _same(first, fresh)


def test_an_unreadable_file_is_built_again_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GRIDEX_CACHE_DIR", str(tmp_path))
    load_feeder("cigre-lv")
    path = _cache_file(tmp_path, "cigre-lv")
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with caplog.at_level(logging.WARNING, logger="grid._net_cache"):
        feeder = load_feeder("cigre-lv")
    assert "not used" in caplog.text
    _same(feeder, Feeder.from_net(feeders.builtin_net("cigre-lv"), name="cigre-lv"))
    monkeypatch.setattr(feeders, "builtin_net", _no_build)
    _same(load_feeder("cigre-lv"), feeder)  # the file was replaced by a good one


def test_a_folder_that_cannot_be_written_only_costs_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("GRIDEX_CACHE_DIR", str(blocker / "cache"))
    feeder = load_feeder("cigre-lv")
    assert feeder.n_bus == 44
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_a_file_another_user_owns_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRIDEX_CACHE_DIR", str(tmp_path))
    load_feeder("cigre-lv")
    path = _cache_file(tmp_path, "cigre-lv")
    os.chown(path, 12345, 12345)
    built: list[str] = []
    real = feeders.builtin_net

    def counting(name: str) -> object:
        built.append(name)
        return real(name)

    monkeypatch.setattr(feeders, "builtin_net", counting)
    load_feeder("cigre-lv")
    assert built == ["cigre-lv"]


def test_without_a_home_folder_the_network_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GRIDEX_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert load_feeder("cigre-lv").n_bus == 44
