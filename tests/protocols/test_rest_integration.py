"""RESTIntegration against a real upstream on loopback."""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
import pytest

from adaptor.auth_handlers import APIKeyHandler, BaseAuthHandler, BearerTokenHandler
from adaptor.domain import RetryConfig
from adaptor.protocols import (
    MalformedResponse,
    PreparedRequest,
    RateLimitedError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamStatusError,
)
from adaptor.resilience.retry import RetryManager

from .conftest import MakeIntegration
from .upstream import ERROR_SHAPES, Upstream

T = TypeVar("T")


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def test_every_method_reaches_the_upstream(
    method: str, upstream: Upstream, make_integration: MakeIntegration
) -> None:
    response = await make_integration().execute("/echo", method)
    assert upstream.last.method == method
    assert response.success
    assert response.status_code == 200
    if method == "HEAD":
        assert response.data is None
    else:
        assert response.data == {"ok": True, "method": method}


async def test_path_params_arrive_encoded(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    await make_integration().execute(
        "/echo/users/{id}/{name}", "GET", {"path_params": {"id": "a/b?c#d", "name": "Zoë x"}}
    )
    assert upstream.last.raw_path == "/echo/users/a%2Fb%3Fc%23d/Zo%C3%AB%20x"


async def test_query_lists_and_booleans_arrive(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    await make_integration().execute(
        "/echo", "GET", {"query_params": {"tag": ["a b", "c&d"], "active": True, "q": "ü"}}
    )
    assert upstream.last.query == [("tag", "a b"), ("tag", "c&d"), ("active", "true"), ("q", "ü")]


async def test_header_precedence(upstream: Upstream, make_integration: MakeIntegration) -> None:
    integration = make_integration(headers={"X-Source": "integration", "X-Only-Config": "yes"})
    await integration.execute("/echo", "GET", {"headers": {"x-source": "request"}})
    headers = upstream.last.headers
    assert headers.getall("X-Source") == ["request"]
    assert headers["X-Only-Config"] == "yes"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("adaptor-service/")


async def test_json_body_arrives(upstream: Upstream, make_integration: MakeIntegration) -> None:
    response = await make_integration().execute(
        "/echo", "POST", {"body": {"name": "Ada", "n": 1.5}}
    )
    assert upstream.last.headers["Content-Type"] == "application/json"
    assert orjson.loads(upstream.last.body) == {"name": "Ada", "n": 1.5}
    assert response.request_size_bytes == len(upstream.last.body)


async def test_form_body_arrives_in_bracket_notation(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    integration = make_integration(headers={"Content-Type": "application/x-www-form-urlencoded"})
    await integration.execute(
        "/echo",
        "POST",
        {"body": {"metadata": {"plan": "pro"}, "expand": ["x"], "items": [{"price": "p_1"}]}},
    )
    assert parse_qsl(upstream.last.body.decode()) == [
        ("metadata[plan]", "pro"),
        ("expand[]", "x"),
        ("items[0][price]", "p_1"),
    ]


async def test_text_body_arrives(upstream: Upstream, make_integration: MakeIntegration) -> None:
    await make_integration().execute(
        "/echo", "PUT", {"headers": {"Content-Type": "text/csv"}, "body": "a,b\n1,2\n"}
    )
    assert upstream.last.headers["Content-Type"] == "text/csv"
    assert upstream.last.body == b"a,b\n1,2\n"


async def test_get_sends_no_body(upstream: Upstream, make_integration: MakeIntegration) -> None:
    await make_integration().execute("/echo", "GET")
    assert upstream.last.body == b""
    assert "Content-Type" not in upstream.last.headers


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("json", {"id": 1, "name": "Ada", "tags": ["a", "b"]}),
        ("text", "héllo wörld"),
        (
            "binary",
            {"content_type": "image/png", "base64": base64.b64encode(bytes(range(256))).decode()},
        ),
        ("empty", None),
    ],
)
async def test_response_content_types(
    kind: str, expected: Any, make_integration: MakeIntegration
) -> None:
    response = await make_integration().execute(f"/respond/{kind}", "GET")
    assert response.data == expected


async def test_xml_response(make_integration: MakeIntegration) -> None:
    response = await make_integration().execute("/respond/xml", "GET")
    assert isinstance(response.data, dict)
    assert response.data["customers"]["customer"][1] == {"@id": "2", "name": "Grace"}
    assert response.headers["content-type"].startswith("application/xml")


@pytest.mark.parametrize("kind", ["xml-bomb", "xml-xxe"])
async def test_unsafe_xml_is_refused(kind: str, make_integration: MakeIntegration) -> None:
    with pytest.raises(MalformedResponse, match="entities") as caught:
        await make_integration().execute(f"/respond/{kind}", "GET")
    assert caught.value.code == "upstream_error"


async def test_malformed_json_is_an_upstream_error(make_integration: MakeIntegration) -> None:
    with pytest.raises(MalformedResponse, match="not valid JSON") as caught:
        await make_integration().execute("/respond/malformed", "GET")
    assert caught.value.status_code == 200


async def test_success_response_fields(make_integration: MakeIntegration) -> None:
    response = await make_integration().execute("/respond/json", "GET")
    assert response.success
    assert response.error is None
    assert response.response_size_bytes == len(json.dumps(response.data))
    assert response.execution_time_ms >= 0
    assert response.request_size_bytes == 0


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ("nested", "card declined"),
        ("string", "invalid_grant: code expired"),
        ("message", "no such customer"),
        ("errors", "email is taken"),
        ("detail", "stale"),
        ("xml", "disk full"),
        ("html", "<html><body>down</body></html>"),
    ],
)
async def test_error_messages_are_extracted(
    shape: str, message: str, make_integration: MakeIntegration
) -> None:
    with pytest.raises(UpstreamStatusError) as caught:
        await make_integration().execute(f"/error/{shape}", "GET")
    error = caught.value
    assert error.status_code == ERROR_SHAPES[shape][0]
    assert error.upstream_message == message
    assert message in str(error)
    assert error.code == "upstream_error"


async def test_text_error_body_is_truncated(make_integration: MakeIntegration) -> None:
    with pytest.raises(UpstreamStatusError) as caught:
        await make_integration().execute("/error/text", "GET")
    assert caught.value.upstream_message is not None
    assert len(caught.value.upstream_message) == 500


async def test_error_carries_status_headers_and_body(make_integration: MakeIntegration) -> None:
    with pytest.raises(UpstreamStatusError) as caught:
        await make_integration().execute("/error/nested", "GET")
    error = caught.value
    assert error.body == {"error": {"message": "card declined"}}
    assert error.headers["content-type"] == "application/json"
    detail = error.to_error_detail()
    assert detail.code == "upstream_error"
    assert detail.details == {"status_code": 400, "upstream_message": "card declined"}


async def test_retry_after_on_a_server_error(make_integration: MakeIntegration) -> None:
    with pytest.raises(UpstreamStatusError) as caught:
        await make_integration().execute("/error/html", "GET")
    assert caught.value.retry_after == 7
    assert caught.value.to_error_detail().retry_after == 7


async def test_429_is_rate_limited_with_retry_after(make_integration: MakeIntegration) -> None:
    with pytest.raises(RateLimitedError) as caught:
        await make_integration().execute(
            "/status/429", "GET", {"query_params": {"h-Retry-After": "3"}}
        )
    assert caught.value.code == "rate_limited"
    assert caught.value.retry_after == 3
    assert caught.value.status_code == 429


async def test_403_with_exhausted_quota_is_rate_limited(make_integration: MakeIntegration) -> None:
    with pytest.raises(RateLimitedError):
        await make_integration().execute(
            "/status/403", "GET", {"query_params": {"h-X-RateLimit-Remaining": "0"}}
        )


class RefreshingHandler(BaseAuthHandler):
    """Sends a stale token until refreshed; counts refreshes."""

    def __init__(self, *, refresh_helps: bool = True, token_after: str = "fresh-token") -> None:
        self.token = "stale-token"
        self.refreshes = 0
        self.refresh_helps = refresh_helps
        self.token_after = token_after

    async def apply(self, request: PreparedRequest) -> None:
        request.set_header("Authorization", f"Bearer {self.token}")

    async def refresh(self) -> bool:
        self.refreshes += 1
        self.token = self.token_after
        return self.refresh_helps

    def secrets(self) -> list[str]:
        return [self.token]


async def test_401_refreshes_once_and_retries(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    handler = RefreshingHandler()
    response = await make_integration(handler).execute("/fresh", "GET")
    assert response.data == {"authorised": True}
    assert handler.refreshes == 1
    assert [r.headers["Authorization"] for r in upstream.received] == [
        "Bearer stale-token",
        "Bearer fresh-token",
    ]


async def test_401_without_a_useful_refresh_is_auth_failed(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    handler = RefreshingHandler(refresh_helps=False)
    with pytest.raises(UpstreamAuthError) as caught:
        await make_integration(handler).execute("/fresh", "GET")
    assert caught.value.code == "auth_failed"
    assert caught.value.status_code == 401
    assert handler.refreshes == 1
    assert len(upstream.received) == 1


async def test_refresh_is_tried_only_once(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    handler = RefreshingHandler(token_after="still-wrong")
    with pytest.raises(UpstreamAuthError):
        await make_integration(handler).execute("/fresh", "GET")
    assert handler.refreshes == 1
    assert len(upstream.received) == 2


async def test_403_is_auth_failed(make_integration: MakeIntegration) -> None:
    with pytest.raises(UpstreamAuthError):
        await make_integration().execute("/status/403", "GET")


async def test_echoed_secrets_are_redacted_from_messages(
    make_integration: MakeIntegration,
) -> None:
    integration = make_integration(BearerTokenHandler("sk_live_abcdef"))
    with pytest.raises(UpstreamAuthError) as caught:
        await integration.execute(
            "/status/401", "GET", {"query_params": {"message": "bad token sk_live_abcdef"}}
        )
    error = caught.value
    assert "sk_live_abcdef" not in str(error)
    assert "sk_live_abcdef" not in repr(error)
    assert error.upstream_message == "bad token ********"


async def _no_sleep(_seconds: float) -> None:
    return None


def fast_retries() -> RetryManager:
    return RetryManager(sleep=_no_sleep)


async def test_retry_manager_runs_the_attempts_and_counts_retries(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    retry = RetryConfig(max_retries=2, initial_delay_ms=1, max_delay_ms=1)
    with pytest.raises(UpstreamStatusError) as caught:
        await make_integration(retry_manager=fast_retries()).execute(
            "/status/503", "GET", retry_config=retry
        )
    assert len(upstream.received) == 3
    assert caught.value.retries == 2


async def test_post_is_not_retried_unless_allowed(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    retry = RetryConfig(max_retries=1, initial_delay_ms=1, max_delay_ms=1)
    integration = make_integration(retry_manager=fast_retries())
    with pytest.raises(UpstreamStatusError):
        await integration.execute("/status/503", "POST", {"body": {"a": 1}}, retry_config=retry)
    assert len(upstream.received) == 1
    with pytest.raises(UpstreamStatusError):
        await integration.execute(
            "/status/503", "POST", {"body": {"a": 1}}, retry_config=retry, allow_non_idempotent=True
        )
    assert len(upstream.received) == 3


async def test_without_a_retry_manager_one_attempt(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    with pytest.raises(UpstreamStatusError):
        await make_integration().execute("/status/503", "GET")
    assert len(upstream.received) == 1


async def test_every_attempt_gets_fresh_auth(
    upstream: Upstream, make_integration: MakeIntegration
) -> None:
    integration = make_integration(
        APIKeyHandler("k-123", param="key"), retry_manager=fast_retries()
    )
    with pytest.raises(UpstreamError):
        await integration.execute(
            "/status/500", "GET", retry_config=RetryConfig(max_retries=1, initial_delay_ms=1)
        )
    assert [r.query for r in upstream.received] == [[("key", "k-123")], [("key", "k-123")]]
