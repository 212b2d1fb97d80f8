"""Importing gridex's packages puts eth-hash (web3, py-evm) on the C keccak."""

from __future__ import annotations

import os
import subprocess
import sys


def test_importing_contracts_or_market_selects_the_c_keccak() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ETH_HASH_BACKEND"}
    for package in ("contracts", "market"):
        code = (
            f"import {package}, os\n"
            "from eth_hash.auto import keccak\n"
            "print(os.environ.get('ETH_HASH_BACKEND'), keccak(b'').hex())\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()
        # the Ethereum keccak-256 of the empty string (not NIST SHA3-256)
        assert out == ["pysha3", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"]
