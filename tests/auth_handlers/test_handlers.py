"""Auth handlers and their factory, applied to prepared requests."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from adaptor.auth_handlers import (
    APIKeyHandler,
    AuthConfigurationError,
    BaseAuthHandler,
    BasicAuthHandler,
    BearerTokenHandler,
    NoAuthHandler,
    UnsupportedAuthType,
    create_auth_handler,
)
from adaptor.domain import MASK, AuthConfig, AuthType
from adaptor.protocols import PreparedRequest, UpstreamError


def request() -> PreparedRequest:
    return PreparedRequest(method="GET", url="https://api.example.com/x", params=[("q", "1")])


def config(auth_type: AuthType, **kwargs: Any) -> AuthConfig:
    return AuthConfig(type=auth_type, **kwargs)


async def test_no_auth_changes_nothing() -> None:
    prepared = request()
    handler = create_auth_handler(config(AuthType.NONE))
    assert isinstance(handler, NoAuthHandler)
    await handler.apply(prepared)
    assert prepared.headers == {}
    assert prepared.params == [("q", "1")]
    assert handler.secrets() == []
    assert await handler.refresh() is False


async def test_api_key_defaults_to_the_x_api_key_header() -> None:
    prepared = request()
    handler = create_auth_handler(config(AuthType.API_KEY, credentials={"api_key": "k-1"}))
    await handler.apply(prepared)
    assert prepared.get_header("X-API-Key") == "k-1"
    assert prepared.sensitive_headers == {"x-api-key"}
    assert prepared.redacted_headers() == {"X-API-Key": "********"}


async def test_api_key_in_a_named_header_replaces_any_case() -> None:
    prepared = request()
    prepared.set_header("x-token", "from-input")
    handler = APIKeyHandler("k-2", header="X-Token")
    await handler.apply(prepared)
    assert prepared.headers == {"X-Token": "k-2"}


async def test_api_key_in_the_query_replaces_a_spoofed_param() -> None:
    prepared = request()
    prepared.add_param("key", "spoofed")
    handler = create_auth_handler(
        config(AuthType.API_KEY, credentials={"api_key": "k-3"}, api_key_param="key")
    )
    await handler.apply(prepared)
    assert prepared.params == [("q", "1"), ("key", "k-3")]
    assert prepared.get_header("X-API-Key") is None
    assert "k-3" not in prepared.redacted_url()
    assert prepared.redacted_url().endswith("key=%2A%2A%2A%2A%2A%2A%2A%2A")


async def test_api_key_in_header_and_query_when_both_are_configured() -> None:
    prepared = request()
    await APIKeyHandler("k-4", header="X-Key", param="key").apply(prepared)
    assert prepared.get_header("X-Key") == "k-4"
    assert ("key", "k-4") in prepared.params


async def test_basic_auth() -> None:
    prepared = request()
    handler = create_auth_handler(
        config(AuthType.BASIC_AUTH, credentials={"username": "ada", "password": "s3cret"})
    )
    await handler.apply(prepared)
    header = prepared.get_header("Authorization") or ""
    assert header == "Basic " + base64.b64encode(b"ada:s3cret").decode()
    assert "s3cret" in handler.secrets()
    assert header.removeprefix("Basic ") in handler.secrets()


def test_basic_auth_username_must_not_contain_a_colon() -> None:
    with pytest.raises(AuthConfigurationError, match="':'"):
        BasicAuthHandler("a:b", "pw")


async def test_bearer_token() -> None:
    prepared = request()
    prepared.set_header("authorization", "Bearer spoofed")
    handler = create_auth_handler(config(AuthType.BEARER_TOKEN, credentials={"token": "t-1"}))
    await handler.apply(prepared)
    assert prepared.headers == {"Authorization": "Bearer t-1"}
    assert handler.secrets() == ["t-1"]


@pytest.mark.parametrize(
    "handler",
    [
        APIKeyHandler("secret-key", param="key"),
        BasicAuthHandler("ada", "secret-pw"),
        BearerTokenHandler("secret-token"),
    ],
)
async def test_repr_shows_no_secret(handler: BaseAuthHandler) -> None:
    prepared = request()
    await handler.apply(prepared)
    for secret in handler.secrets():
        assert secret not in repr(handler)
        assert secret not in repr(prepared)


@pytest.mark.parametrize("auth_type", [AuthType.OAUTH2, AuthType.CUSTOM])
def test_types_needing_a_context_are_named_without_one(auth_type: AuthType) -> None:
    with pytest.raises(UnsupportedAuthType, match=repr(auth_type.value)) as caught:
        create_auth_handler(config(auth_type, credentials={"client_secret": "hidden"}))
    assert caught.value.auth_type == auth_type.value
    assert caught.value.code == "auth_failed"
    assert isinstance(caught.value, UpstreamError)
    assert "hidden" not in str(caught.value)


@pytest.mark.parametrize(
    ("auth_type", "credentials", "missing"),
    [
        (AuthType.API_KEY, {}, "api_key"),
        (AuthType.API_KEY, {"api_key": ""}, "api_key"),
        (AuthType.BASIC_AUTH, {"username": "ada"}, "password"),
        (AuthType.BASIC_AUTH, {"password": "pw"}, "username"),
        (AuthType.BEARER_TOKEN, {}, "token"),
    ],
)
def test_missing_credentials_are_named(
    auth_type: AuthType, credentials: dict[str, Any], missing: str
) -> None:
    with pytest.raises(AuthConfigurationError, match=f"credentials.{missing} is required"):
        create_auth_handler(config(auth_type, credentials=credentials))


def test_a_masked_credential_is_not_sent() -> None:
    with pytest.raises(AuthConfigurationError, match="mask"):
        create_auth_handler(config(AuthType.BEARER_TOKEN, credentials={"token": MASK}))


def test_credential_must_be_a_string() -> None:
    with pytest.raises(AuthConfigurationError, match="must be a string"):
        create_auth_handler(config(AuthType.BEARER_TOKEN, credentials={"token": {"a": 1}}))


def test_credential_with_a_line_break_is_refused() -> None:
    with pytest.raises(AuthConfigurationError, match="line break") as caught:
        create_auth_handler(config(AuthType.BEARER_TOKEN, credentials={"token": "a\r\nX: y"}))
    assert "X: y" not in str(caught.value)
