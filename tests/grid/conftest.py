"""Feeders loaded once per test session (loading runs a deepcopy and numba warm-up)."""

from __future__ import annotations

import pytest

from grid import Feeder, load_feeder

ACCURACY_FEEDERS = ["cigre-lv", "kerber-dorfnetz", "case33bw", "mv-oberrhein"]


@pytest.fixture(scope="session")
def feeders() -> dict[str, Feeder]:
    return {name: load_feeder(name) for name in ACCURACY_FEEDERS}
