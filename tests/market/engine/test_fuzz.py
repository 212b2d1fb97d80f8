"""Malformed requests never come back as INTERNAL or UNKNOWN (Hypothesis, bounded)."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from gridex.v1 import market_pb2, meter_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from market.client import GatewayClient, TraderClient, status_code
from market.engine.auth import METHOD_ROLES
from market.engine.server import ServerThread
from market.engine.signing import Signer
from tests.strategies import int64s, proto_strings, reading_messages

from .conftest import FIRST

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BUGS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
UNARY = sorted(m for m in METHOD_ROLES if not m.endswith("StreamMarketEvents"))


def outcome(call: Callable[[], object]) -> grpc.StatusCode | None:
    """OK, or the status code the call failed with."""
    try:
        call()
    except grpc.RpcError as exc:
        return status_code(exc)
    return grpc.StatusCode.OK


@FUZZ
@given(method=st.sampled_from(UNARY), body=st.binary(max_size=120))
def test_random_request_bytes(
    engine_server: ServerThread, operator_signer: Signer, method: str, body: bytes
) -> None:
    """Any bytes, correctly signed by an operator, for every unary method."""
    with grpc.insecure_channel(engine_server.address) as channel:
        stub = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        code = outcome(
            lambda: stub(
                body, metadata=tuple(operator_signer.request_metadata(method, body)), timeout=30
            )
        )
    assert code not in BUGS


@FUZZ
@given(
    order_id=proto_strings(),
    side=st.integers(-(2**31), 2**31 - 1),
    interval=st.one_of(int64s(), st.integers(FIRST - 2, FIRST + 3)),
    quantity_wh=int64s(),
    limit_price=int64s(),
)
def test_random_order_fields(
    traders: list[TraderClient],
    *,
    order_id: str,
    side: int,
    interval: int,
    quantity_wh: int,
    limit_price: int,
) -> None:
    trader = traders[0]
    request = market_pb2.SubmitOrderRequest(
        participant=trader.address,
        client_order_id=order_id,
        side=side,  # type: ignore[arg-type]  # open enum: unknown values on purpose
        interval=interval,
        quantity_wh=quantity_wh,
        limit_price=limit_price,
    )
    code = outcome(
        lambda: trader.call(
            "/gridex.v1.MarketService/SubmitOrder", request, market_pb2.SubmitOrderResponse
        )
    )
    assert code in {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
    }


@FUZZ
@given(
    meter_id=st.one_of(st.just("m-1"), proto_strings(20)),
    readings=st.lists(reading_messages(), max_size=5),
    garbage=st.one_of(st.none(), st.binary(max_size=60)),
)
def test_random_reading_batches(
    gateway: GatewayClient,
    meter_id: str,
    readings: list[dict[str, int]],
    garbage: bytes | None,
) -> None:
    if garbage is None:
        signed = gateway.signed_batch(
            meter_id,
            1,
            [meter_pb2.Reading(**r) for r in readings],
        )
    else:
        signed = meter_pb2.SignedReadingBatch(batch=garbage, signature=garbage[:65])
    [ack] = list(gateway.stream(iter([signed]), timeout_s=30))
    assert ack.code not in {c.value[0] for c in BUGS}, ack.message
    if ack.code:
        assert ack.message


@pytest.mark.parametrize(
    ("after", "code"),
    [(0, grpc.StatusCode.DEADLINE_EXCEEDED), (2**64 - 1, grpc.StatusCode.OUT_OF_RANGE)],
)
def test_stream_from_any_sequence(
    engine_server: ServerThread, traders: list[TraderClient], after: int, code: grpc.StatusCode
) -> None:
    """A stream from the head waits politely (the deadline ends it); beyond it, OUT_OF_RANGE."""
    method = "/gridex.v1.MarketService/StreamMarketEvents"
    body = market_pb2.StreamMarketEventsRequest(after_sequence=after).SerializeToString()
    with grpc.insecure_channel(engine_server.address) as channel:
        stub = channel.unary_stream(method, request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as info:
            list(
                stub(
                    body,
                    metadata=tuple(traders[0].signer.request_metadata(method, body)),
                    timeout=0.5,
                )
            )
    assert status_code(info.value) == code
