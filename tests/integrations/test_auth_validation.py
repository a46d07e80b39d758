"""Save-time checks of the auth types beyond the simple ones: every problem is a located 422."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Tenant


def document(auth_config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "X",
        "type": "rest_api",
        "category": "crm",
        "base_url": "https://api.example.com",
        "auth_config": auth_config,
        **extra,
    }


def locations(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {".".join(map(str, error["loc"])): error["msg"] for error in response.json()["errors"]}


async def test_a_jwt_key_that_does_not_parse_is_named(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        json=document(
            {
                "type": "jwt",
                "credentials": {"private_key": "-----BEGIN NONSENSE-----", "algorithm": "RS256"},
            }
        ),
        headers=tenant.headers,
    )
    found = locations(response)
    assert "body.auth_config.credentials.private_key" in found
    assert "NONSENSE" not in response.text


async def test_an_unknown_custom_handler_lists_the_known_ones(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        json=document({"type": "custom", "custom_handler": "aws_sigv5"}),
        headers=tenant.headers,
    )
    found = locations(response)
    assert "aws_sigv4" in found["body.auth_config.custom_handler"]


async def test_oauth2_metadata_problems_are_all_named(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        json=document(
            {
                "type": "oauth2",
                "oauth2_flow": "client_credentials",
                "token_url": "https://auth.example.com/token",
                "credentials": {"client_id": "c", "client_secret": "s"},
            },
            metadata={
                "oauth2": {"client_auth_method": "private_key_jwt", "expired_when": "error.[["}
            },
        ),
        headers=tenant.headers,
    )
    found = locations(response)
    assert "body.metadata.oauth2.client_auth_method" in found
    assert "body.metadata.oauth2.expired_when" in found


async def test_jwt_bearer_needs_a_private_key_not_a_secret(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        json=document(
            {
                "type": "oauth2",
                "oauth2_flow": "jwt_bearer",
                "token_url": "https://auth.example.com/token",
                "credentials": {"client_id": "svc@example.com"},
            }
        ),
        headers=tenant.headers,
    )
    found = locations(response)
    assert "body.auth_config.credentials.private_key" in found
    assert "body.auth_config.credentials.client_secret" not in found


async def test_aws_sigv4_access_key_id_is_not_a_secret(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        json=document(
            {
                "type": "custom",
                "custom_handler": "aws_sigv4",
                "credentials": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "hidden-1"},
            }
        ),
        headers=tenant.headers,
    )
    assert response.status_code == 201, response.text
    credentials = response.json()["auth_config"]["credentials"]
    assert credentials == {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "********"}
