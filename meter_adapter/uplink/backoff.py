"""Capped exponential backoff with jitter, for reconnecting to the engine.

The n-th consecutive failure waits ``d/2 + uniform(0, d/2)`` seconds with
``d = min(max_s, initial_s · 2ⁿ)`` ("equal jitter"): never less than half the
nominal delay, so a fleet of gateways does not hammer a recovering engine, and
spread over the other half, so the fleet does not come back in lockstep.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffPolicy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffPolicy:
    """Delays between attempts.

    Attributes:
        initial_s: Nominal delay after the first failure, s.
        max_s: Cap on the nominal delay, s.
    """

    initial_s: float = 0.5
    max_s: float = 30.0

    def problems(self) -> list[str]:
        """Every rule the policy breaks, each naming the field."""
        out: list[str] = []
        if not self.initial_s >= 0:
            out.append(f"initial_s: must be >= 0, got {self.initial_s}")
        if not self.max_s >= self.initial_s:
            out.append(f"max_s: must be >= initial_s ({self.initial_s}), got {self.max_s}")
        return out


class Backoff:
    """Counts consecutive failures and sleeps accordingly.

    Args:
        policy: The delays.
        rng: Source of the jitter (seed it for reproducible tests).
    """

    def __init__(self, policy: BackoffPolicy, *, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng if rng is not None else random.Random()
        self.failures = 0
        """Consecutive failures since the last :meth:`reset`."""

    def next_delay_s(self) -> float:
        """The delay after one more failure, s (counts the failure)."""
        nominal = min(self.policy.max_s, self.policy.initial_s * 2.0 ** min(self.failures, 60))
        self.failures += 1
        return nominal / 2 + self._rng.uniform(0.0, nominal / 2)

    async def sleep(self) -> float:
        """Count a failure and sleep for its delay; return the delay, s."""
        delay = self.next_delay_s()
        await asyncio.sleep(delay)
        return delay

    def reset(self) -> None:
        """Forget the failures (after a success)."""
        self.failures = 0
