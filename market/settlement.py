"""The books of one interval after metering: clearing payments plus imbalance.

Sign conventions: energy is integer Wh, positive when a participant exports
(sells, injects); money is integer token base units, positive when an
account receives.

Inputs per participant: net traded energy from the clearing (sell fills
positive, buy fills negative), the clearing payment, and net metered export
(export − import over the participant's meters). Imbalance is what was
delivered beyond the trades::

    imbalance_wh = metered_wh − traded_wh

The grid takes the other side of every imbalance, at the operator's tariffs
(:class:`market.config.MarketConfig`, base units per kWh): a positive
imbalance is bought at ``feed_in_price``, a negative one sold at
``retail_price``.

Accounts. The operator's account (``operator``) stands in for the grid, so
each interval's netted settlement has these entries::

    delta[p]        = payment[p] + imbalance_amount[p]           every participant p
    delta[operator] = grid_clearing_amount − Σ_p imbalance_amount[p]
    fee             = operator_surplus                           (congestion rent + fees)
    grid_clearing_amount = −Σ_p payment[p] − operator_surplus

``grid_clearing_amount`` is what the clearing paid the grid for imported
energy net of what the grid paid for exported energy: whatever the
participants' payments and the surplus leave over. The operator settles it
with the supplier off chain; on chain it lands on the operator's account,
apart from ``fee``, which the Settlement contract credits separately.

Rounding. ``imbalance_amount[p] = floor(imbalance_wh[p] × price / 1000)``
with Python's floor division, the price picked by the imbalance's sign. For a
positive imbalance the participant receives the value rounded down; for a
negative one, ``floor(−x) = −ceil(x)``, so the participant pays the value
rounded up. Either way the sub-unit remainder (less than one base unit per
participant) stays with the operator.

Exactness. Every amount is a Python integer. The operator's delta is defined
as the negated sum of the others, so ``Σ delta + fee = Σ payment + Σ
imbalance_amount + (−Σ payment − fee − Σ imbalance_amount) + fee = 0``
identically, with no tolerance — which is the check the Settlement contract
makes. Accounts whose delta is zero are left out of ``deltas``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from market.config import MarketConfig
from market.errors import SettlementInputError
from market.orders import normalise_address

__all__ = [
    "IntervalSettlement",
    "imbalance_amount",
    "settle_interval",
    "settlement_difference",
]

_WH_PER_KWH = 1000


def imbalance_amount(imbalance_wh: int, config: MarketConfig) -> int:
    """Money a participant receives for an imbalance, base units (negative = pays).

    A positive imbalance (more exported than traded) is bought by the grid at
    ``feed_in_price`` and rounded down; a negative one is sold to the
    participant at ``retail_price`` and the payment rounded up.
    """
    price = config.feed_in_price if imbalance_wh > 0 else config.retail_price
    return imbalance_wh * price // _WH_PER_KWH


@dataclass(frozen=True, slots=True)
class IntervalSettlement:
    """The netted settlement of one interval, balanced to the last base unit.

    Invariant: ``sum(deltas.values()) + fee == 0``.

    Attributes:
        interval: the interval id.
        operator: the operator's (grid's) account, lower-case address.
        deltas: net balance change per account, base units, sorted by
            address; participants and the operator; zero deltas left out.
        fee: the operator's surplus from the clearing (congestion rent and
            fees), base units, ``>= 0``; credited to the operator on chain.
        result_hash: the hash the posting carries on chain (32 bytes); the
            engine posts its manifest's hash (:mod:`market.manifest`).
        traded_wh: net traded export per participant, Wh.
        metered_wh: net metered export per participant, Wh.
        imbalance_wh: ``metered_wh − traded_wh`` per participant, Wh.
        imbalance_amounts: what each participant receives for its imbalance,
            base units (negative = pays).
        grid_clearing_amount: what the clearing owes the grid side, base
            units (``−Σ payments − fee``).
    """

    interval: int
    operator: str
    deltas: Mapping[str, int]
    fee: int
    result_hash: bytes
    traded_wh: Mapping[str, int]
    metered_wh: Mapping[str, int]
    imbalance_wh: Mapping[str, int]
    imbalance_amounts: Mapping[str, int]
    grid_clearing_amount: int

    @property
    def imbalance_export_wh(self) -> int:
        """Energy delivered beyond the trades, all participants, Wh (``>= 0``)."""
        return sum(v for v in self.imbalance_wh.values() if v > 0)

    @property
    def imbalance_import_wh(self) -> int:
        """Energy drawn beyond the trades, all participants, Wh (``>= 0``)."""
        return -sum(v for v in self.imbalance_wh.values() if v < 0)

    @property
    def imbalance_total_amount(self) -> int:
        """What the participants receive for imbalances in total, base units."""
        return sum(self.imbalance_amounts.values())

    @property
    def transferred(self) -> int:
        """Tokens moved: the sum of the positive deltas plus the fee, base units."""
        return sum(v for v in self.deltas.values() if v > 0) + self.fee

    def to_json(self) -> str:
        """The settlement file read by ``gridex chain settle-file``, canonical.

        Shape ``{"deltas": {address: int}, "fee": int, "interval": int,
        "result_hash": "0x…"}`` with sorted keys and no whitespace, so equal
        settlements give equal bytes.
        """
        return json.dumps(
            {
                "interval": self.interval,
                "deltas": dict(self.deltas),
                "fee": self.fee,
                "result_hash": "0x" + self.result_hash.hex(),
            },
            sort_keys=True,
            separators=(",", ":"),
        )


def _int(name: str, value: object) -> int:
    if type(value) is not int:
        raise SettlementInputError(f"{name}: must be an integer, got {value!r}")
    return value


def _by_address(name: str, values: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in values.items():
        try:
            address = normalise_address(key)
        except ValueError as exc:
            raise SettlementInputError(f"{name}: {exc}") from exc
        if address in out:
            raise SettlementInputError(f"{name}: address {address} appears twice")
        out[address] = _int(f"{name}[{address}]", value)
    return out


def settle_interval(
    interval: int,
    *,
    traded_wh: Mapping[str, int],
    payments: Mapping[str, int],
    operator_surplus: int,
    metered_wh: Mapping[str, int],
    config: MarketConfig,
    operator: str,
    result_hash: bytes,
) -> IntervalSettlement:
    """Settle one interval: clearing payments plus imbalance against metered energy.

    The participants are the union of the three mappings' keys; one missing
    from a mapping counts 0 there (a participant without a meter entry is
    taken to have delivered nothing, so pass every metered participant).
    See the module docstring for the accounts, rounding rule and proof of
    balance.

    Args:
        interval: the interval id, ``>= 0``.
        traded_wh: net traded export per participant address, Wh (sell fills
            positive, buy fills negative).
        payments: clearing payment per participant, base units (positive =
            receives).
        operator_surplus: the clearing's operator surplus, base units, ``>= 0``.
        metered_wh: net metered export (export − import) per participant, Wh.
        config: the tariffs (``retail_price``, ``feed_in_price``).
        operator: the operator's account, which takes the grid's side.
        result_hash: the hash to post with it, 32 bytes (the engine replaces
            it by the posting manifest's hash, :mod:`market.manifest`).

    Returns:
        The settlement, with ``sum(deltas) + fee == 0``.

    Raises:
        SettlementInputError: a value has the wrong type, an address is
            malformed or appears twice, the operator is among the
            participants, the surplus is negative, or the hash is not 32
            bytes or all zero.
    """
    if _int("interval", interval) < 0:
        raise SettlementInputError(f"interval: must be >= 0, got {interval}")
    if _int("operator_surplus", operator_surplus) < 0:
        raise SettlementInputError(f"operator_surplus: must be >= 0, got {operator_surplus}")
    if not isinstance(result_hash, bytes) or len(result_hash) != 32 or not any(result_hash):
        raise SettlementInputError(
            f"result_hash: must be 32 bytes and not all zero (as on chain), got {result_hash!r}"
        )
    try:
        grid_account = normalise_address(operator)
    except ValueError as exc:
        raise SettlementInputError(f"operator: {exc}") from exc
    traded = _by_address("traded_wh", traded_wh)
    paid = _by_address("payments", payments)
    metered = _by_address("metered_wh", metered_wh)
    participants = sorted(traded.keys() | paid.keys() | metered.keys())
    if grid_account in participants:
        raise SettlementInputError(
            f"operator: the operator's account {grid_account} may not also be a participant"
        )

    imbalance = {p: metered.get(p, 0) - traded.get(p, 0) for p in participants}
    amounts = {p: imbalance_amount(imbalance[p], config) for p in participants}
    grid_clearing = -sum(paid.values()) - operator_surplus
    deltas = {p: paid.get(p, 0) + amounts[p] for p in participants}
    deltas[grid_account] = grid_clearing - sum(amounts.values())
    settlement = IntervalSettlement(
        interval=interval,
        operator=grid_account,
        deltas={a: v for a, v in sorted(deltas.items()) if v != 0},
        fee=operator_surplus,
        result_hash=result_hash,
        traded_wh={p: traded.get(p, 0) for p in participants},
        metered_wh={p: metered.get(p, 0) for p in participants},
        imbalance_wh=imbalance,
        imbalance_amounts=amounts,
        grid_clearing_amount=grid_clearing,
    )
    if sum(settlement.deltas.values()) + settlement.fee != 0:  # pragma: no cover - see proof
        raise AssertionError("settlement does not balance")
    return settlement


def settlement_difference(
    posted: IntervalSettlement, wanted: IntervalSettlement
) -> tuple[dict[str, int], int]:
    """What a reconciliation posts: ``wanted`` minus what ``posted`` already carried.

    Both are settlements of the same interval and clearing, so the operator's
    fee is the same; the deltas' difference then sums to zero on its own
    (``Σ wanted − Σ posted = −fee + fee``). Accounts whose difference is zero
    are left out.

    Raises:
        SettlementInputError: the two are of different intervals or fees.
    """
    if posted.interval != wanted.interval:
        raise SettlementInputError(
            f"interval: a correction of {posted.interval} cannot be taken from {wanted.interval}"
        )
    if posted.fee != wanted.fee:
        raise SettlementInputError(
            f"fee: a correction keeps the clearing's fee ({posted.fee}), got {wanted.fee}"
        )
    accounts = sorted(posted.deltas.keys() | wanted.deltas.keys())
    diff = {a: wanted.deltas.get(a, 0) - posted.deltas.get(a, 0) for a in accounts}
    return {a: d for a, d in diff.items() if d != 0}, 0
