"""Small helpers shared by the contracts tests."""

from __future__ import annotations

import re
from typing import Any

import pytest
from web3.contract import Contract
from web3.logs import DISCARD

from contracts import ContractRevertError


def reverts(reason: str) -> Any:
    """``pytest.raises`` for a revert with exactly ``reason``, sent as a transaction."""
    pattern = f"^reverted: {re.escape(reason)} \\(tx 0x[0-9a-f]{{64}}\\)$"
    return pytest.raises(ContractRevertError, match=pattern)


def logs(contract: Contract, event: str, receipt: Any) -> list[dict[str, Any]]:
    """The ``event`` logs of ``contract`` in ``receipt``, as plain argument dicts."""
    found = getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
    return [dict(log["args"]) for log in found]
