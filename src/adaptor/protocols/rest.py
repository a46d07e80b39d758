"""REST adapter: build the request, authenticate it, send it, read the answer.

`RESTRequestBuilder` turns an endpoint template and mapped request data into a
`PreparedRequest`; `RESTResponseParser` turns a `RawResponse` into data and finds error messages
in failed answers; `RESTIntegration` runs the call with auth, retries and rate-limit hints.
GraphQL and outbound webhooks ride on the same builder, parser and transport.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from xml.etree.ElementTree import Element, ParseError

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as xml_fromstring
from yarl import URL

from adaptor import __version__
from adaptor.domain import HttpMethod, IntegrationResponse, IntegrationSpec, RetryConfig
from adaptor.protocols.base import BaseIntegration, CallContext
from adaptor.protocols.errors import (
    MalformedResponse,
    RateLimitedError,
    RequestBuildError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeout,
    safe_url,
)
from adaptor.protocols.http import (
    REDACTED,
    HttpTransport,
    PreparedRequest,
    RawResponse,
    record_exchange,
)
from adaptor.resilience.policy import parse_retry_after
from adaptor.resilience.retry import RetryManager

if TYPE_CHECKING:
    from adaptor.auth_handlers.base import BaseAuthHandler
    from adaptor.protocols.registry import AdapterContext, AdapterOptions, Problem

__all__ = [
    "DEFAULT_USER_AGENT",
    "PreparedRequest",
    "RESTAdapterFactory",
    "RESTIntegration",
    "RESTRequestBuilder",
    "RESTResponseParser",
    "RawResponse",
]

DEFAULT_USER_AGENT: Final = f"adaptor-service/{__version__}"

_PLACEHOLDER = re.compile(r"\{([^{}/?#]+)\}")
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Characters left as they are in the literal parts of a path template (RFC 3986 pchar, '/',
# and '%' so already-encoded templates are not encoded twice).
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_REQUEST_DATA_KEYS = frozenset({"path_params", "query_params", "headers", "body"})
_COMPUTED_HEADERS = frozenset({"content-length", "transfer-encoding"})
_METHODS = frozenset(member.value for member in HttpMethod)
_FORM = "application/x-www-form-urlencoded"
_FORMATS = frozenset({"auto", "json", "xml", "text", "binary"})


# ---------------------------------------------------------------------------------------------
# Request building


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _query_pairs(key: str, value: Any) -> Iterator[tuple[str, str]]:
    """Query encoding: lists repeat the key, nested objects use brackets, None is left out."""
    if value is None:
        return
    if isinstance(value, Mapping):
        for sub_key, sub_value in value.items():
            yield from _query_pairs(f"{key}[{sub_key}]", sub_value)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            if isinstance(item, Mapping | list | tuple):
                raise RequestBuildError(f"query parameter {key!r} holds a nested list or object")
            if item is not None:
                yield key, _scalar(item)
    else:
        yield key, _scalar(value)


def _form_pairs(key: str, value: Any) -> Iterator[tuple[str, str]]:
    """Bracket notation as Stripe reads it: `a[b]=1`, `list[]=x`, `items[0][price]=p`."""
    if value is None:
        return
    if isinstance(value, Mapping):
        for sub_key, sub_value in value.items():
            yield from _form_pairs(f"{key}[{sub_key}]", sub_value)
    elif isinstance(value, list | tuple):
        if any(isinstance(item, Mapping | list | tuple) for item in value):
            for index, item in enumerate(value):
                yield from _form_pairs(f"{key}[{index}]", item)
        else:
            for item in value:
                if item is not None:
                    yield f"{key}[]", _scalar(item)
    else:
        yield key, _scalar(value)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _charset(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _is_json(media_type: str) -> bool:
    return media_type in ("application/json", "text/json") or media_type.endswith("+json")


def _is_xml(media_type: str) -> bool:
    return media_type in ("application/xml", "text/xml") or media_type.endswith("+xml")


class RESTRequestBuilder:
    """Builds `PreparedRequest`s for one integration.

    `base_url` is joined with relative endpoint paths (absolute endpoint URLs are used as
    given). Headers are layered, later wins, names matched case-insensitively: the defaults
    (`Accept: application/json`, `User-Agent`), then `headers` (the integration's), then the
    request's own; a None value leaves the header out. Content-Length and Transfer-Encoding
    are always computed, never taken.
    """

    def __init__(
        self,
        base_url: str | None,
        headers: Mapping[str, str] | None = None,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self.headers = dict(headers or {})
        self.user_agent = user_agent
        self._base: tuple[str, list[tuple[str, str]]] | None = None
        # The URL and query of each endpoint without placeholders: the same on every call.
        self._static_urls: dict[str, tuple[str, list[tuple[str, str]]]] = {}

    def build(
        self, endpoint: str, method: str, request_data: Mapping[str, Any] | None = None
    ) -> PreparedRequest:
        """The request for `endpoint` (a path template or absolute URL) with `request_data`.

        `request_data` may hold `path_params`, `query_params`, `headers` and `body`; anything
        else is refused. Raises `RequestBuildError` naming what is wrong.
        """
        data = dict(request_data or {})
        unknown = sorted(set(data) - _REQUEST_DATA_KEYS)
        if unknown:
            raise RequestBuildError(
                f"request_data has unknown keys {unknown}; "
                f"expected some of {sorted(_REQUEST_DATA_KEYS)}"
            )
        verb = self._method(method)
        path_params = self._mapping(data.get("path_params"), "path_params")
        query_params = self._mapping(data.get("query_params"), "query_params")
        request_headers = self._mapping(data.get("headers"), "headers")

        url, template_query = self._url(endpoint, path_params)
        params = list(template_query)
        for key, value in query_params.items():
            params.extend(_query_pairs(str(key), value))

        request = PreparedRequest(method=verb, url=url, params=params)
        request.set_header("Accept", "application/json")
        request.set_header("User-Agent", self.user_agent)
        for layer in (self.headers, request_headers):
            for name, value in layer.items():
                if value is None:
                    continue
                self._check_header(str(name), value)
                if str(name).lower() in _COMPUTED_HEADERS:
                    continue
                request.set_header(str(name), _scalar(value))

        body = data.get("body")
        if body is not None:
            request.body = self._serialise(request, body)
        return request

    @staticmethod
    def _method(method: str) -> str:
        verb = str(method).upper()
        if verb not in _METHODS:
            allowed = ", ".join(m.value for m in HttpMethod)
            raise RequestBuildError(f"HTTP method {method!r} is not one of {allowed}")
        return verb

    @staticmethod
    def _mapping(value: Any, name: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise RequestBuildError(f"request_data.{name} must be an object")
        return value

    @staticmethod
    def _check_header(name: str, value: Any) -> None:
        if not _TOKEN.match(name):
            raise RequestBuildError(f"header name {name!r} is not a valid HTTP token")
        if isinstance(value, Mapping | list | tuple):
            raise RequestBuildError(f"header {name!r} must be a single value")
        if any(char in _scalar(value) for char in "\r\n\x00"):
            raise RequestBuildError(f"header {name!r} contains a line break or NUL character")

    def _url(
        self, endpoint: str, path_params: Mapping[str, Any]
    ) -> tuple[str, list[tuple[str, str]]]:
        static = self._static_urls.get(endpoint)
        if static is not None:
            return static[0], list(static[1])
        url, query = self._build_url(endpoint, path_params)
        if "{" not in endpoint and len(self._static_urls) < 1024:
            self._static_urls[endpoint] = (url, list(query))
        return url, query

    def _build_url(
        self, endpoint: str, path_params: Mapping[str, Any]
    ) -> tuple[str, list[tuple[str, str]]]:
        template, _, query_template = endpoint.partition("?")
        template = template.partition("#")[0]
        missing: list[str] = []

        def substitute(text: str, *, keep: str) -> str:
            pieces: list[str] = []
            position = 0
            for match in _PLACEHOLDER.finditer(text):
                pieces.append(quote(text[position : match.start()], safe=keep))
                name = match.group(1)
                value = path_params.get(name)
                if value is None:
                    missing.append(name)
                else:
                    pieces.append(quote(_scalar(value), safe=""))
                position = match.end()
            pieces.append(quote(text[position:], safe=keep))
            return "".join(pieces)

        path = substitute(template, keep=_PATH_SAFE)
        query = substitute(query_template, keep="=&%+") if query_template else ""
        if missing:
            raise RequestBuildError(
                f"path parameters {sorted(set(missing))} are missing for endpoint {endpoint!r}"
            )

        base_query: list[tuple[str, str]] = []
        if _ABSOLUTE.match(template):
            url, _ = self._normalise_origin(path, endpoint)
        elif self.base_url is None:
            raise RequestBuildError(
                f"endpoint {endpoint!r} is a relative path and the integration has no base_url"
            )
        else:
            if self._base is None:
                self._base = self._normalise_origin(self.base_url, self.base_url)
            base, base_query = self._base
            url = f"{base.rstrip('/')}/{path.lstrip('/')}" if path.strip("/") else base
        return url, base_query + parse_qsl(query, keep_blank_values=True)

    @staticmethod
    def _normalise_origin(url: str, shown: str) -> tuple[str, list[tuple[str, str]]]:
        """Encode the host (IDNA) and check the scheme; the path is already encoded.

        Returns the URL without query and the query it carried.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise RequestBuildError(
                f"{safe_url(shown)!r} is not an absolute http:// or https:// URL"
            )
        try:
            origin = URL(f"{parts.scheme}://{parts.netloc}")
        except ValueError as exc:
            raise RequestBuildError(f"{safe_url(shown)!r} has an invalid host") from exc
        query = parse_qsl(parts.query, keep_blank_values=True)
        return f"{str(origin).rstrip('/')}{parts.path}", query

    @staticmethod
    def _serialise(request: PreparedRequest, body: Any) -> bytes:
        content_type = request.get_header("Content-Type")
        if content_type is None:
            if isinstance(body, bytes | bytearray | memoryview):
                request.set_header("Content-Type", "application/octet-stream")
                return bytes(body)
            request.set_header("Content-Type", "application/json")
            content_type = "application/json"
        media_type = _media_type(content_type)
        if isinstance(body, bytes | bytearray | memoryview):
            return bytes(body)
        if media_type == _FORM:
            if isinstance(body, str):
                return body.encode()
            if not isinstance(body, Mapping):
                raise RequestBuildError("a form-encoded body must be an object")
            pairs: list[tuple[str, str]] = []
            for key, value in body.items():
                pairs.extend(_form_pairs(str(key), value))
            return urlencode(pairs).encode()
        if _is_json(media_type):
            try:
                return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
            except TypeError as exc:
                raise RequestBuildError(f"the body cannot be encoded as JSON: {exc}") from exc
        if isinstance(body, str):
            try:
                return body.encode(_charset(content_type))
            except (LookupError, UnicodeEncodeError) as exc:
                raise RequestBuildError(
                    f"the body cannot be encoded for Content-Type {content_type!r}"
                ) from exc
        raise RequestBuildError(
            f"a body for Content-Type {media_type!r} must be a string or bytes, "
            f"not {type(body).__name__}"
        )


# ---------------------------------------------------------------------------------------------
# Response parsing


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _lookup(value: Any, key: str) -> Any:
    """`value[key]` for a mapping, keys compared case-insensitively; None otherwise."""
    if not isinstance(value, Mapping):
        return None
    if key in value:
        return value[key]
    for name, item in value.items():
        if isinstance(name, str) and name.lower() == key:
            return item
    return None


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else None


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text = str(value).strip()
        return text or None
    return None


class RESTResponseParser:
    """Turns raw answers into data and finds the message in error answers.

    JSON is read with orjson; XML with defusedxml (entity declarations and external references
    are refused) into dicts: an element becomes a dict, attributes `@name`, text `#text`,
    repeated children a list, a text-only element its text, namespaces dropped from names.
    `text/*` becomes a str, form-encoded a dict, anything else
    `{"content_type": ..., "base64": ...}`; an empty body is None.
    """

    def __init__(self, *, max_error_chars: int = 500, max_xml_depth: int = 200) -> None:
        self.max_error_chars = max_error_chars
        self.max_xml_depth = max_xml_depth

    def parse(self, raw: RawResponse, expected_format: str = "auto") -> Any:
        """The body as data; `expected_format` is auto, json, xml, text or binary.

        Raises `MalformedResponse` when a JSON or XML body does not parse.
        """
        if expected_format not in _FORMATS:
            raise ValueError(f"expected_format must be one of {sorted(_FORMATS)}")
        if not raw.body:
            return None
        media_type = raw.content_type
        chosen = expected_format
        if chosen == "auto":
            if _is_json(media_type):
                chosen = "json"
            elif _is_xml(media_type):
                chosen = "xml"
            elif media_type.startswith("text/"):
                chosen = "text"
            elif media_type == _FORM:
                return self._form(raw)
            elif not media_type:
                return self._sniff(raw)
            else:
                chosen = "binary"
        if chosen == "json":
            return self._json(raw)
        if chosen == "xml":
            return self._xml(raw)
        if chosen == "text":
            return raw.text()
        return {
            "content_type": media_type or "application/octet-stream",
            "base64": base64.b64encode(raw.body).decode("ascii"),
        }

    def parse_quietly(self, raw: RawResponse) -> Any:
        """Like `parse`, but a body that does not parse comes back as text."""
        try:
            return self.parse(raw)
        except MalformedResponse:
            return raw.text()

    def _json(self, raw: RawResponse) -> Any:
        charset = (raw.charset or "utf-8").lower().replace("_", "-")
        try:
            if charset in ("utf-8", "utf8", "us-ascii", "ascii"):
                return orjson.loads(raw.body)
            return orjson.loads(raw.text())
        except orjson.JSONDecodeError as exc:
            if not raw.body.strip():  # only whitespace: no body (checked here, not per call)
                return None
            raise MalformedResponse(
                f"the response from {safe_url(raw.url)} is not valid JSON: {exc}",
                status_code=raw.status,
            ) from exc

    def _xml(self, raw: RawResponse) -> Any:
        where = safe_url(raw.url)
        try:
            root = xml_fromstring(raw.body, forbid_dtd=False, forbid_entities=True)
        except DefusedXmlException as exc:
            raise MalformedResponse(
                f"the XML response from {where} declares entities or references external "
                "resources, which is refused",
                status_code=raw.status,
            ) from exc
        except ParseError as exc:
            raise MalformedResponse(
                f"the response from {where} is not well-formed XML: {exc}", status_code=raw.status
            ) from exc
        return {_local_name(root.tag): self._element(root, 1, where, raw.status)}

    def _element(self, element: Element, depth: int, where: str, status: int) -> Any:
        if depth > self.max_xml_depth:
            raise MalformedResponse(
                f"the XML response from {where} is nested deeper than {self.max_xml_depth} levels",
                status_code=status,
            )
        node: dict[str, Any] = {
            f"@{_local_name(name)}": value for name, value in element.attrib.items()
        }
        texts = [element.text or ""]
        for child in element:
            key = _local_name(child.tag)
            value = self._element(child, depth + 1, where, status)
            if key in node:
                existing = node[key]
                if isinstance(existing, list):
                    existing.append(value)
                else:
                    node[key] = [existing, value]
            else:
                node[key] = value
            texts.append(child.tail or "")
        text = "".join(texts).strip()
        if text:
            if not node:
                return text
            node["#text"] = text
        return node or None

    @staticmethod
    def _form(raw: RawResponse) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in parse_qsl(raw.text(), keep_blank_values=True):
            if key in result:
                existing = result[key]
                result[key] = (
                    [*existing, value] if isinstance(existing, list) else [existing, value]
                )
            else:
                result[key] = value
        return result

    def _sniff(self, raw: RawResponse) -> Any:
        head = raw.body.lstrip()[:1]
        if head in (b"{", b"["):
            try:
                return orjson.loads(raw.body)
            except orjson.JSONDecodeError:
                pass
        try:
            return raw.body.decode("utf-8")
        except UnicodeDecodeError:
            return {
                "content_type": "application/octet-stream",
                "base64": base64.b64encode(raw.body).decode("ascii"),
            }

    def extract_error_message(self, data: Any, raw: RawResponse | None = None) -> str | None:
        """The upstream's own explanation of a failure, from the usual places.

        Looks at `error.message`, `error` (a string, with `error_description` when present),
        `message`, `error_description`, `errors[0].message|detail|title`, `detail` (a string or
        a validation list's first `msg`), `title` and `fault.faultstring`, also one level inside
        a single wrapping element (XML roots); falls back to the text body. Truncated to
        `max_error_chars`.
        """
        candidates = [data]
        if isinstance(data, Mapping) and len(data) == 1:
            candidates.append(next(iter(data.values())))
        if isinstance(data, list) and data and isinstance(data[0], Mapping):
            # An error list such as Salesforce's `[{"message": ..., "errorCode": ...}]`.
            first = data[0]
            message = self._message_in(first)
            code = _text(_lookup(first, "errorCode"))
            if message:
                return self._truncate(f"{code}: {message}" if code else message)
        for candidate in candidates:
            message = self._message_in(candidate)
            if message:
                return self._truncate(message)
        if isinstance(data, str) and data.strip():
            return self._truncate(" ".join(data.split()))
        if raw is not None and raw.body and data is None:
            return self._truncate(" ".join(raw.text().split())) or None
        return None

    @staticmethod
    def _message_in(data: Any) -> str | None:
        if not isinstance(data, Mapping):
            return None
        error = _lookup(data, "error")
        if isinstance(error, Mapping):
            found = _text(_lookup(error, "message")) or _text(_lookup(error, "description"))
            if found:
                return found
        description = _text(_lookup(data, "error_description"))
        error_text = _text(error)
        if error_text:
            return f"{error_text}: {description}" if description else error_text
        found = _text(_lookup(data, "message")) or description
        if found:
            return found
        first_error = _first(_lookup(data, "errors"))
        found = _text(first_error) or next(
            (
                text
                for key in ("message", "detail", "title")
                if (text := _text(_lookup(first_error, key)))
            ),
            None,
        )
        if found:
            return found
        detail = _lookup(data, "detail")
        found = _text(detail) or _text(_first(detail)) or _text(_lookup(_first(detail), "msg"))
        if found:
            return found
        return _text(_lookup(data, "title")) or _text(
            _lookup(_lookup(data, "fault"), "faultstring")
        )

    def _truncate(self, text: str) -> str:
        if len(text) <= self.max_error_chars:
            return text
        return text[: self.max_error_chars - 1].rstrip() + "…"


# ---------------------------------------------------------------------------------------------
# The adapter


def _reset_seconds(value: str, now: float) -> float | None:
    """`X-RateLimit-Reset`: an epoch timestamp (GitHub) or a delay in seconds (IETF draft)."""
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if number > 1_000_000_000:
        return max(0.0, number - now)
    return max(0.0, number)


_RESET_HEADERS = ("x-ratelimit-reset", "ratelimit-reset", "x-rate-limit-reset")
_REMAINING_HEADERS = ("x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining")


class RESTIntegration(BaseIntegration):
    """The REST adapter of one integration.

    Wired with the integration's configuration (`base_url`, `headers`, `timeout_ms`,
    `retry_config`, `ssl_verify`), its auth handler, the shared `HttpTransport`, and optionally
    a `RetryManager`; without one each call makes a single attempt.

    Outcomes: a 2xx answer is returned as `IntegrationResponse(success=True, ...)`; everything
    else is raised as an `UpstreamError`, so that retry and the circuit breaker classify
    failures by type instead of inspecting responses: 429 (and 403 with an exhausted quota)
    → `RateLimitedError` with `retry_after`; 401/403 → `UpstreamAuthError` after one credential
    refresh and retry when the handler says a refresh helped; other non-2xx →
    `UpstreamStatusError` (with `retry_after` when the upstream sent Retry-After); transport
    failures → `UpstreamTimeout`/`NetworkError`; a refused destination → `BlockedDestination`;
    an unreadable 2xx body → `MalformedResponse`. Messages have every auth secret redacted.
    """

    def __init__(
        self,
        config: IntegrationSpec,
        auth_handler: BaseAuthHandler,
        transport: HttpTransport,
        retry_manager: RetryManager | None = None,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        max_retry_after_s: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config)
        self.auth_handler = auth_handler
        self.transport = transport
        self.retry_manager = retry_manager
        self.builder = RESTRequestBuilder(config.base_url, config.headers, user_agent=user_agent)
        self.parser = RESTResponseParser()
        self.max_retry_after_s = max_retry_after_s
        self._clock = clock

    def __repr__(self) -> str:
        return (
            f"RESTIntegration(name={self.config.name!r}, "
            f"base_url={safe_url(self.config.base_url or '')!r}, auth={self.auth_handler!r})"
        )

    def build_request(
        self, endpoint: str, method: str, request_data: Mapping[str, Any] | None = None
    ) -> PreparedRequest:
        """The unauthenticated request for `endpoint` (see `RESTRequestBuilder.build`)."""
        return self.builder.build(endpoint, method, request_data)

    def parse_response(self, response: RawResponse, expected_format: str = "auto") -> Any:
        """The body of `response` as data (see `RESTResponseParser.parse`)."""
        return self.parser.parse(response, expected_format)

    def handle_rate_limiting(self, response: RawResponse, retry_attempt: int) -> float | None:
        """Seconds to wait before trying again, or None when the answer says nothing about it.

        Reads Retry-After (seconds or an HTTP date), then `X-RateLimit-Reset`-style headers (an
        epoch timestamp or seconds) on a 429 or an exhausted quota; a 429 with neither backs off
        exponentially from one second by `retry_attempt` (0 for the first attempt), and caps
        the result at `max_retry_after_s`. This is what the upstream asked, reported to the
        caller as `retry_after` as is: jitter belongs to our own sleeping (`RetryManager`).
        """
        if response.status < 400:
            return None
        now = self._clock()
        headers = response.headers
        wait: float | None = None
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            wait = parse_retry_after(retry_after, now=datetime.fromtimestamp(now, UTC))
        limited = response.status == 429 or self._quota_exhausted(response)
        if wait is None and limited:
            for name in _RESET_HEADERS:
                if name in headers:
                    wait = _reset_seconds(headers[name], now)
                    if wait is not None:
                        break
        if wait is None and response.status == 429:
            wait = float(2 ** max(0, min(retry_attempt, 16)))
        if wait is None:
            return None
        return min(wait, self.max_retry_after_s)

    @staticmethod
    def _quota_exhausted(response: RawResponse) -> bool:
        return any(response.headers.get(name, "").strip() == "0" for name in _REMAINING_HEADERS)

    async def execute(
        self,
        endpoint: str,
        method: str,
        request_data: Mapping[str, Any] | None = None,
        timeout_ms: int | None = None,
        retry_config: RetryConfig | None = None,
        *,
        deadline: float | None = None,
        call: CallContext | None = None,
        allow_non_idempotent: bool = False,
    ) -> IntegrationResponse:
        """Call `endpoint` and return the parsed 2xx answer; raise `UpstreamError` otherwise.

        `timeout_ms` (the integration's when None) bounds each attempt. `deadline`, a
        `time.monotonic()` value, bounds the whole call with retries and the auth retry; when
        None it is `timeout_ms` from now, because a person is waiting for the answer. Pass a
        later deadline to leave room for retries after a timeout. POST and PATCH are retried
        only with `allow_non_idempotent`. The number of retries made is in the response's
        `retries`, or in the raised error's `retries`.
        """
        started = time.perf_counter()
        attempt_timeout_s = (timeout_ms or self.config.timeout_ms) / 1000
        if deadline is None:
            deadline = time.monotonic() + attempt_timeout_s
        retry = retry_config or self.config.retry_config
        request = self.build_request(endpoint, method, request_data)
        if call is not None and call.endpoint.idempotency_key_header and request.method == "POST":
            request.set_header(
                call.endpoint.idempotency_key_header, idempotency_key(call.request_id, request)
            )
        retries = [0]

        try:
            try:
                raw = await self._send(
                    request, retry, attempt_timeout_s, deadline, allow_non_idempotent, retries
                )
            except UpstreamAuthError:
                if not await self.auth_handler.refresh():
                    raise
                retries[0] += 1
                raw = await self._send(
                    request, retry, attempt_timeout_s, deadline, allow_non_idempotent, retries
                )
        except UpstreamError as exc:
            exc.retries = retries[0]
            raise

        data = self._parse_success(raw)
        return IntegrationResponse(
            success=True,
            status_code=raw.status,
            data=data,
            headers=raw.headers,
            execution_time_ms=round((time.perf_counter() - started) * 1000),
            request_size_bytes=len(request.body or b""),
            response_size_bytes=len(raw.body),
            retries=retries[0],
        )

    async def _send(
        self,
        request: PreparedRequest,
        retry: RetryConfig,
        timeout_s: float,
        deadline: float,
        allow_non_idempotent: bool,
        retries: list[int],
    ) -> RawResponse:
        attempts = 0

        async def attempt() -> RawResponse:
            nonlocal attempts
            attempt_number = attempts
            attempts += 1
            prepared = request.copy()
            await self.auth_handler.apply(prepared)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamTimeout(f"the deadline for {safe_url(request.url)} has passed")
            try:
                raw = await self.transport.send(
                    prepared,
                    timeout_s=min(timeout_s, remaining),
                    ssl_verify=self.config.ssl_verify,
                )
            except UpstreamError as exc:
                record_exchange(prepared, error=self._redact(exc.message))
                raise
            record_exchange(prepared, raw)
            self._raise_for_status(raw, attempt_number)
            if self.auth_handler.inspects_responses:
                self._raise_if_expired(raw)
            return raw

        try:
            if self.retry_manager is None:
                return await attempt()
            result = await self.retry_manager.run(
                attempt,
                retry_config=retry,
                method=request.method,
                allow_non_idempotent=allow_non_idempotent,
                deadline=deadline,
            )
            retries[0] += result.retries
            return result.unwrap()
        except UpstreamError as exc:
            self._redact_error(exc)
            raise

    def _parse_success(self, raw: RawResponse) -> Any:
        try:
            return self.parse_response(raw)
        except UpstreamError as exc:
            self._redact_error(exc)
            raise

    def _raise_for_status(self, raw: RawResponse, attempt_number: int) -> None:
        if 200 <= raw.status < 300:
            return
        body = self.parser.parse_quietly(raw)
        upstream_message = self.parser.extract_error_message(body, raw)
        if upstream_message is not None:
            upstream_message = self._redact(upstream_message)
        retry_after = self.handle_rate_limiting(raw, attempt_number)
        status = f"{raw.status} {raw.reason}".strip()
        message = f"{safe_url(raw.url)} answered {status}"
        if upstream_message:
            message = f"{message}: {upstream_message}"
        fields: dict[str, Any] = {
            "status_code": raw.status,
            "headers": raw.headers,
            "body": body,
            "upstream_message": upstream_message,
            "retry_after": retry_after,
        }
        if raw.status == 429 or (raw.status == 403 and self._quota_exhausted(raw)):
            raise RateLimitedError(message, **fields)
        if raw.status in (401, 403):
            raise UpstreamAuthError(message, **fields)
        raise UpstreamStatusError(message, **fields)

    def _raise_if_expired(self, raw: RawResponse) -> None:
        """A 2xx whose body says the token expired (`metadata.oauth2.expired_when`) is a 401."""
        body = self.parser.parse_quietly(raw)
        if self.auth_handler.response_expired(body):
            raise UpstreamAuthError(
                f"{safe_url(raw.url)} answered {raw.status} with a body saying the access "
                "token expired",
                status_code=raw.status,
                headers=raw.headers,
                body=body,
            )

    def _redact(self, text: str) -> str:
        for secret in self.auth_handler.secrets():
            if len(secret) < 3:
                continue
            for form in {secret, quote(secret, safe=""), quote(secret)}:
                text = text.replace(form, REDACTED)
        return text

    def _redact_error(self, exc: UpstreamError) -> None:
        redacted = self._redact(exc.message)
        if redacted != exc.message:
            exc.message = redacted
            exc.args = (redacted,)
        if isinstance(exc, UpstreamStatusError) and exc.upstream_message is not None:
            exc.upstream_message = self._redact(exc.upstream_message)


def idempotency_key(request_id: str, request: PreparedRequest) -> str:
    """A key the upstream can deduplicate on: the same for every retry of one request of one
    execution, different for each page or request the execution makes."""
    digest = hashlib.sha256()
    for part in (request_id, request.method, request.url, repr(request.params)):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(request.body or b"")
    return f"{request_id}-{digest.hexdigest()[:16]}"


def relative_path_problems(spec: IntegrationSpec) -> list[Problem]:
    """`base_url` is needed unless every endpoint path is an absolute URL."""
    if spec.base_url is not None:
        return []
    if all(e.path.startswith(("http://", "https://")) for e in spec.endpoints.values()):
        return []
    return [(("base_url",), f"is required for type {spec.type} with relative endpoint paths")]


class RESTAdapterFactory:
    """Builds `RESTIntegration`s (integration type `rest_api`)."""

    def validate(self, spec: IntegrationSpec, options: AdapterOptions) -> list[Problem]:
        return relative_path_problems(spec)

    def create(
        self, spec: IntegrationSpec, auth: BaseAuthHandler, context: AdapterContext
    ) -> RESTIntegration:
        # One attempt per call: the pipeline runs the retries, so that each attempt passes the
        # rate limiter and the concurrency cap on its own.
        return RESTIntegration(spec, auth, context.transport)
