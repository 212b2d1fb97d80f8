"""market."""

import gridex  # noqa: F401 - first: eth-hash on the C keccak (see gridex)
