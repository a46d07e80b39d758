"""Destination guard: outbound calls go to public addresses over http(s) only.

An integration's base URL is tenant input, so without a guard the service would fetch cloud
metadata (169.254.169.254), reach databases on the private network, or loop back to itself.
The guard is enforced at three points so that DNS tricks cannot slip past it:

1. `check_url_static` on every URL before it is requested (first hop and each redirect): the
   scheme must be http or https, and an IP-literal host is checked directly (aiohttp does not
   consult the resolver for IP literals).
2. `resolver()` gives an `aiohttp.abc.AbstractResolver` for the connector: every address a
   hostname resolves to is checked, and aiohttp connects only to what the resolver returned,
   so a name that resolves to a public address for a pre-check and to a private one at connect
   time (DNS rebinding) is still refused.
3. `check_url` does both for callers that want an answer without sending anything.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from adaptor.protocols.errors import BlockedDestination, NetworkError

__all__ = ["DestinationGuard", "GuardedResolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_ALLOWED_SCHEMES = frozenset({"http", "https"})
# NAT64 well-known prefix (RFC 6052): the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _classify(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast address, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = _classify(embedded)
            return f"{reason} (embedded in IPv6)" if reason else None
        if address.teredo is not None:
            return "a Teredo tunnel address"
        if address.is_site_local:
            return "a site-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a non-public address"
    return None


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_legacy_ipv4(host: str) -> bool:
    """Numeric IPv4 forms the C library accepts but that are not dotted quads (127.1, 0x7f.1)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return True


class DestinationGuard:
    """Refuses non-public destinations and non-http(s) schemes with `BlockedDestination`.

    Non-public means loopback, private, link-local (cloud metadata lives there), multicast,
    reserved, unspecified (0.0.0.0, ::) or otherwise not globally routable, for IPv4 and IPv6,
    including IPv4 addresses embedded in IPv6 (::ffff:127.0.0.1, 6to4, NAT64).

    `allow_private=True` turns the address check off (tests, on-premises installs); the scheme
    check stays. `allowed_networks` opens specific networks (e.g. one on-premises subnet) while
    everything else stays refused. `resolver` is the DNS resolver used for hostnames (the
    system resolver in a thread by default); the guard owns it and closes it in `close()`.
    """

    def __init__(
        self,
        allow_private: bool = False,
        *,
        allowed_networks: Iterable[str] = (),
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.allowed_networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in allowed_networks
        )
        self._resolver = resolver
        # host -> the refusal of an IP-literal or legacy numeric host (None: not refused), so
        # the per-request check of an unchanged URL host costs one dict lookup.
        self._host_verdicts: dict[str, str | None] = {}

    def __repr__(self) -> str:
        networks = [str(network) for network in self.allowed_networks]
        return f"DestinationGuard(allow_private={self.allow_private}, allowed_networks={networks})"

    def _inner_resolver(self) -> AbstractResolver:
        if self._resolver is None:
            self._resolver = ThreadedResolver()
        return self._resolver

    def refusal(self, address: str) -> str | None:
        """Why a connection to the IP address `address` is refused, or None when allowed."""
        parsed = _parse_ip(address)
        if parsed is None:
            return "not an IP address"
        if self.allow_private:
            return None
        if any(parsed.version == net.version and parsed in net for net in self.allowed_networks):
            return None
        return _classify(parsed)

    def check_address(self, address: str, *, host: str | None = None) -> None:
        """Raise `BlockedDestination` unless a connection to IP `address` is allowed."""
        reason = self.refusal(address)
        if reason is None:
            return
        shown = address if host is None or host == address else f"{host} ({address})"
        raise BlockedDestination(
            f"destination {shown} is refused: {reason}; only public addresses may be called"
        )

    def check_url_static(self, url: str) -> str:
        """Check what can be checked without DNS: scheme, and the host if it is an IP literal.

        Returns the host. Hostnames are checked by the resolver at connection time.
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname
        except ValueError as exc:
            raise BlockedDestination("destination URL is not a valid URL") from exc
        scheme = parts.scheme.lower()
        if scheme not in _ALLOWED_SCHEMES:
            raise BlockedDestination(
                f"scheme {scheme or '(none)'!r} is refused; only http and https may be called"
            )
        if not host:
            raise BlockedDestination("destination URL has no host")
        verdicts = self._host_verdicts
        if host in verdicts:
            refused = verdicts[host]
        else:
            refused = self._static_refusal(host)
            if len(verdicts) >= 4096:
                verdicts.clear()
            verdicts[host] = refused
        if refused is not None:
            raise BlockedDestination(refused)
        return host

    def _static_refusal(self, host: str) -> str | None:
        if _parse_ip(host) is not None:
            reason = self.refusal(host)
            if reason is None:
                return None
            return f"destination {host} is refused: {reason}; only public addresses may be called"
        if _is_legacy_ipv4(host):
            return f"destination {host} is refused: a non-canonical numeric IPv4 address"
        return None

    async def check_url(self, url: str) -> None:
        """Check scheme and every address the host resolves to; send nothing."""
        host = self.check_url_static(url)
        if _parse_ip(host) is not None:
            return
        for result in await self._resolve(host, 0):
            self.check_address(result["host"], host=host)

    async def allowed_addresses(self, host: str, port: int = 0) -> list[str]:
        """The addresses `host` resolves to, each checked; for clients other than aiohttp
        (database drivers, brokers), which then connect to one of these, never to the name,
        so a name cannot resolve to another address between the check and the connect."""
        if _parse_ip(host) is not None:
            self.check_address(host)
            return [host]
        if _is_legacy_ipv4(host):
            raise BlockedDestination(
                f"destination {host} is refused: a non-canonical numeric IPv4 address"
            )
        addresses = [result["host"] for result in await self._resolve(host, port)]
        for address in addresses:
            self.check_address(address, host=host)
        return addresses

    async def _resolve(self, host: str, port: int) -> list[ResolveResult]:
        try:
            return await self._inner_resolver().resolve(host, port, family=socket.AF_UNSPEC)
        except OSError as exc:
            raise NetworkError(f"could not resolve host {host}") from exc

    def resolver(self) -> GuardedResolver:
        """A resolver for `aiohttp.TCPConnector` that refuses non-public resolved addresses."""
        return GuardedResolver(self)

    async def close(self) -> None:
        """Release the DNS resolver."""
        if self._resolver is not None:
            await self._resolver.close()


class GuardedResolver(AbstractResolver):
    """Resolves through the guard's resolver and refuses if any address is not allowed.

    aiohttp connects only to addresses the connector's resolver returned, so checking here
    checks the address actually connected to. A hostname with any refused address is refused
    as a whole: a public name has no business resolving to the internal network.
    """

    def __init__(self, guard: DestinationGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._guard._inner_resolver().resolve(host, port, family=family)
        for result in results:
            self._guard.check_address(result["host"], host=host)
        return results

    async def close(self) -> None:
        """The guard owns the inner resolver; nothing to release here."""
