"""Declarative pagination: follow an endpoint's pages within one execution.

A `Paginator` knows, from the endpoint's `PaginationConfig`, how to shape the first request
(page size, first offset or page) and how to derive the next request from a page just read:

- `cursor`: the cursor at `cursor_path` in the body goes into `cursor_param` (a query
  parameter or a body dot path, e.g. a GraphQL variable), or is the next URL itself
  (`cursor_in: url`, Salesforce's `nextRecordsUrl`);
- `link_header`: the URL of `Link: <...>; rel="next"` (RFC 8288);
- `offset` / `page`: the offset advanced by the items read, or the page number by one.

`follow_pages` runs the loop. It stops at `max_pages`, at a page the caller reports as failed,
empty or not a list, when `has_more_path` is falsy, when no next request can be derived, and when
a cursor or URL repeats, so a misbehaving upstream can never make it loop. Each page is fetched
through the caller's `fetch`, which is where the rate limiter, retries and breaker apply.

A next URL must stay on the integration's own origin: credentials are never sent elsewhere
because an upstream said so.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urljoin

from adaptor.domain import PaginationConfig
from adaptor.protocols.http import origin

__all__ = [
    "FetchedPage",
    "PageRequest",
    "Paginator",
    "follow_pages",
    "next_link",
]

T = TypeVar("T")

_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


class Searchable(Protocol):
    """A compiled JMESPath expression."""

    def search(self, value: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page's request: the endpoint path (or an absolute next URL) and its request data."""

    path: str
    request_data: dict[str, Any]
    marker: str | None = None
    """What identifies this page (its cursor or URL), to notice one that repeats."""


@dataclass(slots=True)
class FetchedPage(Generic[T]):
    """What the caller's `fetch` read: `value` is kept for the caller, the rest steers."""

    value: T
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    items: int | None = None
    """How many items the page's `data_path` selected; None when it is not a list."""
    ok: bool = True


def next_link(headers: Mapping[str, str]) -> str | None:
    """The `rel="next"` target of a `Link` header, or None."""
    value = next((v for k, v in headers.items() if k.lower() == "link"), None)
    if not value:
        return None
    for match in _LINK.finditer(value):
        for rel in _REL.finditer(match.group(2)):
            names = (rel.group(1) or rel.group(2) or "").lower().split()
            if "next" in names:
                return match.group(1).strip()
    return None


class Paginator:
    """Derives each page's request from the previous page, per one `PaginationConfig`.

    `compile_expression` turns the config's JMESPath sources into searchable expressions (the
    mapping engine's compiler, so a bad one is a save-time error); `base_url` resolves
    relative next URLs and bounds where they may point.
    """

    def __init__(
        self,
        config: PaginationConfig,
        compile_expression: Callable[[str], Searchable],
        base_url: str | None,
    ) -> None:
        self.config = config
        self.max_pages = config.max_pages
        self.base_url = base_url
        self._cursor = compile_expression(config.cursor_path) if config.cursor_path else None
        self._has_more = compile_expression(config.has_more_path) if config.has_more_path else None

    def first(self, path: str, request_data: Mapping[str, Any]) -> PageRequest:
        """The first page's request: the mapped one with the page size and start set."""
        config = self.config
        data = _copy(request_data)
        query = data["query_params"]
        if config.page_size is not None and config.page_size_param:
            query.setdefault(config.page_size_param, config.page_size)
        if config.type == "offset" and config.offset_param:
            query.setdefault(config.offset_param, 0)
        elif config.type == "page" and config.page_param:
            query.setdefault(config.page_param, config.start_page)
        return PageRequest(path, data)

    def next(self, current: PageRequest, page: FetchedPage[Any]) -> PageRequest | None:
        """The request for the page after `page`, or None when `page` was the last."""
        config = self.config
        if self._has_more is not None and not self._has_more.search(page.body):
            return None
        if config.type == "link_header":
            link = next_link(page.headers)
            return self._at_url(current, link) if link else None
        if config.type == "cursor":
            assert self._cursor is not None
            cursor = self._cursor.search(page.body)
            if cursor in (None, "", [], {}):
                return None
            if config.cursor_in == "url":
                return self._at_url(current, str(cursor))
            data = _copy(current.request_data)
            assert config.cursor_param is not None
            if config.cursor_in == "body":
                _set_path(data, config.cursor_param, cursor)
            else:
                data["query_params"][config.cursor_param] = cursor
            return PageRequest(current.path, data, marker=repr(cursor))
        data = _copy(current.request_data)
        query = data["query_params"]
        if config.type == "offset":
            assert config.offset_param is not None
            offset = _int(query.get(config.offset_param)) + (page.items or 0)
            query[config.offset_param] = offset
            return PageRequest(current.path, data, marker=str(offset))
        assert config.page_param is not None
        number = _int(query.get(config.page_param), config.start_page) + 1
        query[config.page_param] = number
        return PageRequest(current.path, data, marker=str(number))

    def _at_url(self, current: PageRequest, target: str) -> PageRequest | None:
        """A next URL as a request: resolved against the base URL, on the same origin only,
        carrying its own query (the mapped query, path parameters and body are dropped)."""
        if self.base_url is None:
            if not target.startswith(("http://", "https://")):
                return None
            url = target
        else:
            url = urljoin(self.base_url + "/", target)
            if origin(url) != origin(self.base_url):
                return None
        headers = dict(current.request_data.get("headers") or {})
        return PageRequest(url, {"headers": headers}, marker=url)


async def follow_pages(
    paginator: Paginator,
    first: PageRequest,
    fetch: Callable[[PageRequest], Awaitable[FetchedPage[T]]],
) -> list[T]:
    """Fetch pages from `first` until one of the stop conditions; the values of every page
    read, in order (at least one)."""
    request = first
    seen: set[str] = set()
    values: list[T] = []
    while True:
        page = await fetch(request)
        values.append(page.value)
        if len(values) >= paginator.max_pages or not page.ok or not page.items:
            return values
        following = paginator.next(request, page)
        if following is None or following.marker in seen:
            return values
        if following.marker is not None:
            seen.add(following.marker)
        request = following


def _copy(request_data: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(request_data)
    data["query_params"] = dict(request_data.get("query_params") or {})
    body = request_data.get("body")
    if isinstance(body, dict):
        data["body"] = _deep_copy(body)
    return data


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    body = data.get("body")
    if not isinstance(body, dict):
        body = {}
    data["body"] = body
    *parents, last = path.split(".")
    target = body
    for name in parents:
        child = target.get(name)
        if not isinstance(child, dict):
            child = {}
            target[name] = child
        target = child
    target[last] = value


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
