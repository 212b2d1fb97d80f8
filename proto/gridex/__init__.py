"""gridex generated protobuf code lives under :mod:`gridex.v1`.

Importing :mod:`gridex` (``market`` and ``contracts`` do, first thing) points
eth-hash, the keccak-256 of web3, eth-account and the embedded EVM (py-evm
hashes its state trie with it), at safe-pysha3's C keccak, a dependency: about
1.4 µs a hash against 8.5 µs through pycryptodome, which eth-hash picks first
otherwise. An ``ETH_HASH_BACKEND`` already set is left alone. eth-hash chooses
its backend at its first hash, so this must run before one.
"""

import importlib.util
import os

if importlib.util.find_spec("sha3") is not None:
    os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
