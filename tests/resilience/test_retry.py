"""RetryManager: backoff with jitter, Retry-After, idempotency, deadlines, token refresh."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from adaptor.domain import IntegrationResponse, RetryConfig
from adaptor.resilience.policy import Action, BreakerVerdict, Decision, parse_retry_after
from adaptor.resilience.retry import RetryEvent, RetryManager, StopReason, is_idempotent


class FakeTime:
    """A monotonic clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Upstream(Exception):
    def __init__(self, status_code: int, retry_after: float | str | None = None) -> None:
        super().__init__(f"upstream answered {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after


class Timeout(Exception):
    kind = "timeout"


def script(*outcomes: Any) -> tuple[Callable[[], Awaitable[Any]], list[int]]:
    """An attempt function that plays `outcomes` in order (exceptions are raised)."""
    calls: list[int] = []

    async def attempt() -> Any:
        calls.append(1)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt, calls


def manager(time: FakeTime, *, rand: float | None = None, **kwargs: Any) -> RetryManager:
    source = (lambda: rand) if rand is not None else random.Random(7).random
    return RetryManager(clock=time.clock, sleep=time.sleep, random=source, **kwargs)


FAST = RetryConfig(max_retries=3, initial_delay_ms=100, max_delay_ms=1000)


async def test_success_first_time_has_no_retries() -> None:
    time = FakeTime()
    attempt, calls = script("ok")
    result = await manager(time).run(attempt, retry_config=FAST)
    assert (result.unwrap(), result.retries, result.stop_reason) == ("ok", 0, StopReason.SUCCEEDED)
    assert len(calls) == 1
    assert time.sleeps == []


async def test_retries_a_5xx_until_success_and_counts_retries() -> None:
    time = FakeTime()
    attempt, calls = script(Upstream(503), Upstream(502), "ok")
    result = await manager(time).run(attempt, retry_config=FAST)
    assert result.unwrap() == "ok"
    assert result.retries == 2
    assert len(calls) == 3
    assert len(time.sleeps) == 2


async def test_gives_up_after_max_retries_and_returns_the_last_error() -> None:
    time = FakeTime()
    attempt, calls = script(Upstream(500))
    result = await manager(time).run(attempt, retry_config=FAST)
    assert result.stop_reason is StopReason.EXHAUSTED
    assert result.retries == 3
    assert len(calls) == 4
    assert isinstance(result.error, Upstream)
    with pytest.raises(Upstream):
        result.unwrap()


async def test_non_retryable_status_is_final() -> None:
    attempt, calls = script(Upstream(404))
    result = await manager(FakeTime()).run(attempt, retry_config=FAST)
    assert result.stop_reason is StopReason.NOT_RETRYABLE
    assert len(calls) == 1


async def test_returned_results_are_retried_by_status_too() -> None:
    busy = IntegrationResponse(success=False, status_code=503)
    ok = IntegrationResponse(success=True, status_code=200)
    attempt, _ = script(busy, ok)
    result = await manager(FakeTime()).run(attempt, retry_config=FAST)
    assert result.unwrap() is ok
    assert result.retries == 1


async def test_error_kinds_follow_retry_on_errors() -> None:
    attempt, calls = script(Timeout(), "ok")
    assert (await manager(FakeTime()).run(attempt, retry_config=FAST)).unwrap() == "ok"
    attempt, calls = script(Timeout(), "ok")
    no_timeouts = FAST.model_copy(update={"retry_on_errors": ["connection_error"]})
    result = await manager(FakeTime()).run(attempt, retry_config=no_timeouts)
    assert result.stop_reason is StopReason.NOT_RETRYABLE
    assert len(calls) == 1


async def test_zero_max_retries_means_one_attempt() -> None:
    attempt, calls = script(Upstream(503))
    config = FAST.model_copy(update={"max_retries": 0})
    result = await manager(FakeTime()).run(attempt, retry_config=config)
    assert result.stop_reason is StopReason.EXHAUSTED
    assert len(calls) == 1


async def test_cancellation_propagates() -> None:
    attempt, _ = script(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await manager(FakeTime()).run(attempt, retry_config=FAST)


# -- backoff --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "ceilings"),
    [
        ("exponential", [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]),
        ("linear", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
        ("fixed", [0.1] * 6),
    ],
)
def test_backoff_ceilings_grow_by_strategy_and_are_capped(
    strategy: str, ceilings: list[float]
) -> None:
    config = RetryConfig.model_validate(
        {"backoff_strategy": strategy, "initial_delay_ms": 100, "max_delay_ms": 1000}
    )
    got = [RetryManager.backoff_ceiling_s(config, n) for n in range(1, 7)]
    assert got == pytest.approx(ceilings)


def test_huge_retry_numbers_stay_at_the_cap() -> None:
    config = RetryConfig(initial_delay_ms=1000, max_delay_ms=60_000)
    assert RetryManager.backoff_ceiling_s(config, 10_000) == 60


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    config = RetryConfig(initial_delay_ms=100, max_delay_ms=1000)
    retry = RetryManager(random=random.Random(1).random)
    for n in range(1, 8):
        ceiling = RetryManager.backoff_ceiling_s(config, n)
        delays = [retry.backoff_delay_s(config, n) for _ in range(500)]
        assert all(0 <= d <= ceiling for d in delays)
        # spread over the whole range, not clustered at one end
        assert min(delays) < ceiling * 0.1
        assert max(delays) > ceiling * 0.9


async def test_sleeps_use_the_jittered_backoff() -> None:
    time = FakeTime()
    attempt, _ = script(Upstream(500))
    await manager(time, rand=0.5).run(attempt, retry_config=FAST)
    assert time.sleeps == pytest.approx([0.05, 0.1, 0.2])


# -- Retry-After ----------------------------------------------------------------------------


async def test_retry_after_seconds_is_honoured_with_a_little_jitter() -> None:
    time = FakeTime()
    attempt, _ = script(Upstream(429, retry_after=0.5), "ok")
    result = await manager(time, rand=1.0).run(attempt, retry_config=FAST)
    assert result.unwrap() == "ok"
    assert time.sleeps == pytest.approx([0.55])


async def test_retry_after_http_date_is_honoured() -> None:
    time = FakeTime()
    header = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    attempt, _ = script(Upstream(503, retry_after=header), "ok")
    config = FAST.model_copy(update={"max_delay_ms": 60_000})
    result = await manager(time, rand=0.0).run(attempt, retry_config=config)
    assert result.unwrap() == "ok"
    assert 28 <= time.sleeps[0] <= 30


async def test_retry_after_never_waits_past_max_delay() -> None:
    time = FakeTime()
    attempt, _ = script(Upstream(429, retry_after=0.95), "ok")
    await manager(time, rand=1.0).run(attempt, retry_config=FAST)
    assert time.sleeps == pytest.approx([1.0])  # 0.95 + jitter, capped at max_delay_ms


async def test_retry_after_longer_than_max_delay_ends_the_run() -> None:
    time = FakeTime()
    attempt, calls = script(Upstream(429, retry_after=5), "ok")
    result = await manager(time).run(attempt, retry_config=FAST)
    assert result.stop_reason is StopReason.RETRY_AFTER_TOO_LONG
    assert result.decision.retry_after_s == 5
    assert len(calls) == 1
    assert time.sleeps == []


def test_parse_retry_after_is_the_policy_parser() -> None:
    assert parse_retry_after("3") == 3


# -- idempotency ----------------------------------------------------------------------------


def test_idempotent_methods() -> None:
    assert [m for m in ("GET", "put", "DELETE", "HEAD", "OPTIONS") if is_idempotent(m)] == [
        "GET",
        "put",
        "DELETE",
        "HEAD",
        "OPTIONS",
    ]
    assert not is_idempotent("POST")
    assert not is_idempotent("PATCH")
    assert not is_idempotent("QUERY")


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_non_idempotent_methods_are_not_retried_by_default(method: str) -> None:
    attempt, calls = script(Upstream(503), "ok")
    result = await manager(FakeTime()).run(attempt, retry_config=FAST, method=method)
    assert result.stop_reason is StopReason.NON_IDEMPOTENT
    assert len(calls) == 1


async def test_non_idempotent_methods_are_retried_when_allowed() -> None:
    attempt, _ = script(Upstream(503), "ok")
    result = await manager(FakeTime()).run(
        attempt, retry_config=FAST, method="POST", allow_non_idempotent=True
    )
    assert result.unwrap() == "ok"


async def test_a_rate_limited_post_is_retried_because_it_was_not_processed() -> None:
    attempt, _ = script(Upstream(429, retry_after=0.1), "ok")
    result = await manager(FakeTime()).run(attempt, retry_config=FAST, method="POST")
    assert result.unwrap() == "ok"


# -- deadline -------------------------------------------------------------------------------


async def test_never_sleeps_past_the_deadline() -> None:
    time = FakeTime()
    attempt, calls = script(Upstream(500))
    config = RetryConfig(max_retries=10, backoff_strategy="fixed", initial_delay_ms=300)
    result = await manager(time, rand=1.0).run(
        attempt, retry_config=config, deadline=time.now + 1.0
    )
    assert result.stop_reason is StopReason.DEADLINE
    assert time.sleeps == pytest.approx([0.3, 0.3, 0.3])
    assert time.now < 101.0
    assert len(calls) == 4


async def test_a_retry_after_beyond_the_deadline_is_not_waited_for() -> None:
    time = FakeTime()
    attempt, _ = script(Upstream(429, retry_after=0.8), "ok")
    result = await manager(time).run(attempt, retry_config=FAST, deadline=time.now + 0.5)
    assert result.stop_reason is StopReason.DEADLINE
    assert time.sleeps == []


async def test_deadline_counts_time_spent_in_attempts() -> None:
    time = FakeTime()

    async def slow_failure() -> str:
        time.now += 0.9
        raise Upstream(503)

    result = await manager(time, rand=1.0).run(
        slow_failure, retry_config=FAST, deadline=time.now + 1.0
    )
    assert result.stop_reason is StopReason.DEADLINE
    assert result.retries == 0


# -- token refresh --------------------------------------------------------------------------


async def test_401_refreshes_credentials_once_then_retries_at_once() -> None:
    time = FakeTime()
    refreshes: list[int] = []

    async def refresh() -> None:
        refreshes.append(1)

    attempt, _ = script(Upstream(401), "ok")
    result = await manager(time).run(
        attempt, retry_config=FAST, method="POST", refresh_auth=refresh
    )
    assert result.unwrap() == "ok"
    assert (len(refreshes), result.retries, time.sleeps) == (1, 1, [])


async def test_a_second_401_is_final() -> None:
    refreshes: list[int] = []

    async def refresh() -> None:
        refreshes.append(1)

    attempt, calls = script(Upstream(401))
    result = await manager(FakeTime()).run(attempt, retry_config=FAST, refresh_auth=refresh)
    assert result.stop_reason is StopReason.NOT_RETRYABLE
    assert len(refreshes) == 1
    assert len(calls) == 2


async def test_401_without_a_refresher_is_final() -> None:
    attempt, calls = script(Upstream(401), "ok")
    result = await manager(FakeTime()).run(attempt, retry_config=FAST)
    assert result.stop_reason is StopReason.NOT_RETRYABLE
    assert len(calls) == 1


async def test_token_refresh_does_not_use_the_retry_budget() -> None:
    async def refresh() -> None:
        return None

    attempt, _ = script(Upstream(401), Upstream(503), "ok")
    config = FAST.model_copy(update={"max_retries": 1})
    result = await manager(FakeTime()).run(attempt, retry_config=config, refresh_auth=refresh)
    assert result.unwrap() == "ok"
    assert result.retries == 2


# -- hooks ----------------------------------------------------------------------------------


async def test_custom_classifier_and_retry_events() -> None:
    events: list[RetryEvent] = []

    def classify(outcome: object) -> Decision:
        if outcome == "try again":
            return Decision(Action.RETRY, retry=True, breaker=BreakerVerdict.SUCCESS)
        return Decision(Action.SUCCESS, retry=False, breaker=BreakerVerdict.SUCCESS)

    attempt, _ = script("try again", "try again", "done")
    result = await manager(FakeTime(), on_retry=events.append).run(
        attempt, retry_config=FAST, classify=classify
    )
    assert result.unwrap() == "done"
    assert [e.retry_number for e in events] == [1, 2]
    assert all(e.decision.action is Action.RETRY for e in events)
