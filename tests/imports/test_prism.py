"""Imported Stripe, HubSpot and Jira descriptions executed against Prism serving the same
descriptions: every endpoint, with credentials set afterwards by PATCH. Prism checks each
request against the vendor's description (auth, parameters, content type, body) and answers
401/415/422 when it does not fit, so a success here means the import produced requests the
vendor's own description accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Tenant
from tests.prism import OPENAPI_FIXTURES, run_prism

IMPORT = "/api/v2/integrations/import"


@pytest.fixture(scope="module")
def prism_servers() -> Iterator[dict[str, str]]:
    with (
        run_prism(OPENAPI_FIXTURES / "stripe.json") as stripe,
        run_prism(OPENAPI_FIXTURES / "hubspot.json") as hubspot,
        run_prism(OPENAPI_FIXTURES / "jira.json") as jira,
    ):
        yield {"stripe.json": stripe, "hubspot.json": hubspot, "jira.json": jira}


def sample(schema: dict[str, Any]) -> Any:
    """A small value that `schema` accepts: required properties only, first enum values."""
    if "enum" in schema:
        return next(value for value in schema["enum"] if value is not None)
    for keyword in ("anyOf", "allOf"):
        if keyword in schema:
            return sample(schema[keyword][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: sample(props.get(name, {})) for name in schema.get("required", [])}
    if kind == "array":
        return [sample(schema.get("items", {}))] if schema.get("minItems") else []
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    formats = {
        "email": "ada@example.com",
        "date-time": "2024-05-01T12:00:00Z",
        "date": "2024-05-01",
    }
    return formats.get(schema.get("format", ""), "abc123")


# The credentials each vendor's description asks for, as a PATCH after the import.
CREDENTIALS: dict[str, dict[str, Any]] = {
    "stripe.json": {"auth_config": {"credentials": {"token": "sk_test_4eC39HqLyjWDarjtT1zdp7dc"}}},
    # HubSpot names only OAuth2; a private app's access token is sent the same way.
    "hubspot.json": {
        "auth_config": {
            "type": "bearer_token",
            "oauth2_flow": None,
            "token_url": None,
            "authorization_url": None,
            "scopes": [],
            "credentials": {"token": "pat-na1-11111111-2222-3333-4444-555555555555"},
        }
    },
    "jira.json": {
        "auth_config": {
            "credentials": {"username": "ada@example.com", "password": "atlassian-api-token"}
        }
    },
}


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
@pytest.mark.parametrize("name", ["stripe.json", "hubspot.json", "jira.json"])
async def test_every_imported_endpoint_executes_against_prism(
    app_client: httpx.AsyncClient, tenant: Tenant, prism_servers: dict[str, str], name: str
) -> None:
    document = orjson.loads((OPENAPI_FIXTURES / name).read_bytes())
    imported = await app_client.post(
        IMPORT,
        json={"format": "openapi", "document": document, "base_url": prism_servers[name]},
        headers=tenant.headers,
    )
    assert imported.status_code == 201, imported.text
    config = imported.json()
    assert config["enabled"] is False
    integration_id = config["integration_id"]
    patch = {**CREDENTIALS[name], "enabled": True, "retry_config": {"max_retries": 0}}
    patched = await app_client.patch(
        f"/api/v2/integrations/{integration_id}", json=patch, headers=tenant.headers
    )
    assert patched.status_code == 200, patched.text
    assert "********" in orjson.dumps(patched.json()["auth_config"]["credentials"]).decode()

    failures: dict[str, Any] = {}
    for endpoint_name, endpoint in config["endpoints"].items():
        input_data = sample(endpoint["validation_schema"])
        body = endpoint["request_mapping"].get("body", {})
        variables = input_data.setdefault("variables", {})
        if body and not set(body) & set(variables):
            # A body with nothing required is still a body (Jira's POSTs): send one property.
            first = next(iter(body))
            schema = endpoint["validation_schema"]["properties"]["variables"]["properties"]
            variables[first] = sample(schema[first])
        response = await app_client.post(
            f"/api/v2/execute/{integration_id}/{endpoint_name}",
            json={"input_data": input_data, "options": {"include_raw_response": True}},
            headers=tenant.headers,
        )
        assert response.status_code == 200, (endpoint_name, response.text)
        result = response.json()
        if not result["success"]:
            failures[endpoint_name] = (result["metadata"].get("status_code"), result["error"])
        elif endpoint["method"] != "POST" or "transitions" not in endpoint["path"]:
            assert result["data"] is not None, endpoint_name
    assert failures == {}, orjson.dumps(failures).decode()
    assert len(config["endpoints"]) == {"stripe.json": 15, "hubspot.json": 12, "jira.json": 8}[name]
