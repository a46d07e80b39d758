"""DestinationGuard: non-public destinations are refused before any connection is made."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from adaptor.protocols import AiohttpTransport, BlockedDestination, PreparedRequest
from adaptor.resilience import DestinationGuard, GuardedResolver

PUBLIC = "93.184.216.34"


class MapResolver(AbstractResolver):
    """Fake DNS: each name maps to addresses, or to a function of the lookup count."""

    def __init__(self, names: dict[str, list[str] | Callable[[int], list[str]]]) -> None:
        self.names = names
        self.lookups: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        entry = self.names[host]
        addresses = entry(len(self.lookups)) if callable(entry) else entry
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        self.closed = True


class NoDNS(MapResolver):
    """Fails the test if anything is resolved: IP literals must be checked without DNS."""

    def __init__(self) -> None:
        super().__init__({})

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        raise AssertionError(f"unexpected DNS lookup of {host}")


TARGET_HITS = web.AppKey("target_hits", list[str])


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    """An upstream on 127.0.0.1 that redirects wherever `?to=` says."""

    async def hop(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": request.query["to"]})

    async def target(request: web.Request) -> web.Response:
        request.app[TARGET_HITS].append(request.host)
        return web.json_response({"reached": True})

    app = web.Application()
    app[TARGET_HITS] = []
    app.router.add_get("/hop", hop)
    app.router.add_get("/target", target)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()


async def send(guard: DestinationGuard, url: str) -> int:
    transport = AiohttpTransport(guard)
    try:
        raw = await transport.send(PreparedRequest(method="GET", url=url), timeout_s=5)
    finally:
        await transport.close()
    return raw.status


NON_PUBLIC = [
    "http://127.0.0.1/",
    "http://127.8.9.10:8080/x",
    "http://[::1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:7f00:1::]/",
    "http://100.64.0.1/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fec0::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "https://192.0.2.1/",
]


@pytest.mark.parametrize("url", NON_PUBLIC)
async def test_non_public_ip_literals_are_refused(url: str) -> None:
    guard = DestinationGuard(resolver=NoDNS())
    with pytest.raises(BlockedDestination) as caught:
        await guard.check_url(url)
    assert caught.value.code == "blocked_destination"


@pytest.mark.parametrize(
    "url", ["http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://017700000001/"]
)
async def test_legacy_numeric_ipv4_forms_are_refused(url: str) -> None:
    with pytest.raises(BlockedDestination, match="non-canonical"):
        await DestinationGuard(resolver=NoDNS()).check_url(url)


@pytest.mark.parametrize(
    "url", ["ftp://files.example.com/", "file:///etc/passwd", "gopher://x.example/", "//x.example/"]
)
async def test_only_http_and_https_schemes(url: str) -> None:
    with pytest.raises(BlockedDestination, match="scheme"):
        await DestinationGuard(allow_private=True, resolver=NoDNS()).check_url(url)


async def test_public_ip_literal_is_allowed() -> None:
    await DestinationGuard(resolver=NoDNS()).check_url(f"https://{PUBLIC}/x")
    await DestinationGuard(resolver=NoDNS()).check_url("https://[2606:4700::1111]/x")


async def test_hostname_resolving_to_loopback_is_refused() -> None:
    guard = DestinationGuard()
    try:
        with pytest.raises(BlockedDestination, match=r"localhost \((127\.0\.0\.1|::1)\)"):
            await guard.check_url("http://localhost:8004/health")
    finally:
        await guard.close()


async def test_hostname_resolving_to_a_public_address_is_allowed() -> None:
    resolver = MapResolver({"api.example.com": [PUBLIC]})
    await DestinationGuard(resolver=resolver).check_url("https://api.example.com/v1")
    assert resolver.lookups == ["api.example.com"]


async def test_hostname_with_any_private_address_is_refused() -> None:
    resolver = MapResolver({"mixed.example": [PUBLIC, "10.1.2.3"]})
    with pytest.raises(BlockedDestination, match=r"mixed\.example \(10\.1\.2\.3\)"):
        await DestinationGuard(resolver=resolver).check_url("https://mixed.example/")


async def test_allow_private_lets_loopback_through() -> None:
    guard = DestinationGuard(allow_private=True, resolver=MapResolver({"db.local": ["10.0.0.7"]}))
    await guard.check_url("http://127.0.0.1:8004/")
    await guard.check_url("http://[::1]/")
    await guard.check_url("http://db.local/")


async def test_allowed_networks_open_only_themselves() -> None:
    guard = DestinationGuard(allowed_networks=["10.20.0.0/16"], resolver=NoDNS())
    await guard.check_url("http://10.20.3.4/")
    with pytest.raises(BlockedDestination):
        await guard.check_url("http://10.21.0.1/")
    with pytest.raises(BlockedDestination):
        await guard.check_url("http://169.254.169.254/")


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/"])
async def test_transport_refuses_before_connecting(url: str, connections: list[str]) -> None:
    with pytest.raises(BlockedDestination):
        await send(DestinationGuard(resolver=NoDNS()), url)
    assert connections == []


async def test_transport_checks_the_resolved_address(connections: list[str]) -> None:
    resolver = MapResolver({"internal.example": ["10.0.0.5"]})
    with pytest.raises(BlockedDestination, match=r"internal\.example \(10\.0\.0\.5\)"):
        await send(DestinationGuard(resolver=resolver), "http://internal.example/")
    assert connections == []


async def test_dns_rebinding_is_caught_at_connect_time(connections: list[str]) -> None:
    def rebinding(lookup: int) -> list[str]:
        return [PUBLIC] if lookup == 1 else ["127.0.0.1"]

    resolver = MapResolver({"rebind.example": rebinding})
    guard = DestinationGuard(resolver=resolver)
    await guard.check_url("http://rebind.example/")
    with pytest.raises(BlockedDestination, match=r"rebind\.example \(127\.0\.0\.1\)"):
        await send(guard, "http://rebind.example/")
    assert resolver.lookups == ["rebind.example", "rebind.example"]
    assert connections == []


def redirect_guard(names: dict[str, Any] | None = None) -> DestinationGuard:
    """Allows only 127.0.0.1 (where the test server listens), nothing else private."""
    return DestinationGuard(allowed_networks=["127.0.0.1/32"], resolver=MapResolver(names or {}))


async def test_redirect_to_a_public_name_is_followed(server: TestServer) -> None:
    port = server.port
    guard = redirect_guard({"public.example": ["127.0.0.1"]})
    status = await send(
        guard, f"http://127.0.0.1:{port}/hop?to=http://public.example:{port}/target"
    )
    assert status == 200
    assert server.app[TARGET_HITS] == [f"public.example:{port}"]


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.2:{port}/target",
        "http://internal.example:{port}/target",
        "http://[::ffff:127.0.0.2]:{port}/target",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
async def test_redirect_hops_are_checked(
    location: str, server: TestServer, connections: list[str]
) -> None:
    port = server.port
    guard = redirect_guard({"internal.example": ["127.0.0.2"]})
    to = location.format(port=port)
    with pytest.raises(BlockedDestination):
        await send(guard, f"http://127.0.0.1:{port}/hop?to={to}")
    assert server.app[TARGET_HITS] == []
    assert set(connections) == {"127.0.0.1"}


async def test_guarded_resolver_returns_allowed_addresses() -> None:
    guard = DestinationGuard(resolver=MapResolver({"api.example.com": [PUBLIC]}))
    resolver = guard.resolver()
    assert isinstance(resolver, GuardedResolver)
    results = await resolver.resolve("api.example.com", 443)
    assert [r["host"] for r in results] == [PUBLIC]


async def test_close_releases_the_resolver() -> None:
    inner = MapResolver({})
    guard = DestinationGuard(resolver=inner)
    await guard.resolver().close()
    assert not inner.closed
    await guard.close()
    assert inner.closed


def test_refusal_explains_itself() -> None:
    guard = DestinationGuard()
    reasons: Iterable[str | None] = [
        guard.refusal(address) for address in ("127.0.0.1", "169.254.169.254", "10.0.0.1")
    ]
    assert list(reasons) == ["a loopback address", "a link-local address", "a private address"]
    assert guard.refusal(PUBLIC) is None
    assert guard.refusal("not-an-ip") == "not an IP address"
