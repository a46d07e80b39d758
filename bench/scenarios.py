"""What the benchmark asks the service (and the reference proxy) to do, and what it must get.

One integration per service process, `rest_api` with an API key sent in `X-API-Key`, its
`base_url` the local nginx. Its endpoints:

- `get_customer`            GET /small, no mapping at all (scenario `execute_plain`);
- `list_customers`          GET /customers (36 KB, 100 customers) with the realistic mapping
                            (scenarios `execute_mapped`, `execute_full`, and `reference`);
- `list_customers_cached`   the same with `cache_config: {enabled, ttl_seconds: 300}`
                            (scenario `execute_cached`).

A second integration (`oauth2_integration_spec`) has `get_customer` behind OAuth2 client
credentials, its token endpoint served by nginx (scenario `execute_oauth2`).
A third integration, `graphql` on the same nginx, has one endpoint, `get_customer` (scenario
`execute_graphql`): a query with two variables mapped from the input, POSTed to `/graphql`,
whose static reply is read through `data_path: data.customer`.
Scenario `mcp_call` calls `get_customer` as the MCP tool `bench-customers__get_customer`: a
stateless 2026-07-28 `tools/call` over Streamable HTTP (`POST /mcp`, JSON reply) with the
execution's input document as the arguments.

The realistic mapping: a request mapping of 3 fields (query `limit` and `email`, header
`X-Locale`), a response `data_path` that filters the 100 items on `balance > 0` and projects
six fields with a multiselect, two transforms (`timestamp_to_date` with a format, and
`currency_format` reading each item's currency, amounts in minor units) and a summary template.

`expected_mapped_data()` computes the mapped result independently of the service (plain Python
plus babel, the library that defines currency formatting), so verification compares the
service's and the reference's answers with a known-good value, not with each other.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import babel.numbers

from bench.upstream import customer_list as customer_list  # re-exported: bench/mapping_micro.py
from bench.upstream import graphql_body, small_body

TENANT: Final = "bench"
ADMIN_API_KEY: Final = "adk_bench_admin_0123456789abcdef0123456789abcdef"
ENCRYPTION_KEY: Final = base64.urlsafe_b64encode(b"adaptor-bench-fixed-key-32-bytes").decode()
UPSTREAM_API_KEY: Final = "sk_bench_4eC39HqLyjWDarjtT1zdp7dc"
OAUTH2_CLIENT_SECRET: Final = "bench-oauth2-client-secret-0123456789"

# The realistic mapping (scenario 4), shared verbatim with bench/reference.py.
QUERY_MAPPING: Final = {"limit": "variables.limit", "email": "user_data.email"}
HEADER_MAPPING: Final = {"X-Locale": "context.locale"}
DATA_PATH: Final = (
    "data[?balance > `0`].{id: id, email: email, name: name, created: created, "
    "balance: balance, currency: currency}"
)
DATE_FORMAT: Final = "%Y-%m-%d"
CURRENCY_LOCALE: Final = "en_US"
SUMMARY_TEMPLATE: Final = "{{ count }} customers with a balance"

PLAIN_ENDPOINT: Final = "get_customer"
GRAPHQL_ENDPOINT: Final = "get_customer"
GRAPHQL_QUERY: Final = """
query Customer($email: String!, $limit: Int) {
  customer(email: $email, limit: $limit) {
    id object email name created balance currency metadata { crm_id plan }
  }
}
"""
MAPPED_ENDPOINT: Final = "list_customers"
CACHED_ENDPOINT: Final = "list_customers_cached"

EXECUTE_BODY: Final[dict[str, Any]] = {
    "input_data": {"variables": {"limit": 100}, "user_data": {"email": "a@b.c"}},
    "context": {"locale": "en"},
    "options": {},
}

MCP_TOOL: Final = f"bench-customers__{PLAIN_ENDPOINT}"
MCP_PROTOCOL: Final = "2026-07-28"
MCP_CALL_BODY: Final[dict[str, Any]] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": MCP_TOOL,
        "arguments": {**EXECUTE_BODY["input_data"], "context": EXECUTE_BODY["context"]},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MCP_PROTOCOL,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
        },
    },
}
MCP_HEADERS: Final = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": MCP_PROTOCOL,
    "Mcp-Method": "tools/call",
    "Mcp-Name": MCP_TOOL,
}


def _mapped_endpoint(path: str, cached: bool) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "path": path,
        "method": "GET",
        "request_mapping": {"query_params": dict(QUERY_MAPPING), "headers": dict(HEADER_MAPPING)},
        "response_mapping": {
            "data_path": DATA_PATH,
            "transformations": [
                {
                    "field": "created",
                    "transform": "timestamp_to_date",
                    "params": {"format": DATE_FORMAT},
                },
                {
                    "field": "balance",
                    "transform": "currency_format",
                    "params": {
                        "currency_field": "currency",
                        "locale": CURRENCY_LOCALE,
                        "minor_units": True,
                    },
                },
            ],
        },
        "summary_template": SUMMARY_TEMPLATE,
    }
    if cached:
        endpoint["cache_config"] = {"enabled": True, "ttl_seconds": 300}
    return endpoint


def integration_spec(upstream_base_url: str, *, rate_limited: bool = False) -> dict[str, Any]:
    """The benchmark's integration (POST /api/v2/integrations body)."""
    spec: dict[str, Any] = {
        "name": "bench-customers",
        "type": "rest_api",
        "category": "crm",
        "base_url": upstream_base_url,
        "auth_config": {
            "type": "api_key",
            "api_key_header": "X-API-Key",
            "credentials": {"api_key": UPSTREAM_API_KEY},
        },
        "endpoints": {
            PLAIN_ENDPOINT: {"path": "/small", "method": "GET"},
            MAPPED_ENDPOINT: _mapped_endpoint("/customers", cached=False),
            CACHED_ENDPOINT: _mapped_endpoint("/customers", cached=True),
        },
    }
    if rate_limited:
        # High enough never to trigger: the point is paying for the limiter, not hitting it.
        spec["rate_limit"] = {"requests_per_minute": 10_000_000}
    return spec


def oauth2_integration_spec(upstream_base_url: str) -> dict[str, Any]:
    """Scenario execute_oauth2: `get_customer` behind OAuth2 client credentials, its token
    endpoint served by the same nginx (the token is fetched once and cached)."""
    return {
        "name": "bench-customers-oauth2",
        "type": "rest_api",
        "category": "crm",
        "base_url": upstream_base_url,
        "auth_config": {
            "type": "oauth2",
            "oauth2_flow": "client_credentials",
            "token_url": f"{upstream_base_url}/oauth/token",
            "scopes": ["customers.read"],
            "credentials": {"client_id": "bench", "client_secret": OAUTH2_CLIENT_SECRET},
        },
        "endpoints": {PLAIN_ENDPOINT: {"path": "/small", "method": "GET"}},
    }


def graphql_integration_spec(upstream_base_url: str) -> dict[str, Any]:
    """The benchmark's GraphQL integration (scenario `execute_graphql`)."""
    return {
        "name": "bench-customers-graphql",
        "type": "graphql",
        "category": "crm",
        "base_url": upstream_base_url,
        "auth_config": {
            "type": "api_key",
            "api_key_header": "X-API-Key",
            "credentials": {"api_key": UPSTREAM_API_KEY},
        },
        "endpoints": {
            GRAPHQL_ENDPOINT: {
                "path": "/graphql",
                "method": "POST",
                "query": GRAPHQL_QUERY,
                "request_mapping": {
                    "body": {"email": "user_data.email", "limit": "variables.limit"}
                },
                "response_mapping": {"data_path": "data.customer"},
            }
        },
    }


def format_minor_units(amount: int, currency: str, locale: str = CURRENCY_LOCALE) -> str:
    """A minor-unit amount (cents; yen have none) as money text, e.g. `$1,234.50`."""
    code = currency.upper()
    value = Decimal(amount).scaleb(-babel.numbers.get_currency_precision(code))
    return babel.numbers.format_currency(value, code, locale=locale)


def expected_mapped_data() -> list[dict[str, Any]]:
    """The mapped customers the realistic mapping must produce, computed independently."""
    out: list[dict[str, Any]] = []
    for item in customer_list()["data"]:
        if not item["balance"] > 0:
            continue
        out.append(
            {
                "id": item["id"],
                "email": item["email"],
                "name": item["name"],
                "created": datetime.fromtimestamp(item["created"], tz=UTC).strftime(DATE_FORMAT),
                "balance": format_minor_units(item["balance"], item["currency"]),
                "currency": item["currency"],
            }
        )
    return out


def expected_summary() -> str:
    return f"{len(expected_mapped_data())} customers with a balance"


def expected_plain_data() -> dict[str, Any]:
    return small_body()


def expected_graphql_data() -> dict[str, Any]:
    customer: dict[str, Any] = graphql_body()["data"]["customer"]
    return customer
