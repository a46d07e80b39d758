"""One table that says what an upstream outcome means: retry it, fail, wait for a rate limit,
or refresh credentials and retry, and whether it is evidence the upstream is down.

`RetryManager` and `CircuitBreaker` both read it, so "what is retryable" and "what trips the
breaker" cannot drift apart.

    outcome                         action                     retried when          breaker
    ------------------------------  -------------------------  --------------------  -------
    status < 400                    SUCCESS                    never                 success
    401                             REFRESH_TOKEN_THEN_RETRY   once, after refresh   success
    403                             FAIL                       never                 success
    408                             RETRY / FAIL               in retry_on_status    failure
    429                             RATE_LIMITED               in retry_on_status    failure
    other 4xx                       RETRY / FAIL               in retry_on_status    success
    5xx                             RETRY / FAIL               in retry_on_status    failure
    "timeout"                       RETRY / FAIL               in retry_on_errors    failure
    "connection_error"              RETRY / FAIL               in retry_on_errors    failure
    anything else                   FAIL                       never                 ignored

A 4xx (other than 408/429) proves the upstream is up and answering, so for the breaker it is a
success. "ignored" outcomes (our own bugs, a blocked destination, a request we could not build)
say nothing about the upstream's health.

Outcomes are recognised by duck typing, so this module needs no adapter's error classes: an
exception or result with an int `status_code`, an error `code` (`ErrorCode`), an error `kind`
("timeout" / "connection_error"), or Python's own `TimeoutError` / `ConnectionError`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Literal

from adaptor.domain import ErrorCode, RetryConfig

__all__ = [
    "Action",
    "BreakerVerdict",
    "Decision",
    "ErrorKind",
    "classify_error_kind",
    "classify_outcome",
    "classify_status",
    "error_kind_of",
    "parse_retry_after",
    "retry_after_of",
]

ErrorKind = Literal["timeout", "connection_error"]


class Action(StrEnum):
    """What to do about one attempt's outcome."""

    SUCCESS = "success"
    RETRY = "retry"
    FAIL = "fail"
    RATE_LIMITED = "rate_limited"
    REFRESH_TOKEN_THEN_RETRY = "refresh_token_then_retry"


class BreakerVerdict(StrEnum):
    """What one outcome tells the circuit breaker about the upstream's health."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Decision:
    """The table's answer for one outcome.

    `retry` is whether the configuration allows another attempt for this outcome (the retry
    manager still checks the method, the attempt budget and the deadline). `retry_after_s` is
    how long the upstream asked us to wait, when it said.
    """

    action: Action
    retry: bool
    breaker: BreakerVerdict
    error_code: ErrorCode | None = None
    retry_after_s: float | None = None

    @property
    def counts_as_failure(self) -> bool:
        """Whether the breaker counts this outcome as a failure of the upstream."""
        return self.breaker is BreakerVerdict.FAILURE


_SUCCESS = Decision(Action.SUCCESS, retry=False, breaker=BreakerVerdict.SUCCESS)
_UNKNOWN = Decision(Action.FAIL, retry=False, breaker=BreakerVerdict.IGNORE)


def classify_status(status: int, config: RetryConfig) -> Decision:
    """The table's row for an HTTP status."""
    if status < 400:
        return _SUCCESS
    retryable = status in config.retry_on_status
    if status == 401:
        return Decision(
            Action.REFRESH_TOKEN_THEN_RETRY,
            retry=True,
            breaker=BreakerVerdict.SUCCESS,
            error_code=ErrorCode.AUTH_FAILED,
        )
    if status == 403:
        return Decision(
            Action.FAIL,
            retry=False,
            breaker=BreakerVerdict.SUCCESS,
            error_code=ErrorCode.AUTH_FAILED,
        )
    if status == 429:
        return Decision(
            Action.RATE_LIMITED,
            retry=retryable,
            breaker=BreakerVerdict.FAILURE,
            error_code=ErrorCode.RATE_LIMITED,
        )
    upstream_fault = status >= 500 or status == 408
    return Decision(
        Action.RETRY if retryable else Action.FAIL,
        retry=retryable,
        breaker=BreakerVerdict.FAILURE if upstream_fault else BreakerVerdict.SUCCESS,
        error_code=ErrorCode.TIMEOUT if status == 408 else ErrorCode.UPSTREAM_ERROR,
    )


def classify_error_kind(kind: str, config: RetryConfig) -> Decision:
    """The table's row for a failure without an HTTP answer ("timeout", "connection_error")."""
    if kind not in ("timeout", "connection_error"):
        return _UNKNOWN
    retryable = kind in config.retry_on_errors
    return Decision(
        Action.RETRY if retryable else Action.FAIL,
        retry=retryable,
        breaker=BreakerVerdict.FAILURE,
        error_code=ErrorCode.TIMEOUT if kind == "timeout" else ErrorCode.NETWORK_ERROR,
    )


# Error codes that settle the row on their own, whatever the status (e.g. a 403 that is an
# exhausted quota is rate limiting; a 401 the adapter already refreshed for is final).
_BY_CODE: dict[ErrorCode, Decision] = {
    ErrorCode.AUTH_FAILED: Decision(
        Action.FAIL, retry=False, breaker=BreakerVerdict.SUCCESS, error_code=ErrorCode.AUTH_FAILED
    ),
    ErrorCode.BLOCKED_DESTINATION: replace(_UNKNOWN, error_code=ErrorCode.BLOCKED_DESTINATION),
    ErrorCode.MAPPING_ERROR: replace(_UNKNOWN, error_code=ErrorCode.MAPPING_ERROR),
    ErrorCode.CIRCUIT_OPEN: replace(_UNKNOWN, error_code=ErrorCode.CIRCUIT_OPEN),
}


def error_kind_of(error: BaseException) -> ErrorKind | None:
    """The error kind ("timeout" / "connection_error") of a failure without an HTTP answer."""
    code = getattr(error, "code", None)
    if code == ErrorCode.TIMEOUT:
        return "timeout"
    if code == ErrorCode.NETWORK_ERROR:
        return "connection_error"
    kind = getattr(error, "kind", None)
    if kind == "timeout":
        return "timeout"
    if kind == "connection_error":
        return "connection_error"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionError):
        return "connection_error"
    return None


def classify_outcome(outcome: object, config: RetryConfig) -> Decision:
    """The table's row for an attempt's outcome: a raised exception or a returned result.

    A result with an int `status_code` (e.g. `IntegrationResponse`) is classified by status;
    one with `success=False` and no status fails; any other result is a success. Retry-After
    is read from `retry_after` or the `headers`.
    """
    if isinstance(outcome, BaseException):
        decision = _classify_error(outcome, config)
    else:
        status = getattr(outcome, "status_code", None)
        if isinstance(status, int):
            decision = classify_status(status, config)
        elif getattr(outcome, "success", None) is False:
            # A failed result with no HTTP status (e.g. a database or queue call): final, and
            # no evidence either way about the upstream's health.
            decision = replace(_UNKNOWN, error_code=ErrorCode.UPSTREAM_ERROR)
        else:
            decision = _SUCCESS
    if decision.action is Action.SUCCESS:
        return decision
    retry_after = retry_after_of(outcome)
    return decision if retry_after is None else replace(decision, retry_after_s=retry_after)


def _classify_error(error: BaseException, config: RetryConfig) -> Decision:
    code = getattr(error, "code", None)
    if isinstance(code, ErrorCode):
        if code in _BY_CODE:
            return _BY_CODE[code]
        if code is ErrorCode.RATE_LIMITED:
            return classify_status(429, config)
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        if status < 400:
            # An error raised about a 2xx/3xx answer (unreadable body, redirect loop): the
            # upstream answered, but this attempt failed and retrying will not change it.
            return Decision(
                Action.FAIL,
                retry=False,
                breaker=BreakerVerdict.SUCCESS,
                error_code=ErrorCode.UPSTREAM_ERROR,
            )
        return classify_status(status, config)
    kind = error_kind_of(error)
    if kind is not None:
        return classify_error_kind(kind, config)
    if isinstance(code, ErrorCode):
        return replace(_UNKNOWN, error_code=code)
    return _UNKNOWN


def retry_after_of(outcome: object, *, now: datetime | None = None) -> float | None:
    """Seconds the outcome asks us to wait: its `retry_after` attribute (seconds or a header
    value) or a `Retry-After` header in its `headers`."""
    value = getattr(outcome, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        return parse_retry_after(value, now=now)
    headers = getattr(outcome, "headers", None)
    if isinstance(headers, Mapping):
        for name, header in headers.items():
            if isinstance(name, str) and name.lower() == "retry-after" and isinstance(header, str):
                return parse_retry_after(header, now=now)
    return None


def parse_retry_after(value: str, *, now: datetime | None = None) -> float | None:
    """A Retry-After header as seconds from now: delay-seconds or an HTTP-date (RFC 9110
    §10.2.3). A date in the past is 0; an unreadable value is None."""
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.fromtimestamp(time.time(), UTC)
    return max(0.0, (when - reference).total_seconds())
