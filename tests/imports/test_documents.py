"""Import through `POST /api/v2/integrations/import`: small documents for each construct,
and the located 422s for documents that cannot be imported."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import orjson
import yaml

from tests.conftest import Tenant

IMPORT = "/api/v2/integrations/import"


def petstore(version: str = "3.0.3") -> dict[str, Any]:
    nullable = (
        {"type": "string", "nullable": True}
        if version.startswith("3.0")
        else {"type": ["string", "null"]}
    )
    return {
        "openapi": version,
        "info": {"title": "Pet Store", "version": "1.0.0", "description": "Pets for sale."},
        "servers": [
            {
                "url": "https://{region}.pets.example.com/v{major}",
                "variables": {"region": {"default": "eu"}, "major": {"default": "2"}},
            }
        ],
        "security": [{"key": []}],
        "components": {
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "X-Pet-Key"}},
            "parameters": {
                "PetId": {
                    "name": "petId",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
            "schemas": {
                "Tag": {"type": "object", "properties": {"label": {"type": "string"}}},
                "NewPet": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Named"},
                        {
                            "type": "object",
                            "required": ["kind"],
                            "properties": {
                                "kind": {"type": "string", "enum": ["cat", "dog"]},
                                "nickname": nullable,
                                "owner": {
                                    "oneOf": [
                                        {"type": "string", "format": "email"},
                                        {"type": "integer"},
                                    ]
                                },
                                "tags": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Tag"},
                                },
                                "id": {"type": "integer", "readOnly": True},
                            },
                        },
                    ]
                },
                "Named": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "maxLength": 40}},
                },
            },
        },
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "listPets",
                    "summary": "List pets",
                    "parameters": [
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "maximum": 100},
                        },
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string"}},
                        {"name": "session", "in": "cookie", "schema": {"type": "string"}},
                    ],
                    "responses": {"200": {"description": "ok"}},
                },
                "post": {
                    "operationId": "createPet",
                    "summary": "Create a pet",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}
                        },
                    },
                    "responses": {"201": {"description": "created"}},
                },
            },
            "/pets/{petId}": {
                "parameters": [{"$ref": "#/components/parameters/PetId"}],
                "get": {"operationId": "getPetById", "responses": {"200": {"description": "ok"}}},
                "delete": {"responses": {"204": {"description": "gone"}}},
            },
        },
    }


async def post_import(client: httpx.AsyncClient, tenant: Tenant, **body: Any) -> httpx.Response:
    return await client.post(IMPORT, json={"format": "openapi", **body}, headers=tenant.headers)


async def test_an_openapi_3_0_document_becomes_an_integration(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await post_import(app_client, tenant, document=petstore())
    assert response.status_code == 201, response.text
    config = response.json()
    assert response.headers["location"] == f"/api/v2/integrations/{config['integration_id']}"
    assert config["name"] == "Pet Store"
    assert config["base_url"] == "https://eu.pets.example.com/v2"
    assert config["auth_config"]["type"] == "api_key"
    assert config["auth_config"]["api_key_header"] == "X-Pet-Key"
    assert config["enabled"] is False  # its API key comes later
    assert set(config["endpoints"]) == {
        "list_pets",
        "create_pet",
        "get_pet_by_id",
        "delete_pets_pet_id",
    }

    listing = config["endpoints"]["list_pets"]
    assert listing["method"] == "GET"
    assert listing["path"] == "/pets"
    assert listing["description"] == "List pets"
    assert listing["request_mapping"]["query_params"] == {"limit": "variables.limit"}
    assert listing["request_mapping"]["headers"] == {"X-Trace": 'variables."X-Trace"'}
    variables = listing["validation_schema"]["properties"]["variables"]
    assert variables["properties"]["limit"] == {"type": "integer", "maximum": 100}
    assert "required" not in variables

    pet = config["endpoints"]["get_pet_by_id"]
    assert pet["request_mapping"]["path_params"] == {"petId": "variables.petId"}
    assert pet["request_mapping"]["required"] == ["path_params.petId"]
    assert pet["validation_schema"]["properties"]["variables"]["required"] == ["petId"]
    assert pet["validation_schema"]["properties"]["variables"]["properties"]["petId"] == {
        "type": "integer",
        "minimum": 1,
    }

    create = config["endpoints"]["create_pet"]
    mapping = create["request_mapping"]
    assert mapping["headers"] == {"Content-Type": "'application/json'"}
    assert mapping["body"] == {
        "name": "variables.name",
        "kind": "variables.kind",
        "nickname": "variables.nickname",
        "owner": "variables.owner",
        "tags": "variables.tags",
    }  # `id` is read-only: never sent
    assert sorted(mapping["required"]) == ["body.kind", "body.name"]
    props = create["validation_schema"]["properties"]["variables"]["properties"]
    assert props["kind"] == {"type": "string", "enum": ["cat", "dog"]}
    assert props["nickname"] == {"type": ["string", "null"]}
    assert props["owner"] == {"anyOf": [{"type": "string", "format": "email"}, {"type": "integer"}]}
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "object", "properties": {"label": {"type": "string"}}},
    }
    notes = config["metadata"]["openapi"]["notes"]
    assert any("cookie parameter 'session'" in note for note in notes)
    assert config["metadata"]["openapi"]["operations"] == 4


async def test_openapi_3_1_yaml_and_nullable_forms(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    text = yaml.safe_dump(petstore("3.1.0"), sort_keys=False)
    response = await post_import(app_client, tenant, document=text, dry_run=True)
    assert response.status_code == 200, response.text
    props = response.json()["endpoints"]["create_pet"]["validation_schema"]["properties"]
    assert props["variables"]["properties"]["nickname"] == {"type": ["string", "null"]}
    listed = await app_client.get("/api/v2/integrations", headers=tenant.headers)
    assert listed.json()["items"] == []  # a dry run stores nothing

    as_json_text = orjson.dumps(petstore()).decode()
    response = await post_import(app_client, tenant, document=as_json_text, dry_run=True)
    assert response.status_code == 200


async def test_the_imported_validation_refuses_bad_input_at_execution(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = (await post_import(app_client, tenant, document=petstore(), name="Pets")).json()
    patched = await app_client.patch(
        f"/api/v2/integrations/{created['integration_id']}",
        json={"enabled": True, "auth_config": {"credentials": {"api_key": "pk_123"}}},
        headers=tenant.headers,
    )
    assert patched.status_code == 200, patched.text
    response = await app_client.post(
        f"/api/v2/execute/{created['integration_id']}/create_pet",
        json={"input_data": {"variables": {"kind": "bird", "nickname": None}}},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["errors"]}
    assert locs == {
        ("body", "input_data", "variables", "kind"),
        ("body", "input_data", "variables", "name"),
    }


async def test_enabling_without_the_credentials_names_them(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = (await post_import(app_client, tenant, document=petstore())).json()
    response = await app_client.patch(
        f"/api/v2/integrations/{created['integration_id']}",
        json={"enabled": True},
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "auth_config", "credentials", "api_key"]


async def test_operations_filter_name_and_base_url(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await post_import(
        app_client,
        tenant,
        document=petstore(),
        name="Just pets",
        base_url="https://sandbox.example.com/",
        operations=["getPetById", "list_pets"],
        dry_run=True,
    )
    assert response.status_code == 200, response.text
    config = response.json()
    assert set(config["endpoints"]) == {"get_pet_by_id", "list_pets"}
    assert config["name"] == "Just pets"
    assert config["base_url"] == "https://sandbox.example.com"

    unknown = await post_import(
        app_client, tenant, document=petstore(), operations=["listPets", "nope", "neither"]
    )
    assert unknown.status_code == 422
    assert [e["loc"] for e in unknown.json()["errors"]] == [
        ["body", "operations", 1],
        ["body", "operations", 2],
    ]


async def test_names_are_snake_case_and_deduplicated(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = petstore()
    document["paths"]["/pets"]["get"]["operationId"] = "get-/crm/v3/objects/contacts_getPage"
    document["paths"]["/pets/{petId}"]["get"]["operationId"] = "GetCRMContactsGetPage"
    document["paths"]["/pets/{petId}"]["delete"]["operationId"] = "get_crm_contacts_get_page"
    response = await post_import(app_client, tenant, document=document, dry_run=True)
    assert response.status_code == 200, response.text
    assert set(response.json()["endpoints"]) == {
        "get_crm_v3_objects_contacts_get_page",
        "get_crm_contacts_get_page",
        "get_crm_contacts_get_page_2",
        "create_pet",
    }


async def test_security_schemes(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"type": "http", "scheme": "bearer"}, {"type": "bearer_token"}),
        ({"type": "http", "scheme": "basic"}, {"type": "basic_auth"}),
        (
            {"type": "apiKey", "in": "query", "name": "hapikey"},
            {"type": "api_key", "api_key_param": "hapikey"},
        ),
        (
            {
                "type": "oauth2",
                "flows": {
                    "authorizationCode": {
                        "authorizationUrl": "https://id.example.com/authorize",
                        "tokenUrl": "https://id.example.com/token",
                        "scopes": {"pets.read": "read", "pets.write": "write"},
                    }
                },
            },
            {
                "type": "oauth2",
                "oauth2_flow": "authorization_code",
                "authorization_url": "https://id.example.com/authorize",
                "token_url": "https://id.example.com/token",
                "scopes": ["pets.read", "pets.write"],
            },
        ),
        (
            {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {"tokenUrl": "https://id.example.com/token", "scopes": {}}
                },
            },
            {"type": "oauth2", "oauth2_flow": "client_credentials", "scopes": []},
        ),
    ]
    for scheme, expected in cases:
        document = petstore()
        document["components"]["securitySchemes"] = {"key": scheme}
        response = await post_import(app_client, tenant, document=document, dry_run=True)
        assert response.status_code == 200, response.text
        auth = response.json()["auth_config"]
        assert {k: auth[k] for k in expected} == expected, scheme
    # Bearer is preferred among the alternatives a document offers (Stripe: basic or bearer).
    document = petstore()
    document["security"] = [{"basic": []}, {"bearer": []}]
    document["components"]["securitySchemes"] = {
        "basic": {"type": "http", "scheme": "basic"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    response = await post_import(app_client, tenant, document=document, dry_run=True)
    assert response.json()["auth_config"]["type"] == "bearer_token"
    document["components"].pop("securitySchemes")
    document.pop("security")
    response = await post_import(app_client, tenant, document=document)
    assert response.status_code == 201
    assert response.json()["enabled"] is True  # nothing to supply


async def test_documents_that_are_not_openapi_3_are_located_422s(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    swagger = {"swagger": "2.0", "info": {"title": "old", "version": "1"}, "paths": {}}
    response = await post_import(app_client, tenant, document=swagger)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors[0]["loc"] == ["body", "document", "swagger"]
    assert "Swagger" in errors[0]["msg"]

    no_paths = petstore()
    del no_paths["paths"]
    response = await post_import(app_client, tenant, document=no_paths)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "document", "paths"]]

    future = {**petstore(), "openapi": "4.0.0"}
    response = await post_import(app_client, tenant, document=future)
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "document", "openapi"]]

    response = await post_import(app_client, tenant, document="openapi: [unclosed")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "document"]
    assert "line 1" in response.json()["errors"][0]["msg"]

    response = await post_import(app_client, tenant, document="- just\n- a list\n")
    assert response.json()["errors"][0]["loc"] == ["body", "document"]


async def test_references_that_cannot_be_followed_are_located_422s(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = copy.deepcopy(petstore())
    document["paths"]["/pets"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/Missing"
    }
    document["paths"]["/pets/{petId}"]["parameters"] = [{"$ref": "./common.yaml#/PetId"}]
    document["paths"]["/pets"]["get"]["parameters"][0] = {
        "$ref": "https://example.com/params.json#/limit"
    }
    response = await post_import(app_client, tenant, document=document)
    assert response.status_code == 422
    errors = {tuple(e["loc"]): e["msg"] for e in response.json()["errors"]}
    schema_ref = (
        "body", "document", "paths", "/pets", "post", "requestBody", "content",
        "application/json", "schema", "$ref",
    )  # fmt: skip
    assert "#/components/schemas/Missing, which does not exist" in errors[schema_ref]
    file_ref = ("body", "document", "paths", "/pets/{petId}", "parameters", 0, "$ref")
    assert "another document" in errors[file_ref]
    url_ref = ("body", "document", "paths", "/pets", "get", "parameters", 0, "$ref")
    assert "another document" in errors[url_ref]
    assert len(errors) == 3


async def test_the_import_route_has_its_own_body_limit(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    # The test settings cap request bodies at 64 KiB; an import may be far larger.
    document = petstore()
    document["info"]["description"] = "x" * 200_000
    response = await post_import(app_client, tenant, document=document, dry_run=True)
    assert response.status_code == 200, response.text
    too_big = await app_client.post(
        "/api/v2/integrations",
        content=orjson.dumps({"name": "x" * 200_000}),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert too_big.status_code == 413


async def test_documents_that_expand_without_bound_are_refused(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    # A "billion laughs" YAML: each level repeats the previous one nine times.
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    text = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}\n" + "\n".join(levels)
    response = await post_import(app_client, tenant, document=text)
    assert response.status_code == 422
    assert "expands to more than" in response.json()["errors"][0]["msg"]

    # References that fan out: each schema has 40 properties referring to the next one.
    schemas = {
        f"S{n}": {
            "type": "object",
            "properties": {f"p{i}": {"$ref": f"#/components/schemas/S{n + 1}"} for i in range(40)},
        }
        for n in range(8)
    }
    schemas["S8"] = {"type": "string"}
    document = petstore()
    document["components"]["schemas"].update(schemas)
    document["paths"]["/pets"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/S0"
    }
    response = await post_import(app_client, tenant, document=document, dry_run=True)
    assert response.status_code == 200, response.text[:500]
    assert len(response.content) < 200_000  # 40^4 inlined nodes would be gigabytes
    body = response.json()["endpoints"]["create_pet"]["validation_schema"]
    assert set(body["properties"]["variables"]["properties"]) == {f"p{i}" for i in range(40)}


async def test_a_relative_server_is_a_path_prefix(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = petstore()
    document["servers"] = [{"url": "/api/v3"}]
    response = await post_import(app_client, tenant, document=document, dry_run=True)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "base_url"]]
    response = await post_import(
        app_client, tenant, document=document, base_url="https://pets.example.com", dry_run=True
    )
    assert response.status_code == 200, response.text
    config = response.json()
    assert config["base_url"] == "https://pets.example.com"
    assert config["endpoints"]["get_pet_by_id"]["path"] == "/api/v3/pets/{petId}"
