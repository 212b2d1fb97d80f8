"""The server interceptor that authenticates and authorises every signed call.

It replaces each gridex.v1 unary (and server-streaming) handler with one that
receives the request's raw bytes, so the signature is checked over exactly
the bytes the client sent (``docs/signing.md``), then parses them itself (a
malformed request is INVALID_ARGUMENT, never INTERNAL), checks the role and
the rate limit, and hands the parsed request to the servicer with the caller
in :data:`CALLER`. MeterService and the health and reflection services pass
through unchanged.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import grpc
from google.protobuf.message import DecodeError

from market.engine import _status
from market.engine.signing import (
    ADDRESS_KEY,
    NONCE_KEY,
    NONCE_RE,
    SIGNATURE_KEY,
    TIMESTAMP_KEY,
    recover_request_signer,
)
from market.errors import (
    AuthenticationError,
    MarketError,
    PermissionDeniedError,
    RateLimitedError,
    RequestError,
)
from market.orders import normalise_address

__all__ = ["CALLER", "METHOD_ROLES", "Caller", "RequestAuthInterceptor", "Role"]

Role = Literal["self", "self_or_operator", "member", "member_or_gateway", "operator"]

_M = "/gridex.v1.MarketService/"
_O = "/gridex.v1.OperatorService/"

#: Who may call each signed method (docs/signing.md, "Roles").
METHOD_ROLES: Mapping[str, Role] = {
    _M + "SubmitOrder": "self",
    _M + "CancelOrder": "self",
    _M + "GetOrder": "self_or_operator",
    _M + "ListOrders": "self_or_operator",
    _M + "GetAccount": "self_or_operator",
    _M + "GetOrderBook": "member",
    _M + "GetClearingResult": "member",
    _M + "StreamMarketEvents": "member",
    _M + "GetMarketInfo": "member_or_gateway",
    _O + "RegisterParticipant": "operator",
    _O + "RegisterGateway": "operator",
    _O + "TriggerClearing": "operator",
    _O + "AdvanceClock": "operator",
    _O + "GetEngineStatus": "operator",
    _O + "GetGridStatus": "operator",
}


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated signer of the current call.

    Attributes:
        address: lower-case address.
        is_operator: the address is an operator's.
        nonce_tag: ``address:nonce:timestamp_ms``, journaled with the change it makes.
    """

    address: str
    is_operator: bool
    nonce_tag: str


#: The caller of the call being served (set by the interceptor).
CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("gridex_caller")


class _NonceCache:
    """Nonces seen within the skew window, per address."""

    def __init__(self, window_ms: int) -> None:
        self._window_ms = window_ms
        self._seen: dict[tuple[str, str], int] = {}  # -> expiry, wall ms
        self._next_prune = 0

    def use(self, address: str, nonce: str, timestamp_ms: int, now_ms: int) -> bool:
        """Record the nonce; False if it was seen before."""
        if now_ms >= self._next_prune:
            self._seen = {k: t for k, t in self._seen.items() if t > now_ms}
            self._next_prune = now_ms + self._window_ms
        key = (address, nonce)
        if key in self._seen:
            return False
        self._seen[key] = timestamp_ms + 2 * self._window_ms
        return True


class _RateLimiter:
    """A token bucket per address: ``rate_per_s`` sustained, twice that as a burst."""

    def __init__(self, rate_per_s: float | None) -> None:
        self._rate = rate_per_s
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, time)

    def check(self, address: str) -> None:
        if self._rate is None:
            return
        now = time.monotonic()
        burst = 2 * self._rate
        tokens, last = self._buckets.get(address, (burst, now))
        tokens = min(burst, tokens + (now - last) * self._rate)
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            raise RateLimitedError(
                f"x-gridex-address: {address} exceeds {self._rate:g} requests/s; retry later"
            )
        self._buckets[address] = (tokens - 1, now)


Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # not subscriptable at run time
    _Interceptor = grpc.aio.ServerInterceptor


class RequestAuthInterceptor(_Interceptor):
    """Verifies request signatures, timestamps, nonces, roles and rate limits.

    Args:
        is_participant: whether a lower-case address is a registered participant.
        is_gateway: whether a lower-case address is a registered gateway key
            (the ``member_or_gateway`` role admits it too).
        operators: operator addresses (lower case).
        max_skew_s: largest allowed |timestamp − wall clock|, s.
        rate_limit_per_s: requests per second per address (None: unlimited).
        seen_nonces: ``address:nonce:timestamp_ms`` tags of journaled requests
            (from the replay), refused if presented again within the window.
    """

    def __init__(
        self,
        *,
        is_participant: Callable[[str], bool],
        is_gateway: Callable[[str], bool] = lambda _: False,
        operators: frozenset[str],
        max_skew_s: float = 60.0,
        rate_limit_per_s: float | None = 1000.0,
        seen_nonces: Iterable[str] = (),
    ) -> None:
        self._is_participant = is_participant
        self._is_gateway = is_gateway
        self._operators = operators
        self._skew_ms = int(max_skew_s * 1000)
        self._nonces = _NonceCache(self._skew_ms)
        self._rate = _RateLimiter(rate_limit_per_s)
        now = time.time_ns() // 1_000_000
        for tag in seen_nonces:
            address, nonce, ts = tag.rsplit(":", 2)
            if abs(int(ts) - now) <= self._skew_ms:
                self._nonces.use(address, nonce, int(ts), now)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Wrap the handler of a signed method; pass every other one through."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        role = METHOD_ROLES.get(method)
        if handler is None or role is None:
            return handler
        metadata = dict(handler_call_details.invocation_metadata or ())
        parse = handler.request_deserializer
        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(raw: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                request, caller = await self._admit(method, role, raw, metadata, parse, context)
                token = CALLER.set(caller)
                try:
                    return await inner(request, context)
                finally:
                    CALLER.reset(token)

            return grpc.unary_unary_rpc_method_handler(
                unary, response_serializer=handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_stream: Any = handler.unary_stream

            async def stream(
                raw: bytes, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                request, caller = await self._admit(method, role, raw, metadata, parse, context)
                CALLER.set(caller)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                stream, response_serializer=handler.response_serializer
            )
        return handler

    async def _admit(  # noqa: PLR0917 - private helper of the two wrappers above
        self,
        method: str,
        role: Role,
        raw: bytes,
        metadata: Mapping[str, str | bytes],
        parse: Callable[[bytes], Any] | None,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> tuple[Any, Caller]:
        try:
            caller = self._authenticate(method, raw, metadata)
            self._authorise_role(role, caller)
            self._rate.check(caller.address)
            try:
                request = parse(raw) if parse is not None else raw
            except DecodeError:
                raise RequestError(
                    f"request: the bytes are not a valid message for {method}"
                ) from None
            self._authorise_participant(role, caller, request)
        except MarketError as exc:
            mapped = _status.status_of(exc)
            assert mapped is not None
            await context.abort(*mapped)
        return request, caller

    def _authenticate(self, method: str, raw: bytes, metadata: Mapping[str, str | bytes]) -> Caller:
        values: dict[str, str] = {}
        for key in (ADDRESS_KEY, TIMESTAMP_KEY, NONCE_KEY, SIGNATURE_KEY):
            value = metadata.get(key)
            if not isinstance(value, str) or not value:
                raise AuthenticationError(f"{key}: missing from the call metadata")
            values[key] = value
        try:
            claimed = normalise_address(values[ADDRESS_KEY])
        except ValueError:
            raise AuthenticationError(
                f"{ADDRESS_KEY}: must be 0x followed by 40 hex digits"
            ) from None
        ts_text = values[TIMESTAMP_KEY]
        if not ts_text.isdigit() or len(ts_text) > 16:
            raise AuthenticationError(f"{TIMESTAMP_KEY}: must be Unix milliseconds in decimal")
        timestamp_ms = int(ts_text)
        nonce = values[NONCE_KEY]
        if not NONCE_RE.match(nonce):
            raise AuthenticationError(f"{NONCE_KEY}: must be 8 to 64 characters of [0-9A-Za-z_-]")
        sig_text = values[SIGNATURE_KEY].removeprefix("0x")
        try:
            signature = bytes.fromhex(sig_text)
        except ValueError:
            raise AuthenticationError(f"{SIGNATURE_KEY}: must be 0x and 130 hex digits") from None
        signer = recover_request_signer(method, raw, timestamp_ms, nonce, signature)
        if signer != claimed:
            raise AuthenticationError(
                f"{SIGNATURE_KEY}: does not match {ADDRESS_KEY} {claimed} "
                "(wrong key, or the request, method, timestamp or nonce differ from those signed)"
            )
        now = time.time_ns() // 1_000_000
        if abs(timestamp_ms - now) > self._skew_ms:
            raise AuthenticationError(
                f"{TIMESTAMP_KEY}: stale timestamp: {timestamp_ms} is more than "
                f"{self._skew_ms // 1000} s from the engine's clock ({now})"
            )
        if not self._nonces.use(signer, nonce, timestamp_ms, now):
            raise AuthenticationError(
                f"{NONCE_KEY}: nonce reused: {nonce!r} was already used by {signer}"
            )
        return Caller(signer, signer in self._operators, f"{signer}:{nonce}:{timestamp_ms}")

    def _authorise_role(self, role: Role, caller: Caller) -> None:
        if role == "operator":
            if not caller.is_operator:
                raise PermissionDeniedError(
                    f"{ADDRESS_KEY}: {caller.address} is not an operator of this engine"
                )
            return
        if role in ("self_or_operator", "member", "member_or_gateway") and caller.is_operator:
            return
        if role == "member_or_gateway" and self._is_gateway(caller.address):
            return
        if not self._is_participant(caller.address):
            raise PermissionDeniedError(
                f"{ADDRESS_KEY}: {caller.address} is not a registered participant"
            )

    def _authorise_participant(self, role: Role, caller: Caller, request: Any) -> None:
        if role not in ("self", "self_or_operator"):
            return
        if role == "self_or_operator" and caller.is_operator:
            return
        given = getattr(request, "participant", "")
        try:
            participant = normalise_address(given)
        except ValueError:
            raise RequestError(
                f"participant: must be 0x followed by 40 hex digits, got {given!r}"
            ) from None
        if participant != caller.address:
            raise PermissionDeniedError(
                f"participant: {caller.address} may act only for itself, not for {participant}"
            )
