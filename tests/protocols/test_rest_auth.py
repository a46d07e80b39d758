"""Each auth handler, verified by what the upstream received."""

from __future__ import annotations

import base64

import pytest

from adaptor.auth_handlers import create_auth_handler
from adaptor.domain import AuthConfig, AuthType
from adaptor.protocols import UpstreamStatusError

from .conftest import MakeIntegration
from .upstream import Upstream


async def test_api_key_in_the_default_header(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    handler = create_auth_handler(AuthConfig(type=AuthType.API_KEY, credentials={"api_key": "k1"}))
    await make_integration(handler).execute("/echo", "GET")
    assert upstream.last.headers["X-API-Key"] == "k1"
    assert upstream.last.query == []


async def test_api_key_in_a_named_header(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    handler = create_auth_handler(
        AuthConfig(type=AuthType.API_KEY, credentials={"api_key": "k2"}, api_key_header="X-Token")
    )
    await make_integration(handler).execute("/echo", "GET", {"headers": {"X-Token": "spoofed"}})
    assert upstream.last.headers.getall("X-Token") == ["k2"]


async def test_api_key_in_the_query(upstream: Upstream, make_integration: MakeIntegration) -> None:
    handler = create_auth_handler(
        AuthConfig(type=AuthType.API_KEY, credentials={"api_key": "k 3&"}, api_key_param="key")
    )
    await make_integration(handler).execute("/echo", "GET", {"query_params": {"q": "x"}})
    assert upstream.last.query == [("q", "x"), ("key", "k 3&")]
    assert "X-API-Key" not in upstream.last.headers


async def test_api_key_in_the_query_stays_out_of_error_messages(
    make_integration: MakeIntegration,
) -> None:
    handler = create_auth_handler(
        AuthConfig(
            type=AuthType.API_KEY, credentials={"api_key": "query-secret"}, api_key_param="key"
        )
    )
    with pytest.raises(UpstreamStatusError) as caught:
        await make_integration(handler).execute("/status/500", "GET")
    assert "query-secret" not in str(caught.value)
    assert "query-secret" not in repr(caught.value)


async def test_basic_auth(upstream: Upstream, make_integration: MakeIntegration) -> None:
    handler = create_auth_handler(
        AuthConfig(type=AuthType.BASIC_AUTH, credentials={"username": "ada", "password": "pä:ss"})
    )
    await make_integration(handler).execute("/echo", "GET")
    scheme, _, token = upstream.last.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(token).decode() == "ada:pä:ss"


async def test_bearer_token(upstream: Upstream, make_integration: MakeIntegration) -> None:
    handler = create_auth_handler(
        AuthConfig(type=AuthType.BEARER_TOKEN, credentials={"token": "tok-1"})
    )
    await make_integration(handler).execute(
        "/echo", "GET", {"headers": {"Authorization": "Bearer from-input"}}
    )
    assert upstream.last.headers.getall("Authorization") == ["Bearer tok-1"]


async def test_no_auth_sends_no_credentials(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    handler = create_auth_handler(AuthConfig(type=AuthType.NONE))
    await make_integration(handler).execute("/echo", "GET")
    assert "Authorization" not in upstream.last.headers
    assert "X-API-Key" not in upstream.last.headers
