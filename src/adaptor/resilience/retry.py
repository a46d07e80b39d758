"""`RetryManager`: run one upstream call again when the policy table says it may help.

    result = await retries.run(
        send, retry_config=config, method="GET", deadline=time.monotonic() + 5,
        refresh_auth=auth.refresh,
    )
    response = result.unwrap()      # the value, or the last error re-raised
    log.retry_count = result.retries

Rules, in the order they are checked after a failed attempt:
- 401 (REFRESH_TOKEN_THEN_RETRY): refresh credentials and retry at once, a single time per run,
  outside the `max_retries` budget (the request was refused, not processed, so this is safe for
  any method).
- An outcome the table does not retry (`Decision.retry` false) is final.
- POST and PATCH are retried only when the caller allows it (the upstream must deduplicate),
  except after a 429: a rate-limited request was not processed.
- At most `max_retries` retries.
- Delay: the upstream's Retry-After (seconds or HTTP-date) when it sent one, plus up to 10%
  jitter, never more than `max_delay_ms`; a Retry-After longer than that ends the run instead,
  because retrying sooner than asked only burns an attempt. Otherwise backoff with full jitter:
  uniform in [0, ceiling], the ceiling growing with the retry number (exponential
  `initial·2^(n-1)`, linear `initial·n`, fixed `initial`) and capped at `max_delay_ms`.
- Never sleep past the absolute `deadline` (the manager's monotonic clock): a retry that could
  only start after it is not attempted.

tenacity is not used: every one of these rules would be a custom stop/wait/retry callback
re-deriving the same classification, and its RetryError would hide the typed upstream error
this loop returns as-is.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from adaptor.domain import HttpMethod, RetryConfig
from adaptor.resilience.policy import Action, Decision, classify_outcome

__all__ = ["RetryEvent", "RetryManager", "RetryResult", "StopReason", "is_idempotent"]

T = TypeVar("T")

# Extra wait on top of a Retry-After, so clients told the same moment do not return together.
_RETRY_AFTER_JITTER = 0.1
_RETRY_AFTER_JITTER_MAX_S = 1.0


class StopReason(StrEnum):
    """Why a run ended."""

    SUCCEEDED = "succeeded"
    NOT_RETRYABLE = "not_retryable"
    NON_IDEMPOTENT = "non_idempotent"
    EXHAUSTED = "exhausted"
    DEADLINE = "deadline"
    RETRY_AFTER_TOO_LONG = "retry_after_too_long"


@dataclass(frozen=True, slots=True)
class RetryResult(Generic[T]):
    """The last attempt's outcome (a value or the exception it raised) and how many retries
    it took. `decision` is the policy table's verdict on that last outcome."""

    outcome: T | BaseException
    retries: int
    decision: Decision
    stop_reason: StopReason

    @property
    def succeeded(self) -> bool:
        """Whether the last outcome is one the table calls a success."""
        return self.stop_reason is StopReason.SUCCEEDED

    @property
    def error(self) -> BaseException | None:
        """The exception the last attempt raised, if it raised."""
        return self.outcome if isinstance(self.outcome, BaseException) else None

    def unwrap(self) -> T:
        """The last attempt's value, or its exception re-raised."""
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """Reported before each retry (for metrics and logs)."""

    retry_number: int
    delay_s: float
    decision: Decision


def is_idempotent(method: str | HttpMethod) -> bool:
    """Whether repeating `method` is safe by HTTP semantics; unknown methods are not."""
    try:
        return HttpMethod(str(method).upper()).idempotent
    except ValueError:
        return False


class RetryManager:
    """Runs an attempt function under a `RetryConfig` (see the module docstring for the rules).

    `clock` (monotonic seconds, the clock deadlines are read on), `sleep` and `random` are
    injectable for tests; `on_retry` hears about every retry before its delay.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        random: Callable[[], float] = random.random,
        on_retry: Callable[[RetryEvent], None] | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._on_retry = on_retry

    @staticmethod
    def backoff_ceiling_s(config: RetryConfig, retry_number: int) -> float:
        """The most the `retry_number`-th retry (from 1) waits under `config`'s strategy."""
        initial = config.initial_delay_ms / 1000
        if config.backoff_strategy == "exponential":
            # Bound the exponent: 2**60 seconds is already past any max_delay_ms.
            ceiling = initial * 2.0 ** min(retry_number - 1, 60)
        elif config.backoff_strategy == "linear":
            ceiling = initial * retry_number
        else:
            ceiling = initial
        return min(ceiling, config.max_delay_ms / 1000)

    def backoff_delay_s(self, config: RetryConfig, retry_number: int) -> float:
        """A full-jitter delay for the `retry_number`-th retry: uniform in [0, ceiling]."""
        return self._random() * self.backoff_ceiling_s(config, retry_number)

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        retry_config: RetryConfig,
        method: str | HttpMethod = HttpMethod.GET,
        allow_non_idempotent: bool = False,
        deadline: float | None = None,
        classify: Callable[[T | BaseException], Decision] | None = None,
        refresh_auth: Callable[[], Awaitable[None]] | None = None,
    ) -> RetryResult[T]:
        """Call `attempt` until its outcome is final; never raises what `attempt` raises
        (an `Exception`), returning it in the result instead. Cancellation propagates.

        `classify` defaults to the policy table (`classify_outcome`); `refresh_auth`, when
        given, is awaited once before retrying a 401.
        """
        may_repeat = allow_non_idempotent or is_idempotent(method)
        retries = 0
        backoffs = 0
        refreshed = False
        while True:
            outcome: T | BaseException
            try:
                outcome = await attempt()
            except Exception as exc:
                outcome = exc
            decision = (
                classify(outcome)
                if classify is not None
                else classify_outcome(outcome, retry_config)
            )
            if decision.action is Action.SUCCESS:
                return RetryResult(outcome, retries, decision, StopReason.SUCCEEDED)

            if decision.action is Action.REFRESH_TOKEN_THEN_RETRY:
                if refreshed or refresh_auth is None:
                    return RetryResult(outcome, retries, decision, StopReason.NOT_RETRYABLE)
                if deadline is not None and self._clock() >= deadline:
                    return RetryResult(outcome, retries, decision, StopReason.DEADLINE)
                refreshed = True
                retries += 1
                self._report(retries, 0.0, decision)
                await refresh_auth()
                continue

            stop, delay = self._plan(
                decision, retry_config, backoffs + 1, may_repeat=may_repeat, deadline=deadline
            )
            if stop is not None:
                return RetryResult(outcome, retries, decision, stop)
            backoffs += 1
            retries += 1
            self._report(retries, delay, decision)
            if delay > 0:
                await self._sleep(delay)

    def _plan(
        self,
        decision: Decision,
        config: RetryConfig,
        retry_number: int,
        *,
        may_repeat: bool,
        deadline: float | None,
    ) -> tuple[StopReason | None, float]:
        """Whether to retry after `decision`, and after how long."""
        if not decision.retry:
            return StopReason.NOT_RETRYABLE, 0.0
        if not may_repeat and decision.action is not Action.RATE_LIMITED:
            return StopReason.NON_IDEMPOTENT, 0.0
        if retry_number > config.max_retries:
            return StopReason.EXHAUSTED, 0.0
        cap = config.max_delay_ms / 1000
        if decision.retry_after_s is not None:
            if decision.retry_after_s > cap:
                return StopReason.RETRY_AFTER_TOO_LONG, 0.0
            jitter = min(decision.retry_after_s * _RETRY_AFTER_JITTER, _RETRY_AFTER_JITTER_MAX_S)
            delay = min(decision.retry_after_s + self._random() * jitter, cap)
        else:
            delay = self.backoff_delay_s(config, retry_number)
        if deadline is not None and self._clock() + delay >= deadline:
            return StopReason.DEADLINE, 0.0
        return None, delay

    def _report(self, retry_number: int, delay: float, decision: Decision) -> None:
        if self._on_retry is not None:
            self._on_retry(RetryEvent(retry_number, delay, decision))
