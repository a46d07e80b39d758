"""AiohttpTransport: deadlines, failures, size caps, redirects, pooling, no cookies."""

from __future__ import annotations

import socket
import time

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from adaptor.protocols import (
    AiohttpTransport,
    NetworkError,
    PreparedRequest,
    ResponseTooLarge,
    TooManyRedirects,
    UpstreamTimeout,
)
from adaptor.resilience import DestinationGuard

from .conftest import MakeIntegration
from .upstream import Upstream


def get(url: str, **headers: str) -> PreparedRequest:
    return PreparedRequest(method="GET", url=url, headers=dict(headers))


async def test_raw_response_fields(upstream: Upstream, transport: AiohttpTransport) -> None:
    raw = await transport.send(get(upstream.url("/respond/json")), timeout_s=5)
    assert raw.status == 200
    assert raw.content_type == "application/json"
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.body.startswith(b"{")
    assert raw.url == upstream.url("/respond/json")
    assert raw.elapsed_ms > 0


async def test_final_url_has_no_query(upstream: Upstream, transport: AiohttpTransport) -> None:
    request = get(upstream.url("/echo"))
    request.add_param("api_key", "secret-value")
    raw = await transport.send(request, timeout_s=5)
    assert "secret-value" not in raw.url
    assert "secret-value" not in repr(raw)


async def test_slow_upstream_times_out(upstream: Upstream, transport: AiohttpTransport) -> None:
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout, match=r"did not answer within 0\.2 s") as caught:
        await transport.send(get(upstream.url("/slow?seconds=5")), timeout_s=0.2)
    assert time.monotonic() - started < 2
    assert caught.value.code == "timeout"


async def test_timeout_through_the_integration(make_integration: MakeIntegration) -> None:
    with pytest.raises(UpstreamTimeout):
        await make_integration(timeout_ms=200).execute(
            "/slow", "GET", {"query_params": {"seconds": 5}}
        )


async def test_connection_refused_is_a_network_error(transport: AiohttpTransport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NetworkError, match=f"could not connect to 127.0.0.1:{port}") as caught:
        await transport.send(get(f"http://127.0.0.1:{port}/x?api_key=secret"), timeout_s=5)
    assert caught.value.code == "network_error"
    assert "secret" not in str(caught.value)


class FailingResolver(AbstractResolver):
    """A resolver that knows no names (no DNS query leaves the machine)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def close(self) -> None:
        return None


async def test_unresolvable_host_is_a_network_error() -> None:
    guard = DestinationGuard(allow_private=True, resolver=FailingResolver())
    transport = AiohttpTransport(guard)
    try:
        with pytest.raises(NetworkError, match=r"could not resolve host unknown\.example"):
            await transport.send(get("http://unknown.example/x"), timeout_s=5)
    finally:
        await transport.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_response_over_the_cap_is_refused(
    chunked: bool, upstream: Upstream, transport: AiohttpTransport
) -> None:
    size = 1024 * 1024 + 1
    url = upstream.url(f"/big?size={size}" + ("&chunked=1" if chunked else ""))
    with pytest.raises(ResponseTooLarge, match="larger than 1048576 bytes") as caught:
        await transport.send(get(url), timeout_s=5)
    assert caught.value.code == "upstream_error"


async def test_response_at_the_cap_is_accepted(
    upstream: Upstream, transport: AiohttpTransport
) -> None:
    raw = await transport.send(get(upstream.url("/big?size=1048576&chunked=1")), timeout_s=5)
    assert len(raw.body) == 1024 * 1024


async def test_redirect_is_followed(upstream: Upstream, transport: AiohttpTransport) -> None:
    raw = await transport.send(get(upstream.url("/redirect?to=/respond/json")), timeout_s=5)
    assert raw.status == 200
    assert raw.redirects == 1
    assert raw.url == upstream.url("/respond/json")


async def test_303_after_post_continues_as_get_without_body(
    upstream: Upstream, transport: AiohttpTransport
) -> None:
    request = PreparedRequest(
        method="POST",
        url=upstream.url("/redirect"),
        params=[("to", "/echo/next"), ("status", "303")],
        headers={"Content-Type": "application/json"},
        body=b'{"a": 1}',
    )
    await transport.send(request, timeout_s=5)
    assert upstream.last.method == "GET"
    assert upstream.last.body == b""
    assert "Content-Type" not in upstream.last.headers


async def test_307_keeps_method_and_body(upstream: Upstream, transport: AiohttpTransport) -> None:
    request = PreparedRequest(
        method="PUT",
        url=upstream.url("/redirect"),
        params=[("to", "/echo/next"), ("status", "307")],
        body=b"payload",
    )
    await transport.send(request, timeout_s=5)
    assert upstream.last.method == "PUT"
    assert upstream.last.body == b"payload"


async def test_redirect_loop_stops(upstream: Upstream, transport: AiohttpTransport) -> None:
    loop = "/redirect?to=/redirect%3Fto%3D/redirect%253Fto%253D/echo"
    transport.max_redirects = 1
    with pytest.raises(TooManyRedirects):
        await transport.send(get(upstream.url(loop)), timeout_s=5)


async def test_cross_origin_redirect_drops_credentials(
    upstream: Upstream, other_upstream: Upstream, transport: AiohttpTransport
) -> None:
    request = get(
        upstream.url("/redirect"),
        Authorization="Bearer secret",
        **{"X-API-Key": "k", "X-Keep": "1"},
    )
    request.sensitive_headers.add("x-api-key")
    request.add_param("to", other_upstream.url("/echo/landed"))
    await transport.send(request, timeout_s=5)
    landed = other_upstream.last.headers
    assert "Authorization" not in landed
    assert "X-API-Key" not in landed
    assert landed["X-Keep"] == "1"


async def test_same_origin_redirect_keeps_credentials(
    upstream: Upstream, transport: AiohttpTransport
) -> None:
    request = get(upstream.url("/redirect?to=/echo/landed"), Authorization="Bearer secret")
    await transport.send(request, timeout_s=5)
    assert upstream.last.headers["Authorization"] == "Bearer secret"


async def test_connections_are_pooled(upstream: Upstream, transport: AiohttpTransport) -> None:
    for _ in range(3):
        await transport.send(get(upstream.url("/echo")), timeout_s=5)
    assert len({r.peer_port for r in upstream.received}) == 1


async def test_cookies_are_not_carried_between_calls(
    upstream: Upstream, transport: AiohttpTransport
) -> None:
    await transport.send(get(upstream.url("/cookie")), timeout_s=5)
    await transport.send(get(upstream.url("/cookie")), timeout_s=5)
    assert "Cookie" not in upstream.last.headers


async def test_closed_transport_refuses(upstream: Upstream) -> None:
    guard = DestinationGuard(allow_private=True)
    transport = AiohttpTransport(guard)
    await transport.send(get(upstream.url("/echo")), timeout_s=5)
    await transport.close()
    with pytest.raises(NetworkError, match="closed"):
        await transport.send(get(upstream.url("/echo")), timeout_s=5)


def test_transport_settings_are_validated() -> None:
    guard = DestinationGuard()
    with pytest.raises(ValueError, match="pool_size"):
        AiohttpTransport(guard, pool_size=0)
    with pytest.raises(ValueError, match="max_response_bytes"):
        AiohttpTransport(guard, max_response_bytes=0)
