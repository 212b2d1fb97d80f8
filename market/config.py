"""Market configuration: one frozen value per market (feeder)."""

from __future__ import annotations

from dataclasses import dataclass, field

from market.errors import ConfigError

__all__ = ["MarketConfig"]


@dataclass(frozen=True, slots=True)
class MarketConfig:
    """Prices, band and interval length of a local market.

    Prices are integer token base units per kWh. The external grid sells at
    ``retail_price`` and buys at ``feed_in_price``, so local prices land
    between them.

    Attributes:
        interval_s: length of one market interval in seconds (default 15 min).
        retail_price: what the external grid charges for imported energy.
        feed_in_price: what the external grid pays for exported energy.
        price_min: lowest limit price an order may carry.
        price_max: highest limit price an order may carry.
        grid_fee_per_kwh: network-usage fee per kWh traded locally, charged
            to buyers and paid to the operator (0 = none).
        token_decimals: decimals of the payment token (display only).
    """

    interval_s: int = 900
    retail_price: int = 300_000
    feed_in_price: int = 80_000
    price_min: int = 0
    price_max: int = 1_000_000
    grid_fee_per_kwh: int = 0
    token_decimals: int = field(default=6)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every rule the configuration breaks, each naming the field."""
        out: list[str] = []
        for name in ("interval_s", "retail_price", "feed_in_price", "price_min", "price_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                out.append(f"{name}: must be an integer, got {value!r}")
        if out:
            return out
        if self.interval_s <= 0 or 86_400 % self.interval_s != 0:
            out.append(f"interval_s: must divide a day into whole intervals, got {self.interval_s}")
        if self.price_min < 0:
            out.append(f"price_min: must be >= 0, got {self.price_min}")
        if self.price_max <= self.price_min:
            out.append(f"price_max: must exceed price_min ({self.price_min}), got {self.price_max}")
        if self.feed_in_price < 0:
            out.append(f"feed_in_price: must be >= 0, got {self.feed_in_price}")
        if self.retail_price < self.feed_in_price:
            out.append(
                f"retail_price: must be >= feed_in_price ({self.feed_in_price}), "
                f"got {self.retail_price}"
            )
        if self.grid_fee_per_kwh < 0:
            out.append(f"grid_fee_per_kwh: must be >= 0, got {self.grid_fee_per_kwh}")
        if not 0 <= self.token_decimals <= 36:
            out.append(f"token_decimals: must be in 0..36, got {self.token_decimals}")
        return out

    def interval_start_s(self, interval: int) -> int:
        """Unix time in seconds at which interval ``interval`` starts."""
        return interval * self.interval_s

    def interval_at(self, unix_s: float) -> int:
        """The id of the interval that contains Unix time ``unix_s``."""
        return int(unix_s // self.interval_s)
