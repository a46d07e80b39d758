"""The paginator on its own: Link headers, Shopify's GraphQL pageInfo, the origin rule."""

from __future__ import annotations

from typing import Any

from adaptor.domain import PaginationConfig
from adaptor.mapping.paths import compile_expression
from adaptor.protocols.pagination import (
    FetchedPage,
    PageRequest,
    Paginator,
    follow_pages,
    next_link,
)


def test_next_link_reads_rfc_8288_link_headers() -> None:
    github = (
        '<https://api.github.com/repositories/1/issues?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/issues?page=5>; rel="last"'
    )
    assert next_link({"Link": github}) == "https://api.github.com/repositories/1/issues?page=2"
    assert next_link({"link": '<https://x.example/a>; rel="prev next"'}) == "https://x.example/a"
    assert next_link({"Link": '<https://x.example/a>; rel="last"'}) is None
    assert next_link({}) is None


async def test_shopify_page_info_drives_the_after_variable() -> None:
    config = PaginationConfig(
        type="cursor",
        cursor_path="data.orders.pageInfo.endCursor",
        cursor_param="after",
        cursor_in="body",
        has_more_path="data.orders.pageInfo.hasNextPage",
    )
    pager = Paginator(config, compile_expression, "https://shop.myshopify.com")
    pages = [
        {
            "data": {
                "orders": {
                    "edges": [{"node": {"id": 1}}],
                    "pageInfo": {"hasNextPage": True, "endCursor": "eyJsYXN0X2lkIjox"},
                }
            }
        },
        {
            "data": {
                "orders": {
                    "edges": [{"node": {"id": 2}}],
                    "pageInfo": {"hasNextPage": False, "endCursor": "eyJsYXN0X2lkIjoy"},
                }
            }
        },
    ]
    sent: list[dict[str, Any]] = []

    async def fetch(request: PageRequest) -> FetchedPage[int]:
        sent.append(request.request_data["body"])
        body = pages[len(sent) - 1]
        return FetchedPage(len(sent), body, items=len(body["data"]["orders"]["edges"]))

    first = pager.first("/admin/api/2026-10/graphql.json", {"body": {"first": 1}})
    assert await follow_pages(pager, first, fetch) == [1, 2]
    assert sent == [{"first": 1}, {"first": 1, "after": "eyJsYXN0X2lkIjox"}]


def test_a_next_url_on_another_origin_is_not_followed() -> None:
    pager = Paginator(
        PaginationConfig(type="link_header"), compile_expression, "https://a.example/v1"
    )
    current = PageRequest("/items", {"query_params": {"q": "x"}, "headers": {"X-A": "1"}})
    same = pager.next(current, FetchedPage(0, {}, {"Link": '</v1/items?page=2>; rel="next"'}, 1))
    assert same == PageRequest(
        "https://a.example/v1/items?page=2",
        {"headers": {"X-A": "1"}},
        marker=same.marker if same else None,
    )
    other = FetchedPage(0, {}, {"Link": '<https://b.example/items?page=2>; rel="next"'}, 1)
    assert pager.next(current, other) is None
