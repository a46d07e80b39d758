"""The HTTP transport: one pooled aiohttp session shared by every REST-based adapter.

Adapters depend on the small `HttpTransport` protocol (`send`, `close`), so tests and other
transports can stand in for `AiohttpTransport`. The transport enforces what must hold for every
outbound call whoever makes it: the destination guard on every hop (redirects are followed here,
not by aiohttp, so each Location is checked), a total deadline across all hops, a cap on the
response body, and no cookies carried between calls (the session is shared by all tenants).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote, urlencode, urlsplit

import aiohttp
from yarl import URL

from adaptor.protocols.errors import (
    BlockedDestination,
    NetworkError,
    ResponseTooLarge,
    TooManyRedirects,
    UpstreamError,
    UpstreamTimeout,
    safe_url,
)

if TYPE_CHECKING:
    from adaptor.resilience.guard import DestinationGuard

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AiohttpTransport",
    "Exchange",
    "HttpTransport",
    "PreparedRequest",
    "RawResponse",
    "record_exchange",
    "recording_exchanges",
]

DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
REDACTED = "********"

# Headers that always carry credentials, whatever the auth handler declared.
_ALWAYS_SENSITIVE = frozenset({"authorization", "proxy-authorization", "cookie"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS = ("content-type", "content-length", "content-encoding", "transfer-encoding")
_CHUNK_BYTES = 64 * 1024


@dataclass(eq=False, repr=False)
class PreparedRequest:
    """A request ready to send: what the builder made and the auth handler decorated.

    `url` is the absolute, percent-encoded URL without its query; `params` the query as ordered
    pairs (a list value becomes repeated keys). Header names keep their case but are matched
    case-insensitively through `set_header`/`get_header`. Auth handlers add the names of headers
    and query parameters they fill to `sensitive_headers`/`sensitive_params` (lower case), so
    traces can redact them and cross-origin redirects drop them. `repr` shows no values.
    """

    method: str
    url: str
    params: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    sensitive_headers: set[str] = field(default_factory=set)
    sensitive_params: set[str] = field(default_factory=set)

    @property
    def full_url(self) -> str:
        """`url` with the encoded query string."""
        if not self.params:
            return self.url
        return f"{self.url}?{urlencode(self.params, quote_via=quote)}"

    def get_header(self, name: str) -> str | None:
        """The value of header `name`, matched case-insensitively."""
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        """Set header `name`, replacing any existing header of that name in any case."""
        self.remove_header(name)
        self.headers[name] = value

    def remove_header(self, name: str) -> None:
        """Remove header `name` in any case."""
        lowered = name.lower()
        for key in [key for key in self.headers if key.lower() == lowered]:
            del self.headers[key]

    def add_param(self, name: str, value: str) -> None:
        """Append a query parameter."""
        self.params.append((name, value))

    def copy(self) -> PreparedRequest:
        """An independent copy (each attempt decorates its own)."""
        return PreparedRequest(
            self.method,
            self.url,
            list(self.params),
            dict(self.headers),
            self.body,
            set(self.sensitive_headers),
            set(self.sensitive_params),
        )

    def is_sensitive_header(self, name: str) -> bool:
        """Whether header `name` carries a credential."""
        lowered = name.lower()
        return lowered in _ALWAYS_SENSITIVE or lowered in self.sensitive_headers

    def redacted_headers(self) -> dict[str, str]:
        """Headers with every credential value replaced, for traces and logs."""
        return {
            key: REDACTED if self.is_sensitive_header(key) else value
            for key, value in self.headers.items()
        }

    def redacted_url(self) -> str:
        """`full_url` with credential query values replaced, for traces and logs."""
        if not self.params:
            return self.url
        params = [
            (key, REDACTED if key.lower() in self.sensitive_params else value)
            for key, value in self.params
        ]
        return f"{self.url}?{urlencode(params, quote_via=quote)}"

    def __repr__(self) -> str:
        return (
            f"PreparedRequest(method={self.method!r}, url={safe_url(self.url)!r}, "
            f"params={sorted({key for key, _ in self.params})!r}, "
            f"headers={sorted(self.headers)!r}, "
            f"body_bytes={len(self.body) if self.body is not None else None})"
        )


@dataclass(frozen=True, slots=True)
class RawResponse:
    """What the transport received, before any parsing.

    `headers` has lower-case names (repeated headers joined with ", "); `url` is the final URL
    after redirects without its query string (which may carry a credential); `elapsed_ms` spans
    every hop.
    """

    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)
    url: str
    elapsed_ms: float
    reason: str = ""
    redirects: int = 0

    @property
    def content_type(self) -> str:
        """The media type in lower case without parameters ('' when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The `charset` parameter of the Content-Type, if any."""
        for parameter in self.headers.get("content-type", "").split(";")[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                return value.strip().strip('"')
        return None

    def text(self) -> str:
        """The body decoded with its charset (UTF-8 when unknown); undecodable bytes replaced."""
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


class HttpTransport(Protocol):
    """Sends one prepared request and returns the raw answer, or raises an `UpstreamError`."""

    async def send(
        self, request: PreparedRequest, *, timeout_s: float, ssl_verify: bool = True
    ) -> RawResponse:
        """Send `request` within `timeout_s` seconds in total (redirects and body included)."""
        ...

    async def close(self) -> None:
        """Release pooled connections."""
        ...


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of `url`, lower-cased: what "the same origin" compares."""
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def _response_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged


def _strip_query(url: URL) -> str:
    return str(url.with_query(None).with_fragment(None))


class AiohttpTransport:
    """`HttpTransport` over one pooled `aiohttp.ClientSession`.

    Created once by the application (or a test) and closed on shutdown. `pool_size` bounds the
    connections kept per host, `max_connections` in total; resolved names are cached for
    `ttl_dns_cache` seconds. Every hop is checked by `guard`: the URL before the request and,
    through the connector's resolver, the address connected to. Bodies over
    `max_response_bytes` (after decompression) are refused. At most `max_redirects` redirects are
    followed; 303, and 301/302 after a POST, continue as GET without a body; credentials are
    dropped when a redirect leaves the origin. No cookies are stored, and proxy settings from the
    environment are ignored (a proxy would hide the real destination from the guard).
    """

    def __init__(
        self,
        guard: DestinationGuard,
        *,
        pool_size: int = 20,
        max_connections: int = 100,
        ttl_dns_cache: int = 10,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_redirects: int = 5,
        keepalive_timeout: float = 30.0,
    ) -> None:
        if pool_size < 1 or max_connections < 1:
            raise ValueError("pool_size and max_connections must be at least 1")
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be at least 1")
        if max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        self.guard = guard
        self.pool_size = pool_size
        self.max_connections = max_connections
        self.ttl_dns_cache = ttl_dns_cache
        self.max_response_bytes = max_response_bytes
        self.max_redirects = max_redirects
        self.keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"AiohttpTransport(pool_size={self.pool_size}, "
            f"max_response_bytes={self.max_response_bytes}, guard={self.guard!r})"
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise NetworkError("the HTTP transport is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=self.pool_size,
                ttl_dns_cache=self.ttl_dns_cache,
                resolver=self.guard.resolver(),
                keepalive_timeout=self.keepalive_timeout,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        """Close the session and its pooled connections; later sends fail."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, request: PreparedRequest, *, timeout_s: float, ssl_verify: bool = True
    ) -> RawResponse:
        """Send `request`, following redirects, all within `timeout_s` seconds."""
        session = self._get_session()
        started = time.perf_counter()
        if timeout_s <= 0:
            raise UpstreamTimeout(f"no time left to call {safe_url(request.url)}", status_code=None)
        try:
            async with asyncio.timeout(timeout_s):
                return await self._follow(session, request, ssl_verify, started)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"{safe_url(request.url)} did not answer within {seconds(timeout_s)}"
            ) from exc

    async def _follow(
        self,
        session: aiohttp.ClientSession,
        request: PreparedRequest,
        ssl_verify: bool,
        started: float,
    ) -> RawResponse:
        method = request.method.upper()
        url = request.full_url
        headers = dict(request.headers)
        body = request.body
        for hop in range(self.max_redirects + 1):
            self.guard.check_url_static(url)
            try:
                async with session.request(
                    method,
                    URL(url, encoded=True),
                    headers=headers,
                    data=body,
                    allow_redirects=False,
                    ssl=ssl_verify,
                ) as response:
                    location = response.headers.get("Location")
                    if response.status in _REDIRECT_STATUSES and location:
                        next_url = self._redirect_target(response.url, location, url)
                    else:
                        payload = await self._read_body(response, url)
                        return RawResponse(
                            status=response.status,
                            headers=_response_headers(response.headers.items()),
                            body=payload,
                            url=request.url if hop == 0 else _strip_query(response.url),
                            elapsed_ms=(time.perf_counter() - started) * 1000,
                            reason=response.reason or "",
                            redirects=hop,
                        )
            except UpstreamError:
                raise
            except aiohttp.ClientError as exc:
                raise _client_error(exc, url) from exc
            except OSError as exc:
                raise NetworkError(f"connection to {safe_url(url)} failed") from exc

            if (response.status == 303 and method != "HEAD") or (
                response.status in (301, 302) and method == "POST"
            ):
                method = "GET"
                body = None
                for name in [key for key in headers if key.lower() in _BODY_HEADERS]:
                    del headers[name]
            if origin(next_url) != origin(url):
                for name in [key for key in headers if request.is_sensitive_header(key)]:
                    del headers[name]
            url = next_url
        raise TooManyRedirects(
            f"{safe_url(request.url)} redirected more than {self.max_redirects} times"
        )

    @staticmethod
    def _redirect_target(current: URL, location: str, url: str) -> str:
        try:
            target = current.join(URL(location))
        except (ValueError, TypeError) as exc:
            raise BlockedDestination(f"{safe_url(url)} redirected to an invalid location") from exc
        if not target.is_absolute():
            raise BlockedDestination(f"{safe_url(url)} redirected to a relative location")
        return str(target)

    async def _read_body(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        limit = self.max_response_bytes
        declared = response.content_length
        if declared is not None and "Content-Encoding" not in response.headers:
            # The body is exactly the declared length (aiohttp reads no more): check it once
            # and read it in one step. (CIMultiDict lookups ignore case.)
            if declared > limit:
                raise self._too_large(url, limit)
            return await response.read()
        buffer = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            buffer += chunk
            if len(buffer) > limit:
                raise self._too_large(url, limit)
        return bytes(buffer)

    @staticmethod
    def _too_large(url: str, limit: int) -> ResponseTooLarge:
        return ResponseTooLarge(
            f"the response from {safe_url(url)} is larger than {limit} bytes", limit_bytes=limit
        )


def _client_error(exc: aiohttp.ClientError, url: str) -> UpstreamError:
    """Translate an aiohttp error into the upstream error tree with a secret-free message."""
    where = safe_url(url)
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return NetworkError(f"could not resolve host {host}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return NetworkError(f"TLS handshake with {host} failed (certificate or protocol error)")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return NetworkError(f"could not connect to {host}:{exc.port}: {reason}")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return UpstreamTimeout(f"{where} timed out")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return NetworkError(f"{where} closed the connection before answering")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return NetworkError(f"the response body from {where} was cut off or corrupt")
    if isinstance(exc, aiohttp.InvalidURL):
        return BlockedDestination(f"the URL for {host} is not valid")
    if isinstance(exc, aiohttp.ClientResponseError):
        return NetworkError(f"{where} sent an invalid HTTP response")
    return NetworkError(f"calling {where} failed ({type(exc).__name__})")


def seconds(value: float) -> str:
    """A duration for a message: `5 s`, `0.76 s` (never `0.758403 s`)."""
    return f"{round(value, 2) if value < 10 else round(value, 1):g} s"


# ---------------------------------------------------------------------------------------------
# What was sent, for the debug trace


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request as it went out (after auth) and what came back, or why nothing did."""

    request: PreparedRequest
    response: RawResponse | None = None
    error: str | None = None

    def describe(self, max_body_bytes: int = 2048) -> dict[str, object]:
        """The exchange for a trace: credentials in headers and query redacted, the encoded
        body truncated past `max_body_bytes`, and of the answer its status, headers and size
        (not its body, which the result carries already)."""
        request = self.request
        body = request.body or b""
        shown = body[:max_body_bytes].decode("utf-8", "replace")
        if len(body) > max_body_bytes:
            shown += f"… ({len(body)} bytes in all)"
        described: dict[str, object] = {
            "method": request.method,
            "url": request.redacted_url().replace("%2A%2A%2A%2A%2A%2A%2A%2A", REDACTED),
            "headers": request.redacted_headers(),
            "body": shown if body else None,
            "body_bytes": len(body),
        }
        if self.response is not None:
            described["response"] = {
                "status": self.response.status,
                "headers": dict(self.response.headers),
                "size_bytes": len(self.response.body),
                "elapsed_ms": round(self.response.elapsed_ms, 1),
            }
        if self.error is not None:
            described["error"] = self.error
        return described


@dataclass(frozen=True, slots=True)
class Operation:
    """One call of an adapter that does not speak HTTP (a SQL statement, a file, a message),
    as the adapter describes it: what it did and where (the statement without its values, the
    path, the destination), never values, payloads or credentials."""

    kind: str
    details: dict[str, object]
    error: str | None = None

    def describe(self, max_body_bytes: int = 2048) -> dict[str, object]:
        described: dict[str, object] = {"operation": self.kind, **self.details}
        if self.error is not None:
            described["error"] = self.error
        return described


_exchanges: ContextVar[list[Exchange | Operation] | None] = ContextVar(
    "adaptor_exchanges", default=None
)


@contextmanager
def recording_exchanges() -> Iterator[list[Exchange | Operation]]:
    """Collect every exchange adapters report (`record_exchange`, `record_operation`) inside
    the block, in this task and the tasks it starts. Outside such a block recording costs one
    lookup."""
    sink: list[Exchange | Operation] = []
    token = _exchanges.set(sink)
    try:
        yield sink
    finally:
        _exchanges.reset(token)


def record_exchange(
    request: PreparedRequest, response: RawResponse | None = None, error: str | None = None
) -> None:
    """Report one exchange to the enclosing `recording_exchanges` block, if any."""
    sink = _exchanges.get()
    if sink is not None:
        sink.append(Exchange(request, response, error))


def record_operation(kind: str, details: dict[str, object], error: str | None = None) -> None:
    """Report one non-HTTP call to the enclosing `recording_exchanges` block, if any."""
    sink = _exchanges.get()
    if sink is not None:
        sink.append(Operation(kind, details, error))
