"""RESTIntegration.handle_rate_limiting: how long the upstream asked us to wait."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from adaptor.auth_handlers import NoAuthHandler
from adaptor.domain import IntegrationSpec, IntegrationType
from adaptor.protocols import RawResponse, RESTIntegration

NOW = 1_800_000_000.0


class NoTransport:
    async def send(self, *args: object, **kwargs: object) -> RawResponse:
        raise AssertionError("no request expected")

    async def close(self) -> None:
        return None


def integration(cap: float = 120.0) -> RESTIntegration:
    config = IntegrationSpec(
        name="x", type=IntegrationType.REST_API, category="test", base_url="https://a.example"
    )
    return RESTIntegration(
        config,
        NoAuthHandler(),
        NoTransport(),
        max_retry_after_s=cap,
        clock=lambda: NOW,
    )


def response(status: int, **headers: str) -> RawResponse:
    lowered = {name.lower().replace("_", "-"): value for name, value in headers.items()}
    return RawResponse(
        status=status, headers=lowered, body=b"", url="https://a.example", elapsed_ms=1
    )


def test_retry_after_seconds() -> None:
    assert integration().handle_rate_limiting(response(429, retry_after="12"), 0) == 12


def test_retry_after_http_date() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW + 30, tz=UTC), usegmt=True)
    assert integration().handle_rate_limiting(response(429, retry_after=when), 0) == 30


def test_retry_after_in_the_past_is_zero() -> None:
    when = format_datetime(datetime.fromtimestamp(NOW - 30, tz=UTC), usegmt=True)
    assert integration().handle_rate_limiting(response(503, retry_after=when), 0) == 0


def test_reset_as_epoch_timestamp() -> None:
    headers = {"x_ratelimit_reset": str(int(NOW + 45))}
    assert integration().handle_rate_limiting(response(429, **headers), 0) == 45


def test_reset_as_delay() -> None:
    assert integration().handle_rate_limiting(response(429, ratelimit_reset="9"), 0) == 9


def test_reset_counts_only_when_limited() -> None:
    assert integration().handle_rate_limiting(response(500, x_ratelimit_reset="9"), 0) is None


def test_429_without_a_hint_backs_off_by_attempt() -> None:
    assert integration().handle_rate_limiting(response(429), 0) == 1
    assert integration().handle_rate_limiting(response(429), 3) == 8


def test_wait_is_capped() -> None:
    assert integration(cap=60).handle_rate_limiting(response(429, retry_after="3600"), 0) == 60


@pytest.mark.parametrize("attempt", range(3))
def test_the_wait_is_exactly_what_was_asked(attempt: int) -> None:
    """No jitter here: this is what the caller is told (`retry_after`); the retry loop adds
    jitter to its own sleep."""
    assert integration().handle_rate_limiting(response(429, retry_after="7"), attempt) == 7


@pytest.mark.parametrize("status", [200, 302, 404])
def test_nothing_to_wait_for(status: int) -> None:
    assert integration().handle_rate_limiting(response(status), 0) is None


def test_unparseable_retry_after_falls_back() -> None:
    assert integration().handle_rate_limiting(response(429, retry_after="soon"), 1) == 2
