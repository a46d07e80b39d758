"""What the adapters that hold their own connections share (databases, files, brokers).

They have no HTTP transport to enforce the destination guard and the deadline for them, so each
asks this module for: the address to connect to (`guarded_address`: resolved once and checked
by the guard, then connected to by address, never by name), how long an attempt may still take
(`attempt_seconds`), and a lazily opened, closable resource per integration (`LazyResource`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

from adaptor.domain import AuthConfig, AuthType, IntegrationSpec
from adaptor.protocols.errors import NetworkError, UpstreamTimeout
from adaptor.resilience.guard import DestinationGuard

__all__ = [
    "LazyResource",
    "attempt_seconds",
    "auth_problems",
    "basic_credentials",
    "guarded_address",
    "redact_values",
    "url_problems",
]

T = TypeVar("T")

Problem = tuple[Sequence[str | int], str]


def attempt_seconds(timeout_ms: int | None, deadline: float | None, default_ms: int) -> float:
    """The seconds this attempt may take: its timeout, cut short by the call's deadline.

    Raises `UpstreamTimeout` when the deadline has already passed.
    """
    seconds = (timeout_ms or default_ms) / 1000
    if deadline is not None:
        seconds = min(seconds, deadline - time.monotonic())
    if seconds <= 0:
        raise UpstreamTimeout("the deadline passed before the call could start")
    return seconds


async def guarded_address(guard: DestinationGuard, host: str, port: int) -> str:
    """The address to connect to for `host`: the first the guard allows (it refuses the host
    with `BlockedDestination` if any address it resolves to is not allowed)."""
    return (await guard.allowed_addresses(host, port))[0]


def url_problems(
    spec: IntegrationSpec, schemes: dict[str, int | None], *, needs_host: bool = True
) -> tuple[SplitResult | None, list[Problem]]:
    """The parsed `base_url` when its scheme is one of `schemes` (scheme → default port), or
    the located problems: no URL, another scheme, no host, a password in the URL."""
    if not spec.base_url:
        return None, [(("base_url",), f"is required for {spec.type} integrations")]
    try:
        parts = urlsplit(spec.base_url)
        _ = parts.port
    except ValueError as exc:
        return None, [(("base_url",), f"is not a valid URL: {exc}")]
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        known = ", ".join(f"{name}://" for name in schemes)
        return None, [
            (("base_url",), f"scheme {scheme or '(none)'!r} is not supported here (use {known})")
        ]
    problems: list[Problem] = []
    if needs_host and not parts.hostname:
        problems.append((("base_url",), "has no host"))
    if parts.password:
        problems.append(
            (
                ("base_url",),
                "must not carry a password: put it in auth_config.credentials (basic_auth)",
            )
        )
    return (parts if not problems else None), problems


def basic_credentials(auth: AuthConfig, url: SplitResult) -> tuple[str | None, str | None]:
    """(username, password) from `basic_auth` credentials, else the URL's user name."""
    if auth.type is AuthType.BASIC_AUTH:
        username = auth.credentials.get("username")
        password = auth.credentials.get("password")
        return (
            str(username) if username not in (None, "") else None,
            str(password) if password not in (None, "") else None,
        )
    return (unquote(url.username) if url.username else None), None


def auth_problems(spec: IntegrationSpec, allowed: tuple[AuthType, ...]) -> list[Problem]:
    """A problem when the integration's auth type is not one of `allowed`."""
    if spec.auth_config.type in allowed:
        return []
    names = " or ".join(str(t) for t in allowed)
    return [
        (
            ("auth_config", "type"),
            f"auth type {str(spec.auth_config.type)!r} cannot be used by {spec.type} "
            f"integrations (use {names})",
        )
    ]


def redact_values(message: str, values: list[object]) -> str:
    """`message` with every bound parameter value in it replaced by `***`, so a database's
    error text (`invalid input syntax for type integer: "abc"`) carries no input."""
    texts = sorted(
        {str(value) for value in values if value is not None and str(value) != ""},
        key=len,
        reverse=True,
    )
    for text in texts:  # whole values only: "Dup" is redacted, "Duplicate entry" is not
        if len(text) >= 3:
            message = re.sub(rf"(?<![\w]){re.escape(text)}(?![\w])", "***", message)
        else:  # a short value only where the database quoted it ('1', "ab")
            message = re.sub(rf"(['\"]){re.escape(text)}\1", r"\1***\1", message)
    return message


class LazyResource(Generic[T]):
    """One resource (a pool, a client) per integration, opened on first use and closed once.

    Concurrent first uses share one opening; a failed opening is not kept, so the next call
    tries again (a broker that was down at first).
    """

    def __init__(
        self, open_: Callable[[], Awaitable[T]], close: Callable[[T], Awaitable[None]]
    ) -> None:
        self._open = open_
        self._close = close
        self._value: T | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def current(self) -> T | None:
        """The resource if it is open."""
        return self._value

    async def get(self) -> T:
        if self._value is not None:
            return self._value
        async with self._lock:
            if self._value is None:
                if self._closed:
                    raise NetworkError("the integration changed while this call ran; retry it")
                self._value = await self._open()
            return self._value

    async def reset(self) -> None:
        """Close the resource so the next `get` opens a new one (after it broke)."""
        async with self._lock:
            value, self._value = self._value, None
        if value is not None:
            await self._close(value)

    async def close(self) -> None:
        self._closed = True
        await self.reset()
