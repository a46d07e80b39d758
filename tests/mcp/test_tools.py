"""Tool definitions built from integration configurations (names, schemas, annotations)."""

from __future__ import annotations

import re
from typing import Any

from adaptor.domain import IntegrationConfig
from adaptor.mcp.tools import build_tools, structured

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def config(name: str, endpoints: dict[str, Any], **extra: Any) -> IntegrationConfig:
    return IntegrationConfig.model_validate(
        {
            "tenant_id": "t1",
            "name": name,
            "type": "rest_api",
            "category": "crm",
            "base_url": "https://api.example.com",
            "endpoints": endpoints,
            **extra,
        }
    )


def test_names_are_slugs_unique_stable_and_short() -> None:
    long_endpoint = "list_every_single_customer_with_an_unusually_long_endpoint_name"
    first = config("Customers API (EU)", {"get": {"path": "/c"}, long_endpoint: {"path": "/l"}})
    twin = config("Customers API (EU)", {"get": {"path": "/c"}})
    built = build_tools([first, twin])
    names = [tool.name for tool in built.tools]
    assert names[0] == "customers-api-eu__get"
    assert names[2] != names[0]  # the younger twin gets a hashed name...
    assert names[2].startswith("customers-api-eu__get-")
    assert all(NAME.match(name) for name in names)
    assert len(names[1]) == 64
    assert built.targets[names[2]].integration_id == twin.integration_id
    again = build_tools([first, twin])
    assert [tool.name for tool in again.tools] == names  # ...and keeps it


def test_disabled_integrations_have_no_tools() -> None:
    assert build_tools([config("Off", {"get": {"path": "/"}}, enabled=False)]).tools == []


def test_input_schema_is_derived_from_the_request_mapping() -> None:
    endpoint = {
        "path": "/customers/{id}",
        "method": "PATCH",
        "description": "Update a customer. Only the given fields change.",
        "request_mapping": {
            "path_params": {"id": "variables.customer_id"},
            "query_params": {"expand": 'variables."expand[]"', "fixed": "'yes'"},
            "headers": {"Accept-Language": "context.locale"},
            "body": {"email": "user_data.email", "name": "join(' ', [user_data.first])"},
            "required": ["path_params.id", "body.email"],
        },
    }
    tool = build_tools([config("CRM", {"update": endpoint})]).tools[0]
    schema = tool.input_schema
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"variables", "context", "user_data"}
    variables = schema["properties"]["variables"]
    assert set(variables["properties"]) == {"customer_id", "expand[]"}
    assert variables["required"] == ["customer_id"]
    assert schema["properties"]["user_data"]["required"] == ["email"]
    assert schema["required"] == ["variables", "user_data"]
    assert tool.title == "CRM: Update a customer."
    assert tool.description is not None
    assert "Calls PATCH /customers/{id}" in tool.description
    assert "Required arguments: user_data.email, variables.customer_id." in tool.description
    assert tool.annotations is not None
    assert (tool.annotations.read_only_hint, tool.annotations.idempotent_hint) == (False, False)
    assert tool.output_schema is None  # the response mapping names no fields


def test_output_schema_from_the_response_mapping() -> None:
    endpoint = {
        "path": "/customers",
        "response_mapping": {
            "data_path": "data",
            "field_mappings": {"id": "id", "address.city": "city"},
            "default_values": {"tier": "free"},
        },
    }
    tool = build_tools([config("CRM", {"list": endpoint})]).tools[0]
    assert tool.output_schema is not None
    props = tool.output_schema["properties"]
    assert set(props) == {"id", "address", "tier", "items"}
    assert props["address"]["properties"] == {"city": {}}
    assert props["items"]["items"]["properties"]["id"] == {}


def test_structured_content_is_always_an_object() -> None:
    assert structured({"a": 1}) == {"a": 1}
    assert structured([1, 2]) == {"items": [1, 2]}
    assert structured("ok") == {"value": "ok"}
    assert structured(None) == {"value": None}
