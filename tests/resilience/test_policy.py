"""The status/error → action table that retry and the circuit breaker share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from adaptor.domain import ErrorCode, IntegrationResponse, RetryConfig
from adaptor.resilience.policy import (
    Action,
    BreakerVerdict,
    classify_error_kind,
    classify_outcome,
    classify_status,
    error_kind_of,
    parse_retry_after,
    retry_after_of,
)

DEFAULT = RetryConfig()


@pytest.mark.parametrize(
    ("status", "action", "retry", "breaker"),
    [
        (200, Action.SUCCESS, False, BreakerVerdict.SUCCESS),
        (204, Action.SUCCESS, False, BreakerVerdict.SUCCESS),
        (304, Action.SUCCESS, False, BreakerVerdict.SUCCESS),
        (400, Action.FAIL, False, BreakerVerdict.SUCCESS),
        (401, Action.REFRESH_TOKEN_THEN_RETRY, True, BreakerVerdict.SUCCESS),
        (403, Action.FAIL, False, BreakerVerdict.SUCCESS),
        (404, Action.FAIL, False, BreakerVerdict.SUCCESS),
        (408, Action.RETRY, True, BreakerVerdict.FAILURE),
        (409, Action.FAIL, False, BreakerVerdict.SUCCESS),
        (422, Action.FAIL, False, BreakerVerdict.SUCCESS),
        (429, Action.RATE_LIMITED, True, BreakerVerdict.FAILURE),
        (500, Action.RETRY, True, BreakerVerdict.FAILURE),
        (501, Action.FAIL, False, BreakerVerdict.FAILURE),
        (502, Action.RETRY, True, BreakerVerdict.FAILURE),
        (503, Action.RETRY, True, BreakerVerdict.FAILURE),
        (504, Action.RETRY, True, BreakerVerdict.FAILURE),
        (599, Action.FAIL, False, BreakerVerdict.FAILURE),
    ],
)
def test_status_table_with_default_config(
    status: int, action: Action, retry: bool, breaker: BreakerVerdict
) -> None:
    decision = classify_status(status, DEFAULT)
    assert (decision.action, decision.retry, decision.breaker) == (action, retry, breaker)


def test_only_5xx_408_and_429_count_as_breaker_failures() -> None:
    failing = {s for s in range(100, 600) if classify_status(s, DEFAULT).counts_as_failure}
    assert failing == {408, 429} | set(range(500, 600))


def test_retry_on_status_drives_which_statuses_retry() -> None:
    config = RetryConfig(retry_on_status=[409, 503])
    assert classify_status(409, config).action is Action.RETRY
    assert classify_status(409, config).counts_as_failure is False
    assert classify_status(500, config).action is Action.FAIL
    assert classify_status(500, config).counts_as_failure is True
    rate_limited = classify_status(429, config)
    assert rate_limited.action is Action.RATE_LIMITED
    assert rate_limited.retry is False


@pytest.mark.parametrize("kind", ["timeout", "connection_error"])
def test_error_kinds_retry_when_configured_and_always_count_as_failures(kind: str) -> None:
    assert classify_error_kind(kind, DEFAULT).action is Action.RETRY
    assert classify_error_kind(kind, DEFAULT).counts_as_failure
    off = classify_error_kind(kind, RetryConfig(retry_on_errors=[]))
    assert off.action is Action.FAIL
    assert off.retry is False
    assert off.counts_as_failure


def test_error_kind_codes() -> None:
    assert classify_error_kind("timeout", DEFAULT).error_code is ErrorCode.TIMEOUT
    assert classify_error_kind("connection_error", DEFAULT).error_code is ErrorCode.NETWORK_ERROR


def test_unknown_error_kind_fails_and_is_ignored_by_the_breaker() -> None:
    decision = classify_error_kind("cosmic_ray", DEFAULT)
    assert decision.action is Action.FAIL
    assert decision.breaker is BreakerVerdict.IGNORE


# -- outcomes recognised by duck typing -----------------------------------------------------


class Failure(Exception):
    def __init__(
        self,
        *,
        status_code: int | None = None,
        code: ErrorCode | None = None,
        kind: str | None = None,
        retry_after: float | str | None = None,
    ) -> None:
        super().__init__("upstream failure")
        self.status_code = status_code
        self.retry_after = retry_after
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind


def test_exception_with_status_code_is_classified_by_status() -> None:
    assert classify_outcome(Failure(status_code=503), DEFAULT).action is Action.RETRY
    assert classify_outcome(Failure(status_code=404), DEFAULT).action is Action.FAIL


def test_exception_kind_attribute() -> None:
    assert classify_outcome(Failure(kind="timeout"), DEFAULT).error_code is ErrorCode.TIMEOUT


def test_builtin_timeouts_and_connection_errors() -> None:
    assert error_kind_of(TimeoutError()) == "timeout"
    assert error_kind_of(ConnectionRefusedError()) == "connection_error"
    assert classify_outcome(ConnectionResetError(), DEFAULT).action is Action.RETRY


def test_error_codes_of_the_upstream_error_tree() -> None:
    timeout = classify_outcome(Failure(code=ErrorCode.TIMEOUT), DEFAULT)
    assert (timeout.action, timeout.breaker) == (Action.RETRY, BreakerVerdict.FAILURE)
    network = classify_outcome(Failure(code=ErrorCode.NETWORK_ERROR), DEFAULT)
    assert network.error_code is ErrorCode.NETWORK_ERROR
    # A 403 that the adapter identified as an exhausted quota is rate limiting.
    quota = classify_outcome(Failure(code=ErrorCode.RATE_LIMITED, status_code=403), DEFAULT)
    assert quota.action is Action.RATE_LIMITED
    # A 401 the adapter already refreshed for is final.
    auth = classify_outcome(Failure(code=ErrorCode.AUTH_FAILED, status_code=401), DEFAULT)
    assert (auth.action, auth.retry) == (Action.FAIL, False)
    blocked = classify_outcome(Failure(code=ErrorCode.BLOCKED_DESTINATION), DEFAULT)
    assert (blocked.action, blocked.breaker) == (Action.FAIL, BreakerVerdict.IGNORE)
    malformed = classify_outcome(Failure(code=ErrorCode.UPSTREAM_ERROR), DEFAULT)
    assert (malformed.action, malformed.retry) == (Action.FAIL, False)


def test_our_own_bugs_are_not_retried_and_do_not_trip_the_breaker() -> None:
    decision = classify_outcome(KeyError("oops"), DEFAULT)
    assert (decision.action, decision.retry) == (Action.FAIL, False)
    assert decision.breaker is BreakerVerdict.IGNORE


def test_results_are_classified_by_their_status_code() -> None:
    ok = IntegrationResponse(success=True, status_code=200)
    busy = IntegrationResponse(success=False, status_code=503, headers={"Retry-After": "7"})
    assert classify_outcome(ok, DEFAULT).action is Action.SUCCESS
    decision = classify_outcome(busy, DEFAULT)
    assert decision.action is Action.RETRY
    assert decision.retry_after_s == 7
    assert classify_outcome({"anything": "else"}, DEFAULT).action is Action.SUCCESS


def test_a_failed_result_without_status_is_final_and_ignored_by_the_breaker() -> None:
    failed = IntegrationResponse(success=False, error="query failed")
    decision = classify_outcome(failed, DEFAULT)
    assert (decision.action, decision.retry) == (Action.FAIL, False)
    assert decision.breaker is BreakerVerdict.IGNORE


# -- Retry-After ----------------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0


def test_retry_after_as_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(header, now=now) == 90
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0


def test_unreadable_retry_after_is_none() -> None:
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("inf") is None


def test_retry_after_is_read_from_attribute_or_headers() -> None:
    assert retry_after_of(Failure(status_code=429, retry_after=3.0)) == 3.0
    assert retry_after_of(Failure(status_code=429, retry_after="4")) == 4.0
    assert retry_after_of(IntegrationResponse(success=False, headers={"retry-after": "5"})) == 5
    assert retry_after_of(Failure(status_code=429)) is None


def test_classified_outcome_carries_retry_after() -> None:
    decision = classify_outcome(Failure(status_code=429, retry_after=2.5), DEFAULT)
    assert decision.retry_after_s == 2.5
