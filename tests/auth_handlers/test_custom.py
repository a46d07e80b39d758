"""Custom auth handlers: the registry, and a third-party handler from an entry point."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from adaptor.auth_handlers import (
    ENTRY_POINT_GROUP,
    AuthConfigurationError,
    AuthContext,
    CustomHandlerRegistry,
    create_auth_handler,
)
from adaptor.domain import AuthConfig, AuthType
from adaptor.protocols import PreparedRequest


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution on sys.path declaring one handler in the `adaptor.auth_handlers` group."""
    (tmp_path / "acme_auth.py").write_text(
        textwrap.dedent(
            """
            from adaptor.auth_handlers import BaseAuthHandler


            class HmacV2Handler(BaseAuthHandler):
                def __init__(self, auth_config, context):
                    self._key = auth_config.credentials["key"]

                async def apply(self, request):
                    request.set_header("X-Acme-Key", self._key)
                    request.sensitive_headers.add("x-acme-key")

                def secrets(self):
                    return [self._key]
            """
        )
    )
    info = tmp_path / "acme_auth-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-auth\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nacme_hmac_v2 = acme_auth:HmacV2Handler\n"
        "aws_sigv4 = acme_auth:HmacV2Handler\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def custom(name: str, **credentials: str) -> AuthConfig:
    return AuthConfig(type=AuthType.CUSTOM, custom_handler=name, credentials=credentials)


@pytest.mark.usefixtures("installed_plugin")
async def test_an_entry_point_handler_is_found_and_used() -> None:
    registry = CustomHandlerRegistry()
    assert registry.names() == ["acme_hmac_v2", "aws_sigv4"]
    context = AuthContext(transport=None, custom_handlers=registry)  # type: ignore[arg-type]
    handler = create_auth_handler(custom("acme_hmac_v2", key="k-123"), context)
    request = PreparedRequest("GET", "https://api.example.com/")
    await handler.apply(request)
    assert request.headers["X-Acme-Key"] == "k-123"


@pytest.mark.usefixtures("installed_plugin")
def test_an_entry_point_cannot_replace_a_built_in_handler() -> None:
    registry = CustomHandlerRegistry()
    context = AuthContext(transport=None, custom_handlers=registry)  # type: ignore[arg-type]
    handler = create_auth_handler(
        custom("aws_sigv4", access_key_id="AKID", secret_access_key="s"), context
    )
    assert type(handler).__name__ == "AWSSigV4Handler"


def test_an_unknown_name_lists_the_known_ones() -> None:
    context = AuthContext(transport=None, custom_handlers=CustomHandlerRegistry())  # type: ignore[arg-type]
    with pytest.raises(AuthConfigurationError, match="known: aws_sigv4"):
        create_auth_handler(custom("nope"), context)
