"""GraphQL integrations end to end, against a real GraphQL server (Ariadne on uvicorn).

Save-time checks (graphql-core) are located at `endpoints.<name>.query` and friends; at
execution the mapped body becomes the operation's variables, and `errors` in a reply is an
`upstream_error` listing each message and path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from adaptor.auth_handlers import NoAuthHandler
from adaptor.domain import EndpointConfig, IntegrationSpec
from adaptor.protocols.graphql import GraphQLIntegration
from adaptor.protocols.http import AiohttpTransport
from adaptor.resilience import DestinationGuard
from tests.conftest import Backend, Tenant
from tests.servers.ariadne_server import run_ariadne

TOKEN = "gql_test_TOKEN_5f1e2d3c4b"


@pytest.fixture
def backend() -> Backend:
    """Adapter behaviour does not depend on the storage backend: the embedded one will do."""
    return Backend("embedded", None, None)


@pytest.fixture(scope="session")
def graphql_url() -> Iterator[str]:
    with run_ariadne() as url:
        yield url


def graphql_integration(url: str, endpoints: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    base, _, path = url.rstrip("/").rpartition("/")
    document: dict[str, Any] = {
        "name": "Customers GraphQL",
        "type": "graphql",
        "category": "crm",
        "base_url": base,
        "auth_config": {"type": "bearer_token", "credentials": {"token": TOKEN}},
        "retry_config": {"max_retries": 0},
        "endpoints": {
            name: {"path": f"/{path}/", "method": "POST", **endpoint}
            for name, endpoint in endpoints.items()
        },
    }
    document.update(overrides)
    return document


async def create(client: httpx.AsyncClient, tenant: Tenant, document: dict[str, Any]) -> str:
    response = await client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["integration_id"])


async def execute(
    client: httpx.AsyncClient,
    tenant: Tenant,
    integration_id: str,
    endpoint: str,
    input_data: dict[str, Any],
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v2/execute/{integration_id}/{endpoint}",
        json={"input_data": input_data},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


CUSTOMER = """
query Customer($id: ID!) {
  customer(id: $id) { id name email address { city } }
}
"""


async def test_a_query_with_variables_reads_the_reply_through_data_path(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    document = graphql_integration(
        graphql_url,
        {
            "get_customer": {
                "query": CUSTOMER,
                "request_mapping": {"body": {"id": "variables.customer_id"}},
                "response_mapping": {
                    "data_path": "data.customer",
                    "field_mappings": {"name": "name", "city": "address.city"},
                },
            }
        },
    )
    integration_id = await create(app_client, tenant, document)

    result = await execute(
        app_client, tenant, integration_id, "get_customer", {"variables": {"customer_id": "1"}}
    )

    assert result["success"] is True, result
    assert result["data"] == {"name": "Ada", "city": "London"}
    assert result["metadata"]["status_code"] == 200


async def test_dot_paths_build_nested_input_objects(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    query = """
    query Find($filter: CustomerFilter, $limit: Int) {
      customers(filter: $filter, limit: $limit) { name }
    }
    """
    document = graphql_integration(
        graphql_url,
        {
            "find": {
                "query": query,
                "request_mapping": {
                    "body": {
                        "filter.address.country": "variables.country",
                        "filter.plan": "variables.plan",
                        "limit": "variables.limit",
                    }
                },
                "response_mapping": {"data_path": "data.customers"},
            }
        },
    )
    integration_id = await create(app_client, tenant, document)

    result = await execute(
        app_client,
        tenant,
        integration_id,
        "find",
        {"variables": {"country": "US", "plan": "free", "limit": 5}},
    )

    assert result["success"] is True, result
    assert result["data"] == [{"name": "Grace"}]


async def test_a_mutation_with_a_nested_input_object(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    mutation = """
    mutation Create($input: NewCustomer!) {
      createCustomer(input: $input) { id name email address { city country } }
    }
    """
    document = graphql_integration(
        graphql_url,
        {
            "create_customer": {
                "query": mutation,
                "request_mapping": {
                    "body": {
                        "input.name": "user_data.name",
                        "input.email": "user_data.email",
                        "input.address.city": "user_data.city",
                        "input.address.country": "'FR'",
                    }
                },
                "response_mapping": {"data_path": "data.createCustomer"},
            }
        },
    )
    integration_id = await create(app_client, tenant, document)

    result = await execute(
        app_client,
        tenant,
        integration_id,
        "create_customer",
        {"user_data": {"name": "Marie", "email": "marie@example.com", "city": "Paris"}},
    )

    assert result["success"] is True, result
    assert result["data"]["name"] == "Marie"
    assert result["data"]["address"] == {"city": "Paris", "country": "FR"}


async def test_the_auth_header_reaches_the_server(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    document = graphql_integration(
        graphql_url,
        {
            "whoami": {
                "query": "query WhoAmI { whoami }",
                "response_mapping": {"data_path": "data"},
            }
        },
    )
    integration_id = await create(app_client, tenant, document)

    result = await execute(app_client, tenant, integration_id, "whoami", {})

    # The server echoes the header it received; our response masks the secret it carries.
    assert result["success"] is True, result
    assert result["data"] == {"whoami": "Bearer ********"}


async def test_a_query_may_be_sent_with_get(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    document = graphql_integration(
        graphql_url,
        {
            "get_customer": {
                "method": "GET",
                "query": CUSTOMER,
                "request_mapping": {"body": {"id": "variables.id"}},
                "response_mapping": {"data_path": "data.customer.name"},
            }
        },
    )
    integration_id = await create(app_client, tenant, document)

    result = await execute(
        app_client, tenant, integration_id, "get_customer", {"variables": {"id": "2"}}
    )

    assert result["success"] is True, result
    assert result["data"] == "Grace"


async def test_errors_with_partial_data_are_an_upstream_error_listing_message_and_path(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    query = """query Notes {
      first: customer(id: "1") { name secretNote }
      second: customer(id: "2") { name secretNote }
    }"""
    document = graphql_integration(graphql_url, {"notes": {"query": query}})
    integration_id = await create(app_client, tenant, document)

    result = await execute(app_client, tenant, integration_id, "notes", {})

    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"
    message = result["error"]["message"]
    assert "2 error(s) and partial data" in message
    assert message == (
        "The GraphQL server answered with 2 error(s) and partial data: "
        "secretNote is restricted (at first.secretNote); "
        "secretNote is restricted (at second.secretNote)"
    )
    assert result["retries"] == 0


async def test_errors_without_data_are_an_upstream_error(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    query = "query Must($id: ID!) { mustExist(id: $id) { name } }"
    document = graphql_integration(
        graphql_url,
        {"must": {"query": query, "request_mapping": {"body": {"id": "variables.id"}}}},
    )
    integration_id = await create(app_client, tenant, document)

    result = await execute(app_client, tenant, integration_id, "must", {"variables": {"id": "404"}})

    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"
    assert result["error"]["message"] == (
        "The GraphQL server answered 400 with 1 error(s): "
        "customer 404 does not exist (at mustExist)"
    )


async def test_a_document_the_server_rejects_is_an_http_level_upstream_error(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    document = graphql_integration(
        graphql_url, {"unknown": {"query": "query Unknown { noSuchField }"}}
    )
    integration_id = await create(app_client, tenant, document)

    result = await execute(app_client, tenant, integration_id, "unknown", {})

    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"
    assert result["metadata"]["status_code"] == 400
    assert "Cannot query field 'noSuchField' on type 'Query'" in result["error"]["message"]


async def test_an_operation_is_chosen_by_name_when_the_document_has_several(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    several = CUSTOMER + "\nquery WhoAmI { whoami }\n"
    document = graphql_integration(
        graphql_url,
        {
            "get_customer": {
                "query": several,
                "operation_name": "Customer",
                "request_mapping": {"body": {"id": "variables.id"}},
                "response_mapping": {"data_path": "data.customer.name"},
            }
        },
    )
    integration_id = await create(app_client, tenant, document)

    result = await execute(
        app_client, tenant, integration_id, "get_customer", {"variables": {"id": "1"}}
    )

    assert result["data"] == "Ada", result


@pytest.mark.parametrize(
    ("endpoint", "loc", "fragment"),
    [
        ({"query": "query Broken { customer(id: 1 { name } }"}, ["query"], "Syntax Error"),
        ({}, ["query"], "is required"),
        ({"query": "type Customer { id: ID }"}, ["query"], "is not executable"),
        ({"query": "query A { whoami }\nquery B { whoami }"}, ["operation_name"], "several"),
        (
            {"query": "query A { whoami }", "operation_name": "C"},
            ["operation_name"],
            "'C' is not an operation",
        ),
        ({"query": "query A { whoami(x: $undefined) }"}, ["query"], "is not defined"),
        (
            {
                "query": "mutation M($i: NewCustomer!) { createCustomer(input: $i) { id } }",
                "method": "GET",
                "request_mapping": {"body": {"i": "x"}},
            },
            ["method"],
            "mutation must be sent with POST",
        ),
        (
            {"query": CUSTOMER, "request_mapping": {"body": {"id": "x", "other.name": "y"}}},
            ["request_mapping", "body", "other.name"],
            "$other is not a variable",
        ),
        ({"query": CUSTOMER}, ["request_mapping", "body"], "non-null variable $id"),
    ],
)
async def test_a_document_that_cannot_run_is_a_422_at_save(
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    endpoint: dict[str, Any],
    loc: list[str],
    fragment: str,
) -> None:
    document = graphql_integration("http://127.0.0.1:9/graphql/", {"op": endpoint})

    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)

    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert {tuple(e["loc"]) for e in errors} == {("body", "endpoints", "op", *loc)}, errors
    assert any(fragment in e["msg"] for e in errors), errors


def test_queries_repeat_safely_even_as_post_and_mutations_only_when_allowed() -> None:
    query = EndpointConfig(path="/graphql", method="POST", query=CUSTOMER)
    mutation = EndpointConfig(
        path="/graphql", method="POST", query="mutation M { createCustomer { id } }"
    )
    allowed = mutation.model_copy(update={"retry_non_idempotent": True})
    spec = IntegrationSpec(name="g", type="graphql", category="c", base_url="http://127.0.0.1:9")
    adapter = GraphQLIntegration(
        spec, NoAuthHandler(), AiohttpTransport(DestinationGuard(allow_private=True))
    )

    assert adapter.repeats_safely(query) is True
    assert adapter.repeats_safely(mutation) is False
    assert adapter.repeats_safely(allowed) is True


async def test_the_debug_trace_shows_the_graphql_request_with_its_token_redacted(
    app_client: httpx.AsyncClient, tenant: Tenant, graphql_url: str
) -> None:
    document = graphql_integration(
        graphql_url,
        {
            "get_customer": {
                "query": CUSTOMER,
                "request_mapping": {"body": {"id": "variables.customer_id"}},
                "response_mapping": {"data_path": "data.customer"},
            }
        },
    )
    integration_id = await create(app_client, tenant, document)
    response = await app_client.post(
        f"/api/v2/execute/{integration_id}/get_customer",
        json={"input_data": {"variables": {"customer_id": "1"}}, "options": {"debug_mode": True}},
        headers=tenant.headers,
    )
    result = response.json()

    assert result["success"] is True, result
    call = next(stage for stage in result["metadata"]["trace"] if stage["stage"] == "call")
    [attempt] = call["input"]["attempts"]
    assert attempt["method"] == "POST"
    assert attempt["url"] == graphql_url
    assert attempt["headers"]["Authorization"] != f"Bearer {TOKEN}"
    sent = orjson.loads(attempt["body"])
    assert sent["variables"] == {"id": "1"}
    assert sent["query"].lstrip().startswith("query")
    assert attempt["response"]["status"] == 200
    assert TOKEN not in response.text
