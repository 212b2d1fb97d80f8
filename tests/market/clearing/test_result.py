"""The result value: canonical bytes, round trip, the injection helper."""

from __future__ import annotations

import json

import numpy as np
import pytest

from market.clearing import ClearingOptions, ClearingResult, clear, net_injection_mw
from market.config import MarketConfig
from market.errors import InputFileError
from tests.market.clearing.nets import feeder
from tests.market.clearing.test_nodal import book

CONFIG = MarketConfig(retail_price=300_000, feed_in_price=80_000)


@pytest.fixture(scope="module")
def result() -> ClearingResult:
    orders, parts = book(
        [(3, "sell", 60, 100_000), (1, "buy", 100, 250_000), (5, "buy", 3, 320_000)]
    )
    return clear(feeder("radial"), orders, parts, CONFIG)


def test_bytes_are_canonical_and_exclude_timings(result: ClearingResult) -> None:
    data = result.to_json()
    raw = json.loads(data)
    assert data == json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    assert "stats" not in raw
    timed = json.loads(result.to_json(include_timings=True))
    assert timed["stats"]["total_s"] > 0
    assert timed["stats"]["solver"] == "fast"


def test_round_trip_is_equal_with_or_without_timings(result: ClearingResult) -> None:
    assert ClearingResult.from_json(result.to_json()) == result
    again = ClearingResult.from_json(result.to_json(include_timings=True))
    assert again == result
    assert again.stats == result.stats


def test_equality_ignores_timings() -> None:
    orders, parts = book([(3, "sell", 5, 100_000), (5, "buy", 3, 320_000)])
    one = clear(feeder("radial"), orders, parts, CONFIG)
    two = clear(feeder("radial"), orders, parts, CONFIG)
    assert one == two
    assert one.to_json() == two.to_json()


@pytest.mark.parametrize("data", [b"", b"[]", b'{"format": 99}', b'{"format": 1}', "not json"])
def test_garbage_is_an_input_error(data: bytes | str) -> None:
    with pytest.raises(InputFileError, match="not a serialised clearing result"):
        ClearingResult.from_json(data)


def test_net_injection_matches_fills(result: ClearingResult) -> None:
    f = feeder("radial")
    inj = net_injection_mw(result, f)
    mw_per_wh = 3600 / CONFIG.interval_s / 1e6
    sells = sum(x.filled_wh for x in result.fills if x.side == "sell")
    buys = sum(x.filled_wh for x in result.fills if x.side == "buy")
    assert inj.sum() == pytest.approx((sells - buys) * mw_per_wh)
    assert inj[f.position_of(3)] == pytest.approx(result.fills[0].filled_wh * mw_per_wh)
    assert np.count_nonzero(inj) == 3


def test_options_reject_bad_values() -> None:
    from market.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        ClearingOptions(sensitivities="xx", constraints="lines,cables", max_rounds=0)  # type: ignore[arg-type]
    message = str(info.value)
    assert "sensitivities" in message
    assert "cables" in message
    assert "max_rounds" in message
