"""`POST /api/v2/execute/batch`: dependencies, results passed on, per-item failures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from adaptor.errors import ValidationFailed
from adaptor.executions.batch import check_plan
from adaptor.executions.schemas import BatchItem
from tests.conftest import Backend, Tenant
from tests.executions.test_execute import CUSTOMERS, create, integration
from tests.executions.test_resilience import running_app
from tests.executions.upstream import Reply, Upstream

CREATED = {"id": "cus_9", "email": "n@x.io"}


def batch_integration(upstream: Upstream, **overrides: Any) -> dict[str, Any]:
    document = integration(upstream, **overrides)
    document["endpoints"]["get_created"] = {
        "path": "/v1/customers/{id}",
        "method": "GET",
        "request_mapping": {
            "path_params": {"id": "results.create.data.id"},
            "query_params": {"expand": "results.create.data.email"},
        },
    }
    document["endpoints"]["slow"] = {"path": "/slow", "method": "GET"}
    return document


def item(id: str, integration_id: str, endpoint: str, **fields: Any) -> dict[str, Any]:
    return {"id": id, "integration_id": integration_id, "endpoint_name": endpoint, **fields}


async def run(client: httpx.AsyncClient, tenant: Tenant, *items: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/api/v2/execute/batch", json={"executions": list(items)}, headers=tenant.headers
    )


async def test_a_dependant_runs_after_its_dependency_and_reads_its_result(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("POST", "/v1/customers", Reply(json=CREATED))
    upstream.reply("GET", "/v1/customers/cus_9", Reply(json={**CREATED, "name": "New"}))
    integration_id = await create(app_client, tenant, batch_integration(upstream))
    response = await run(
        app_client,
        tenant,
        item("fetch", integration_id, "get_created", depends_on=["create"]),
        item(
            "create",
            integration_id,
            "create_customer",
            input_data={"user_data": {"email": "n@x.io"}},
        ),
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert list(results) == ["fetch", "create"]
    assert results["create"]["data"] == CREATED
    assert results["fetch"]["success"] is True, results["fetch"]
    assert results["fetch"]["data"]["name"] == "New"
    assert [seen.method for seen in upstream.seen] == ["POST", "GET"]
    assert ("expand", "n@x.io") in upstream.seen[1].query


async def test_independent_items_run_at_the_same_time(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/slow", Reply(json={"ok": True}, delay_s=0.3))
    integration_id = await create(app_client, tenant, batch_integration(upstream))
    started = time.monotonic()
    response = await run(
        app_client, tenant, *(item(f"n{n}", integration_id, "slow") for n in range(4))
    )
    elapsed = time.monotonic() - started
    assert all(result["success"] for result in response.json()["results"].values())
    assert upstream.max_in_flight == 4
    assert elapsed < 0.9


async def test_a_batch_runs_at_most_max_concurrent_integrations_items_at_once(
    tmp_path: Path, backend: Backend, upstream: Upstream
) -> None:
    upstream.reply("GET", "/slow", Reply(json={"ok": True}, delay_s=0.1))
    async with running_app(tmp_path, backend, max_concurrent_integrations=2) as (client, tenant):
        integration_id = await create(client, tenant, batch_integration(upstream))
        response = await run(
            client, tenant, *(item(f"n{n}", integration_id, "slow") for n in range(6))
        )
    assert all(result["success"] for result in response.json()["results"].values())
    assert upstream.max_in_flight == 2
    assert upstream.count() == 6


async def test_a_failed_dependency_fails_its_dependants_without_calling_them(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("POST", "/v1/customers", Reply(500, {"message": "boom"}))
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, batch_integration(upstream))
    response = await run(
        app_client,
        tenant,
        item("create", integration_id, "create_customer", input_data={"user_data": {"email": "a"}}),
        item("fetch", integration_id, "get_created", depends_on=["create"]),
        item("after_fetch", integration_id, "list_customers", depends_on=["fetch"]),
        item("independent", integration_id, "list_customers"),
    )
    results = response.json()["results"]
    assert results["create"]["error"]["code"] == "upstream_error"
    for dependant, failed in (("fetch", "create"), ("after_fetch", "fetch")):
        error = results[dependant]["error"]
        assert results[dependant]["success"] is False
        assert error["code"] == "upstream_error"
        assert error["message"] == f"Not executed: dependency {failed!r} failed"
        assert error["details"] == {"failed_dependencies": [failed]}
        assert results[dependant]["metadata"]["skipped"] is True
    assert results["independent"]["success"] is True
    assert sorted(seen.method for seen in upstream.seen) == ["GET", "POST"]
    assert upstream.count("/v1/customers/cus_9") == 0


async def test_item_errors_are_results_not_a_failed_batch(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    upstream.reply("GET", "/v1/customers", Reply(json=CUSTOMERS))
    integration_id = await create(app_client, tenant, batch_integration(upstream))
    disabled = await create(app_client, tenant, batch_integration(upstream, enabled=False))
    response = await run(
        app_client,
        tenant,
        item("ok", integration_id, "list_customers"),
        item("unknown", "00000000-0000-0000-0000-000000000000", "list_customers"),
        item("no_endpoint", integration_id, "nope"),
        item("disabled", disabled, "list_customers"),
        item("invalid", integration_id, "create_customer", input_data={}),
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert results["ok"]["success"] is True
    statuses = {
        name: (results[name]["error"]["code"], results[name]["error"]["details"]["status"])
        for name in ("unknown", "no_endpoint", "disabled", "invalid")
    }
    assert statuses == {
        "unknown": ("upstream_error", 404),
        "no_endpoint": ("upstream_error", 404),
        "disabled": ("upstream_error", 409),
        "invalid": ("mapping_error", 422),
    }
    invalid_fields = results["invalid"]["error"]["details"]["errors"]
    assert any("email" in str(error["loc"]) for error in invalid_fields)
    assert upstream.count() == 1


async def test_items_take_context_and_options(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, batch_integration(upstream))
    response = await run(
        app_client,
        tenant,
        item(
            "mocked",
            integration_id,
            "list_customers",
            context={"locale": "fr"},
            options={"mock_response": CUSTOMERS, "debug_mode": True},
        ),
    )
    result = response.json()["results"]["mocked"]
    assert result["metadata"]["mocked"] is True
    assert [c["id"] for c in result["data"]] == ["cus_1", "cus_2"]
    [map_request] = [s for s in result["metadata"]["trace"] if s["stage"] == "map_request"]
    assert map_request["output"]["headers"] == {"Accept-Language": "fr"}
    assert upstream.count() == 0


async def test_a_cycle_is_422_naming_every_item_in_it(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, batch_integration(upstream))
    response = await run(
        app_client,
        tenant,
        item("a", integration_id, "list_customers", depends_on=["c"]),
        item("fine", integration_id, "list_customers"),
        item("b", integration_id, "list_customers", depends_on=["a", "fine"]),
        item("c", integration_id, "list_customers", depends_on=["b"]),
        item("selfish", integration_id, "list_customers", depends_on=["selfish"]),
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert sorted(tuple(error["loc"]) for error in errors) == [
        ("body", "executions", 0, "depends_on"),
        ("body", "executions", 2, "depends_on"),
        ("body", "executions", 3, "depends_on"),
        ("body", "executions", 4, "depends_on"),
    ]
    assert "'a', 'b', 'c'" in errors[0]["msg"]
    assert upstream.count() == 0


async def test_unknown_dependencies_and_duplicate_ids_are_422(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, batch_integration(upstream))
    response = await run(
        app_client,
        tenant,
        item("a", integration_id, "list_customers"),
        item("a", integration_id, "list_customers"),
        item("b", integration_id, "list_customers", depends_on=["a", "ghost"]),
    )
    assert response.status_code == 422
    errors = {tuple(error["loc"]): error["msg"] for error in response.json()["errors"]}
    assert set(errors) == {
        ("body", "executions", 1, "id"),
        ("body", "executions", 2, "depends_on", 1),
    }
    assert "ghost" in errors["body", "executions", 2, "depends_on", 1]
    assert upstream.count() == 0


async def test_more_than_a_hundred_items_is_422(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    integration_id = await create(app_client, tenant, batch_integration(upstream))
    items = [item(f"n{n}", integration_id, "list_customers") for n in range(101)]
    response = await run(app_client, tenant, *items)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "executions"]
    assert upstream.count() == 0


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": [], "b": ["a"], "c": ["a", "b"]}, []),
        ({"a": ["b"], "b": ["a"]}, [0, 1]),
        ({"a": ["a"], "b": []}, [0]),
        ({"a": ["b"], "b": ["c"], "c": ["b"]}, [1, 2]),
    ],
)
def test_check_plan_names_only_the_items_in_a_cycle(
    graph: dict[str, list[str]], expected: list[int]
) -> None:
    items = [
        BatchItem(id=name, integration_id="i", endpoint_name="e", depends_on=deps)
        for name, deps in graph.items()
    ]
    if not expected:
        check_plan(items)
        return
    with pytest.raises(ValidationFailed) as raised:
        check_plan(items)
    assert sorted(error["loc"][2] for error in raised.value.errors) == expected
