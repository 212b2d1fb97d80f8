"""The signature scheme of docs/signing.md, checked against its test vectors and eth-account."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from gridex.v1 import market_pb2, meter_pb2, types_pb2

from market.engine import signing
from market.errors import AuthenticationError

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = "0x2c7536e3605d9c16a7a3d7b1898e529396a65c23"
METHOD = "/gridex.v1.MarketService/SubmitOrder"
REQUEST_HEX = (
    "0a2a307832633735333665333630356439633136613761336437623138393865353239333936613635633233"
    "12076f726465722d31180220c0d37628dc0b30c0a907"
)
ENGINE_ID = "cigre-lv"
REQUEST_SIGNATURE = (
    "0xa195f87f2d8aee345bfc01ccf1c851001cd4df4dac628d904f988b84371469bf"
    "73c08f78e85abbf41d6389f88af229aef0241b7fd697a8b7bbed7ca323191fa31c"
)
BATCH_HEX = (
    "0a2a307832633735333665333630356439633136613761336437623138393865353239333936613635633233"
    "12076d657465722d311807221a08011080b0a5e2f53218e80720fa0128d2fcffffffffffffff01"
)
BATCH_SIGNATURE = (
    "b7c544474e6e7f3af41ec82fb1a8fa48bf09325875b461a91ba2d2e6fab7deb8"
    "08cc1c1737b72638693b67d1135ffc8b04a9ba254cf9ebc4043f1810dc2f71e81b"
)
BATCH_SIGNATURE_FEEDER_B = (
    "797678cf23ed79f1778182288a28c580d63f19ea8ac737d43c981a97bbb9ac03"
    "66e7d0cff791b24532c7db031060ed0e5a46be0827b88970393229ebfa1b74c01b"
)


def test_request_vector() -> None:
    request = market_pb2.SubmitOrderRequest(
        participant=ADDRESS,
        client_order_id="order-1",
        side=types_pb2.SIDE_SELL,
        interval=1944000,
        quantity_wh=1500,
        limit_price=120000,
    )
    raw = request.SerializeToString()
    assert raw.hex() == REQUEST_HEX
    message = signing.request_message(
        METHOD, raw, 1749600000000, "6f1e0b2c9a7d4e35", engine_id=ENGINE_ID
    )
    assert message.decode().splitlines() == [
        "gridex.v1 request",
        ENGINE_ID,
        METHOD,
        "1749600000000",
        "6f1e0b2c9a7d4e35",
        "c1e8511f5cc801f3e5f11d98d71ab59cf6f4451ba3d6974c4b8cadcef8112e59",
    ]
    metadata = dict(
        signing.Signer(KEY).request_metadata(
            METHOD, raw, engine_id=ENGINE_ID, timestamp_ms=1749600000000, nonce="6f1e0b2c9a7d4e35"
        )
    )
    assert metadata == {
        "x-gridex-address": ADDRESS,
        "x-gridex-timestamp-ms": "1749600000000",
        "x-gridex-nonce": "6f1e0b2c9a7d4e35",
        "x-gridex-signature": REQUEST_SIGNATURE,
    }
    signature = bytes.fromhex(REQUEST_SIGNATURE[2:])
    # An independent implementation produces and recovers the same signature.
    assert bytes(Account.sign_message(encode_defunct(primitive=message), KEY).signature) == (
        signature
    )
    assert Account.recover_message(
        encode_defunct(primitive=message), signature=signature
    ).lower() == (ADDRESS)
    recovered = signing.recover_request_signer(
        METHOD, raw, 1749600000000, "6f1e0b2c9a7d4e35", signature, engine_id=ENGINE_ID
    )
    assert recovered == ADDRESS
    # the same signature names another signer at another engine: it is valid at one only
    elsewhere = signing.recover_request_signer(
        METHOD, raw, 1749600000000, "6f1e0b2c9a7d4e35", signature, engine_id="feeder-b"
    )
    assert elsewhere != ADDRESS


def test_batched_orders_vector() -> None:
    entry = market_pb2.SubmitOrdersRequest.Entry
    request = market_pb2.SubmitOrdersRequest(
        participant=ADDRESS,
        orders=[
            entry(
                client_order_id="order-1",
                side=types_pb2.SIDE_SELL,
                interval=1944000,
                quantity_wh=1500,
                limit_price=120000,
            ),
            entry(
                client_order_id="order-2",
                side=types_pb2.SIDE_BUY,
                interval=1944001,
                quantity_wh=500,
                limit_price=90000,
            ),
        ],
    )
    raw = request.SerializeToString()
    assert raw.hex() == (
        "0a2a30783263373533366533363035643963313661376133643762313839386535323933393661363563"
        "323312160a076f726465722d31100218c0d37620dc0b28c0a90712160a076f726465722d32100118c1d3"
        "7620f4032890bf05"
    )
    method = "/gridex.v1.MarketService/SubmitOrders"
    message = signing.request_message(
        method, raw, 1749600000000, "0b7c3d9e2f4a6158", engine_id=ENGINE_ID
    )
    assert message.decode().splitlines()[-1] == (
        "d95b0c029342118251f13e099dd2bcbe72b04f277b6dc770a4d7fc0267c7aafd"
    )
    expected = (
        "0xd8f26bdd8ff876c8c6c2e7301692d752056709786856961e26681c444e977223"
        "0ccd17dd945133d92867d62744705e4ed85d60ee951663ba74581d72a846bef61b"
    )
    metadata = dict(
        signing.Signer(KEY).request_metadata(
            method, raw, engine_id=ENGINE_ID, timestamp_ms=1749600000000, nonce="0b7c3d9e2f4a6158"
        )
    )
    assert metadata["x-gridex-signature"] == expected
    independent = Account.sign_message(encode_defunct(primitive=message), KEY).signature
    assert "0x" + bytes(independent).hex() == expected


@pytest.mark.parametrize("engine_id", ["", "a\nb", "x" * 65, "feeder b"])
def test_an_engine_id_is_one_short_line(engine_id: str) -> None:
    with pytest.raises(ValueError, match="engine_id"):
        signing.request_message(METHOD, b"", 1, "nonce-123", engine_id=engine_id)


def test_batch_vector() -> None:
    batch = meter_pb2.ReadingBatch(
        gateway=ADDRESS,
        meter_id="meter-1",
        batch_id=7,
        readings=[
            meter_pb2.Reading(
                seq=1,
                timestamp_ms=1749600000000,
                energy_import_wh=1000,
                energy_export_wh=250,
                power_w=-430,
            )
        ],
    )
    raw = batch.SerializeToString()
    assert raw.hex() == BATCH_HEX
    signature = signing.Signer(KEY).sign_batch(raw, engine_id=ENGINE_ID)
    assert signature.hex() == BATCH_SIGNATURE
    message = encode_defunct(primitive=b"gridex.v1 reading batch\ncigre-lv\n" + raw)
    assert Account.recover_message(message, signature=signature).lower() == ADDRESS
    assert signing.recover_batch_signer(raw, signature, engine_id=ENGINE_ID) == ADDRESS
    # signed for another engine: another signature, which recovers to another address here
    other = signing.Signer(KEY).sign_batch(raw, engine_id="feeder-b")
    assert other.hex() == BATCH_SIGNATURE_FEEDER_B
    assert signing.recover_batch_signer(raw, other, engine_id="feeder-b") == ADDRESS
    assert signing.recover_batch_signer(raw, other, engine_id=ENGINE_ID) != ADDRESS


@pytest.mark.parametrize("engine_id", ["", "*", "a\nb", "x" * 65])
def test_a_batch_names_one_engine(engine_id: str) -> None:
    with pytest.raises(ValueError, match="engine_id"):
        signing.batch_message(b"batch", engine_id=engine_id)


def test_v_zero_or_one_is_accepted() -> None:
    signature = bytearray(bytes.fromhex(BATCH_SIGNATURE))
    signature[64] -= 27
    recovered = signing.recover_batch_signer(
        bytes.fromhex(BATCH_HEX), bytes(signature), engine_id=ENGINE_ID
    )
    assert recovered == ADDRESS


def test_tampered_bytes_recover_another_address() -> None:
    raw = bytearray(bytes.fromhex(BATCH_HEX))
    raw[-1] ^= 1
    signature = bytes.fromhex(BATCH_SIGNATURE)
    assert signing.recover_batch_signer(bytes(raw), signature, engine_id=ENGINE_ID) != ADDRESS


@pytest.mark.parametrize(
    ("signature", "rule"),
    [
        (b"\x01" * 64, "must be 65 bytes"),
        (b"\x01" * 64 + b"\x05", "v must be 27 or 28"),
        (b"\x00" * 64 + b"\x1b", "does not recover"),
    ],
)
def test_malformed_signatures_raise(signature: bytes, rule: str) -> None:
    with pytest.raises(AuthenticationError, match=rule):
        signing.recover_batch_signer(b"batch", signature, engine_id=ENGINE_ID)


def test_key_forms() -> None:
    assert signing.Signer(KEY[2:]).address == ADDRESS
    assert signing.Signer(bytes.fromhex(KEY[2:])).address == ADDRESS
    with pytest.raises(ValueError, match="64 hex digits"):
        signing.Signer("0x1234")


def test_any_engine_is_only_for_the_discovery_call() -> None:
    message = signing.request_message(
        signing.DISCOVERY_METHOD, b"", 1, "nonce-123", engine_id=signing.ANY_ENGINE
    )
    assert message.decode().splitlines()[1] == "*"
    with pytest.raises(ValueError, match="engine_id"):
        signing.request_message(METHOD, b"", 1, "nonce-123", engine_id=signing.ANY_ENGINE)


@pytest.mark.parametrize("data", [b"", b"gridex", bytes(range(256)) * 3])
def test_keccak_is_ethereums(data: bytes) -> None:
    from eth_hash.auto import keccak as reference

    assert signing.keccak(data) == reference(data)
    assert signing.keccak(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
