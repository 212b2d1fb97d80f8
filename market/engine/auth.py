"""The server interceptor that authenticates and authorises every call.

Every method falls in one of three groups:

- **signed** (:data:`METHOD_ROLES`): the handler is replaced by one that
  receives the request's raw bytes, so the signature is checked over exactly
  the bytes the client sent for exactly this engine (``docs/signing.md``);
  then the role, the rate limit and the nonce are checked — in that order,
  so a key that may not call the method leaves no trace — the nonce is kept
  across restarts, and the bytes are parsed (a malformed request is
  INVALID_ARGUMENT, never INTERNAL). A SubmitOrders request costs one rate
  token per order it holds (the first before parsing, the rest after). The
  servicer gets the parsed request with the caller in :data:`CALLER`.
- **public** (:data:`PUBLIC_METHODS`: MeterService's stream, whose batches
  carry their own signatures, health checking, reflection):
  unsigned, but every request message is parsed here too, so undecodable or
  truncated messages end the call with INVALID_ARGUMENT and one warning line
  naming the peer, never a traceback.
- **anything else** is denied (PERMISSION_DENIED) by default: a servicer
  method added without a role-table entry cannot be called unauthenticated.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import grpc
from google.protobuf.message import DecodeError

from market.engine import _status
from market.engine.journal import durable
from market.engine.signing import (
    ADDRESS_KEY,
    ANY_ENGINE,
    DISCOVERY_METHOD,
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

__all__ = [
    "CALLER",
    "METHOD_ROLES",
    "PUBLIC_METHODS",
    "Caller",
    "RateLimiter",
    "RequestAuthInterceptor",
    "Role",
]

logger = logging.getLogger(__name__)

Role = Literal["self", "self_or_operator", "member", "member_or_gateway", "operator"]

_M = "/gridex.v1.MarketService/"
_O = "/gridex.v1.OperatorService/"

#: Who may call each signed method (docs/signing.md, "Roles").
METHOD_ROLES: Mapping[str, Role] = {
    _M + "SubmitOrder": "self",
    _M + "SubmitOrders": "self",
    _M + "CancelOrder": "self",
    _M + "GetOrder": "self_or_operator",
    _M + "ListOrders": "self_or_operator",
    _M + "GetAccount": "self_or_operator",
    _M + "GetOrderBook": "member",
    _M + "GetClearingResult": "member",
    _M + "StreamMarketEvents": "member",
    _M + "GetMarketInfo": "member_or_gateway",
    _M + "SubmitFlexOrder": "self",
    _M + "AmendFlexOrder": "self",
    _M + "CancelFlexOrder": "self",
    _M + "GetFlexSchedule": "self_or_operator",
    _O + "RegisterParticipant": "operator",
    _O + "RegisterGateway": "operator",
    _O + "TriggerClearing": "operator",
    _O + "AdvanceClock": "operator",
    _O + "GetEngineStatus": "operator",
    _O + "GetGridStatus": "operator",
}

_SUBMIT_ORDERS = _M + "SubmitOrders"

#: Methods anyone may call unsigned (each MeterService batch carries its own signature).
PUBLIC_METHODS: frozenset[str] = frozenset(
    {
        "/gridex.v1.MeterService/StreamReadings",
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)


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


class RateLimiter:
    """A token bucket per address: ``rate_per_s`` sustained, twice that as a burst.

    Args:
        rate_per_s: Requests per second per address (``None``: unlimited).
        what: Names the unit in the error (``requests``, ``batches``).
    """

    def __init__(self, rate_per_s: float | None, *, what: str = "requests") -> None:
        self._rate = rate_per_s
        self._what = what
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, time)

    def check(self, address: str, cost: int = 1, *, taken: int = 0) -> None:
        """Take ``cost`` tokens of ``address``'s bucket (all or none).

        ``taken`` tokens of the same call were taken before (they count
        towards the burst rule only).

        Raises:
            RateLimitedError: the bucket holds fewer, or the call's tokens exceed the burst.
        """
        if self._rate is None:
            return
        now = time.monotonic()
        burst = 2 * self._rate
        if cost + taken > burst:
            raise RateLimitedError(
                f"{address}: one call of {cost + taken} {self._what} exceeds the burst of "
                f"{burst:g} ({self._rate:g} {self._what}/s); send smaller batches"
            )
        tokens, last = self._buckets.get(address, (burst, now))
        tokens = min(burst, tokens + (now - last) * self._rate)
        if tokens < cost:
            self._buckets[address] = (tokens, now)
            raise RateLimitedError(f"{address} exceeds {self._rate:g} {self._what}/s; retry later")
        self._buckets[address] = (tokens - cost, now)


Handler = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Any]
Ctx = grpc.aio.ServicerContext[Any, Any]
Parse = Callable[[bytes], Any]
RememberNonce = Callable[[str, int], "Future[int]"]


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # not subscriptable at run time
    _Interceptor = grpc.aio.ServerInterceptor


def _parse(parse: Parse | None, raw: bytes) -> Any:
    return parse(raw) if parse is not None else raw


class _UndecodableError(Exception):
    """A message of a public call's request stream does not decode (raised in the handler)."""


async def _refuse_message(method: str, what: str, context: Ctx) -> None:
    """End the call: a caller's undecodable message is INVALID_ARGUMENT, logged in one line."""
    logger.warning("%s from %s: %s is not a valid message; call refused",
                   method, context.peer(), what)  # fmt: skip
    await context.abort(
        grpc.StatusCode.INVALID_ARGUMENT, f"{what}: the bytes are not a valid message for {method}"
    )


def _strict(method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> Any:
    """The handler of a public method, parsing every request message itself.

    A stream message that does not decode ends the request stream with
    :class:`_UndecodableError`, raised into the servicer (wherever it reads the
    stream); the call is aborted with INVALID_ARGUMENT from the handler's own
    task once the servicer lets it out.
    """
    parse = handler.request_deserializer
    serialize = handler.response_serializer

    async def one(raw: bytes, context: Ctx) -> Any:
        try:
            return _parse(parse, raw)
        except DecodeError:
            await _refuse_message(method, "request", context)

    async def many(raw_iterator: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        index = 0
        async for raw in raw_iterator:
            index += 1
            try:
                message = _parse(parse, raw)
            except DecodeError:
                raise _UndecodableError(f"stream message {index}") from None
            yield message

    if handler.unary_unary is not None:
        uu: Any = handler.unary_unary

        async def unary_unary(raw: bytes, context: Ctx) -> Any:
            return await uu(await one(raw, context), context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, response_serializer=serialize)
    if handler.unary_stream is not None:
        us: Any = handler.unary_stream

        async def unary_stream(raw: bytes, context: Ctx) -> AsyncIterator[Any]:
            result = us(await one(raw, context), context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            else:  # a handler that writes with context.write and returns nothing
                await result

        return grpc.unary_stream_rpc_method_handler(unary_stream, response_serializer=serialize)
    if handler.stream_unary is not None:
        su: Any = handler.stream_unary

        async def stream_unary(raw_iterator: AsyncIterator[bytes], context: Ctx) -> Any:
            try:
                return await su(many(raw_iterator), context)
            except _UndecodableError as exc:
                await _refuse_message(method, str(exc), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, response_serializer=serialize)
    ss: Any = handler.stream_stream

    async def stream_stream(raw_iterator: AsyncIterator[bytes], context: Ctx) -> AsyncIterator[Any]:
        try:
            async for item in ss(many(raw_iterator), context):
                yield item
        except _UndecodableError as exc:
            await _refuse_message(method, str(exc), context)

    return grpc.stream_stream_rpc_method_handler(stream_stream, response_serializer=serialize)


def _denied(method: str, handler: grpc.RpcMethodHandler[Any, Any]) -> Any:
    """A handler of the same shape that refuses a method missing from the role table."""
    message = f"{method}: not in the engine's role table, so denied by default"

    async def deny(_: Any, context: Ctx) -> Any:  # a coroutine serves streams too (aio)
        logger.warning("%s from %s: denied by default (no role)", method, context.peer())
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(deny)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(deny)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(deny)
    return grpc.stream_stream_rpc_method_handler(deny)


class RequestAuthInterceptor(_Interceptor):
    """Verifies request signatures, timestamps, roles, rate limits and nonces.

    Args:
        is_participant: whether a lower-case address is a registered participant.
        is_gateway: whether a lower-case address is a registered gateway key
            (the ``member_or_gateway`` role admits it too).
        operators: operator addresses (lower case).
        engine_id: this engine's id; a signature for any other engine is refused.
        max_skew_s: largest allowed |timestamp − wall clock|, s.
        rate_limit_per_s: requests per second per address (None: unlimited).
        seen_nonces: ``address:nonce:timestamp_ms`` tags of requests seen
            before a restart (journaled and kept ones), refused if presented again.
        remember_nonce: keeps a tag until an expiry (wall ms) across restarts;
            its future resolves once the tag is on disk, and the call's answer
            waits for it (None: nonces are kept in memory only).
    """

    def __init__(
        self,
        *,
        is_participant: Callable[[str], bool],
        is_gateway: Callable[[str], bool] = lambda _: False,
        operators: frozenset[str],
        engine_id: str,
        max_skew_s: float = 60.0,
        rate_limit_per_s: float | None = 1000.0,
        seen_nonces: Iterable[str] = (),
        remember_nonce: RememberNonce | None = None,
    ) -> None:
        self._is_participant = is_participant
        self._is_gateway = is_gateway
        self._operators = operators
        self._engine_id = engine_id
        self._skew_ms = int(max_skew_s * 1000)
        self._nonces = _NonceCache(self._skew_ms)
        self._rate = RateLimiter(rate_limit_per_s)
        self._remember = remember_nonce
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
        """Wrap the handler of a signed or public method; deny every other one."""
        handler: grpc.RpcMethodHandler[Any, Any] | None = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return handler  # type: ignore[return-value]  # grpc answers UNIMPLEMENTED
        role = METHOD_ROLES.get(method)
        if role is None:
            if method in PUBLIC_METHODS:
                return _strict(method, handler)  # type: ignore[no-any-return]
            return _denied(method, handler)  # type: ignore[no-any-return]
        metadata = dict(handler_call_details.invocation_metadata or ())
        parse = handler.request_deserializer
        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(raw: bytes, context: Ctx) -> Any:
                request, caller, expires_ms = await self._admit(
                    method, role, raw, metadata, parse, context
                )
                token = CALLER.set(caller)
                try:
                    return await inner(request, context)
                finally:  # after the handler, so a journaled request's entry carries its nonce
                    CALLER.reset(token)
                    await self._keep(caller, expires_ms, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, response_serializer=handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_stream: Any = handler.unary_stream

            async def stream(raw: bytes, context: Ctx) -> AsyncIterator[Any]:
                request, caller, expires_ms = await self._admit(
                    method, role, raw, metadata, parse, context
                )
                await self._keep(caller, expires_ms, context)
                CALLER.set(caller)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                stream, response_serializer=handler.response_serializer
            )
        return _denied(method, handler)  # type: ignore[no-any-return]  # no signed client streams

    async def _admit(  # noqa: PLR0917 - private helper of the two wrappers above
        self,
        method: str,
        role: Role,
        raw: bytes,
        metadata: Mapping[str, str | bytes],
        parse: Parse | None,
        context: Ctx,
    ) -> tuple[Any, Caller, int]:
        used: Caller | None = None
        try:
            caller, expires_ms = self._authenticate(method, raw, metadata)
            self._authorise_role(role, caller)
            self._rate.check(caller.address)
            self._use_nonce(caller)
            used = caller
            try:
                request = _parse(parse, raw)
            except DecodeError:
                logger.warning("%s from %s (%s): request is not a valid message",
                               method, context.peer(), caller.address)  # fmt: skip
                raise RequestError(
                    f"request: the bytes are not a valid message for {method}"
                ) from None
            self._authorise_participant(role, caller, request)
            if method == _SUBMIT_ORDERS and len(request.orders) > 1:
                # one token per order: the first was taken before parsing
                self._rate.check(caller.address, len(request.orders) - 1, taken=1)
        except MarketError as exc:
            if used is not None:
                await self._keep(used, expires_ms, context)
            mapped = _status.status_of(exc)
            assert mapped is not None
            await context.abort(*mapped)
        return request, caller, expires_ms

    async def _keep(self, caller: Caller, expires_ms: int, context: Ctx) -> None:
        """Keep the caller's nonce across restarts before the answer goes out."""
        if self._remember is not None:
            await _kept(self._remember(caller.nonce_tag, expires_ms), context)

    def _authenticate(
        self, method: str, raw: bytes, metadata: Mapping[str, str | bytes]
    ) -> tuple[Caller, int]:
        """The caller a valid signature for this engine names, and its nonce's expiry."""
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
        signer = recover_request_signer(
            method, raw, timestamp_ms, nonce, signature, engine_id=self._engine_id
        )
        if signer != claimed and method == DISCOVERY_METHOD:  # signed before knowing our id
            signer = recover_request_signer(
                method, raw, timestamp_ms, nonce, signature, engine_id=ANY_ENGINE
            )
        if signer != claimed:
            raise AuthenticationError(
                f"{SIGNATURE_KEY}: does not match {ADDRESS_KEY} {claimed} (wrong key, or the "
                "request, method, timestamp, nonce or engine id differ from those signed; "
                f"this engine's id is {self._engine_id!r})"
            )
        now = time.time_ns() // 1_000_000
        if abs(timestamp_ms - now) > self._skew_ms:
            raise AuthenticationError(
                f"{TIMESTAMP_KEY}: stale timestamp: {timestamp_ms} is more than "
                f"{self._skew_ms // 1000} s from the engine's clock ({now})"
            )
        caller = Caller(signer, signer in self._operators, f"{signer}:{nonce}:{timestamp_ms}")
        return caller, timestamp_ms + 2 * self._skew_ms

    def _use_nonce(self, caller: Caller) -> None:
        address, nonce, timestamp = caller.nonce_tag.rsplit(":", 2)
        now = time.time_ns() // 1_000_000
        if not self._nonces.use(address, nonce, int(timestamp), now):
            raise AuthenticationError(
                f"{NONCE_KEY}: nonce reused: {nonce!r} was already used by {address}"
            )

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


async def _kept(kept: Future[int] | None, context: Ctx) -> None:
    """Wait until a call's nonce is on disk (a failed write fails the call: UNAVAILABLE)."""
    if kept is None:
        return
    try:
        await durable(kept)
    except MarketError as exc:
        mapped = _status.status_of(exc)
        assert mapped is not None
        await context.abort(*mapped)
