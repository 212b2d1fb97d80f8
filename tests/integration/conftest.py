"""Fixtures for the integration tests: real servers on 127.0.0.1.

Each area names its fixtures after itself (``chain_*`` here) so that others
can add theirs beside them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contracts.devnode import HardhatNode


@pytest.fixture(scope="session")
def chain_hardhat_node() -> Iterator[HardhatNode]:
    """A Hardhat JSON-RPC node from node_modules (``npm ci``), for the whole session.

    A missing Hardhat install is an error, not a skip: CI installs it.
    """
    node = HardhatNode()
    node.start()
    try:
        yield node
    finally:
        node.stop()
