"""`EndpointConfig.pagination` end to end: pages followed in one execution against a real
upstream on loopback, each page through the limiter and the retry rules."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Tenant
from tests.executions.test_execute import create, execute
from tests.executions.upstream import Reply, Seen, Upstream


def paged(upstream: Upstream, pagination: dict[str, Any], **endpoint: Any) -> dict[str, Any]:
    return {
        "name": "Paged",
        "type": "rest_api",
        "category": "testing",
        "base_url": upstream.url,
        "retry_config": {"max_retries": 2, "initial_delay_ms": 10, "max_delay_ms": 20},
        "endpoints": {
            "list": {
                "path": "/items",
                "request_mapping": {"query_params": {"q": "q"}},
                "response_mapping": {"data_path": "data", "field_mappings": {"id": "id"}},
                "pagination": pagination,
                **endpoint,
            }
        },
    }


def items(*ids: int) -> list[dict[str, int]]:
    return [{"id": i} for i in ids]


async def run(
    client: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any]
) -> dict[str, Any]:
    integration_id = await create(client, tenant, document)
    response = await execute(client, tenant, integration_id, "list", {"q": "x"})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_cursor_in_the_body_goes_into_a_query_parameter_until_has_more_is_false(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    def stripe_like(seen: Seen) -> Reply:
        after = dict(seen.query).get("starting_after")
        start = 0 if after is None else int(after)
        return Reply(json={"data": items(start + 1, start + 2), "has_more": start < 4})

    upstream.respond("GET", "/items", stripe_like)
    result = await run(
        app_client,
        tenant,
        paged(
            upstream,
            {
                "type": "cursor",
                "cursor_path": "data[-1].id",
                "cursor_param": "starting_after",
                "has_more_path": "has_more",
                "page_size": 2,
                "page_size_param": "limit",
            },
        ),
    )
    assert result["success"] is True
    assert [d["id"] for d in result["data"]] == [1, 2, 3, 4, 5, 6]
    assert result["metadata"]["pages"] == 3
    assert [dict(s.query) for s in upstream.seen] == [
        {"q": "x", "limit": "2"},
        {"q": "x", "limit": "2", "starting_after": "2"},
        {"q": "x", "limit": "2", "starting_after": "4"},
    ]


async def test_link_header_next_is_followed_and_a_foreign_origin_is_not(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    def github_like(seen: Seen) -> Reply:
        page = int(dict(seen.query).get("page", "1"))
        links = {
            1: f'<{upstream.url}/items?page=2>; rel="next", '
            f'<{upstream.url}/items?page=3>; rel="last"',
            2: '</items?page=3>; rel="next"',
            3: '<http://elsewhere.example/items?page=4>; rel="next"',
        }
        return Reply(json={"data": items(page)}, headers={"Link": links[page]})

    upstream.respond("GET", "/items", github_like)
    result = await run(app_client, tenant, paged(upstream, {"type": "link_header"}))
    assert [d["id"] for d in result["data"]] == [1, 2, 3]
    assert result["metadata"]["pages"] == 3
    assert upstream.count("/items") == 3


async def test_offset_advances_by_the_items_read_and_an_empty_page_stops(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    rows = items(*range(1, 6))

    def offset_api(seen: Seen) -> Reply:
        query = dict(seen.query)
        start, size = int(query["offset"]), int(query["limit"])
        return Reply(json={"data": rows[start : start + size]})

    upstream.respond("GET", "/items", offset_api)
    pagination = {
        "type": "offset",
        "offset_param": "offset",
        "page_size": 2,
        "page_size_param": "limit",
    }
    result = await run(app_client, tenant, paged(upstream, pagination))
    assert [d["id"] for d in result["data"]] == [1, 2, 3, 4, 5]
    assert [dict(s.query)["offset"] for s in upstream.seen] == ["0", "2", "4", "5"]
    assert result["metadata"]["pages"] == 4  # the empty fourth page is read and stops


async def test_page_numbers_stop_at_max_pages(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.respond(
        "GET", "/items", lambda seen: Reply(json={"data": items(int(dict(seen.query)["page"]))})
    )
    result = await run(
        app_client,
        tenant,
        paged(upstream, {"type": "page", "page_param": "page", "max_pages": 3}),
    )
    assert [d["id"] for d in result["data"]] == [1, 2, 3]
    assert result["metadata"]["pages"] == 3
    assert upstream.count() == 3


async def test_a_repeated_cursor_stops_instead_of_looping(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET",
        "/items",
        Reply(json={"data": items(1), "next": "A"}),
        Reply(json={"data": items(2), "next": "B"}),
        Reply(json={"data": items(3), "next": "A"}),
    )
    pagination = {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}
    result = await run(app_client, tenant, paged(upstream, {**pagination, "max_pages": 50}))
    assert [d["id"] for d in result["data"]] == [1, 2, 3]
    assert upstream.count() == 3


async def test_a_failing_page_is_retried_through_the_pipeline(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET",
        "/items",
        Reply(json={"data": items(1), "next": "A"}),
        Reply(503, {"error": {"message": "busy"}}),
        Reply(json={"data": items(2)}),
    )
    pagination = {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}
    result = await run(app_client, tenant, paged(upstream, pagination))
    assert result["success"] is True
    assert [d["id"] for d in result["data"]] == [1, 2]
    assert result["retries"] == 1
    assert result["metadata"]["pages"] == 2


async def test_a_page_that_keeps_failing_fails_the_execution(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET",
        "/items",
        Reply(json={"data": items(1), "next": "A"}),
        Reply(500, {"error": {"message": "broken"}}),
    )
    pagination = {"type": "cursor", "cursor_path": "next", "cursor_param": "cursor"}
    result = await run(app_client, tenant, paged(upstream, pagination))
    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"


async def test_each_page_counts_against_the_rate_limit(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.respond(
        "GET", "/items", lambda seen: Reply(json={"data": items(int(dict(seen.query)["page"]))})
    )
    document = paged(upstream, {"type": "page", "page_param": "page", "max_pages": 5})
    document["rate_limit"] = {"requests_per_minute": 3}
    result = await run(app_client, tenant, document)
    assert result["success"] is False
    assert result["error"]["code"] == "rate_limited"
    assert upstream.count() == 3


async def test_cursor_as_the_next_url_follows_salesforce_next_records_url(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply(
        "GET",
        "/items",
        Reply(json={"records": items(1), "done": False, "nextRecordsUrl": "/items/q-2"}),
    )
    upstream.reply("GET", "/items/q-2", Reply(json={"records": items(2), "done": True}))
    document = paged(
        upstream,
        {"type": "cursor", "cursor_path": "nextRecordsUrl", "cursor_in": "url"},
        response_mapping={"data_path": "records", "field_mappings": {"id": "id"}},
    )
    result = await run(app_client, tenant, document)
    assert [d["id"] for d in result["data"]] == [1, 2]
    assert [s.path for s in upstream.seen] == ["/items", "/items/q-2"]
    assert upstream.seen[1].query == []


async def test_pagination_missing_its_parameters_is_422_at_save(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    document = paged(upstream, {"type": "cursor", "cursor_path": "next["})
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422
    assert "cursor_param" in response.text
