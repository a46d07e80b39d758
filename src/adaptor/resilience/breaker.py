"""`CircuitBreaker`: stop calling an upstream that keeps failing, and probe it back to health.

    CLOSED ──(failure_threshold consecutive failures)──► OPEN
    OPEN ──(recovery_timeout_s elapsed, next allow())──► HALF_OPEN
    HALF_OPEN ──(a probe succeeds)──► CLOSED
    HALF_OPEN ──(a probe fails)──► OPEN (the recovery timeout starts again)

In HALF_OPEN at most `half_open_max_probes` calls are let through at a time; the others are
refused as if the circuit were open. A probe whose holder disappears (crash, cancellation)
frees its place after `probe_timeout_s`.

State lives in the shared key-value store under `cb:{<key>}`, so every replica sees one breaker:
when one replica's failures open it, all of them stop calling. Each transition is a
compare-and-set of the whole state, retried on contention, so two replicas cannot both take
the last probe place or both apply the same transition. A healthy breaker (closed, no
failures) is no key at all; the hot path is one read in `allow()` (or none of its own: a rate
limit's store step can check that the key is absent, see `healthy_permit`), and nothing more
when the call succeeds: a permit taken from that healthy state records its success without
touching the store. (A streak that other calls start while it is in flight is therefore ended
by the next success that starts after the streak's first failure, not by this one.)

Every state change starts a new epoch, and a `Permit` remembers its epoch: a call let through
before the circuit opened that finishes late does not count against the next epoch (a slow
failure cannot re-open a circuit a probe has just closed). Times are wall-clock seconds
(`clock`, default `time.time`) because replicas share them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

import orjson

from adaptor.domain import ErrorCode
from adaptor.resilience.policy import BreakerVerdict
from adaptor.storage.kv import KeyValueStore, StoreError

__all__ = ["CircuitBreaker", "CircuitOpenError", "CircuitSnapshot", "CircuitState", "Permit"]

R = TypeVar("R")

# Contention is short-lived: once the circuit opens (or the probe places are taken) every
# further step reads without writing, so at most failure_threshold + probes writes compete.
_MAX_CAS_ATTEMPTS = 64


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(Exception):
    """The circuit is open (or its half-open probes are all taken): the call was not made.

    `retry_after_s` is when a call may be let through again, at the earliest.
    """

    code = ErrorCode.CIRCUIT_OPEN

    def __init__(self, key: str, retry_after_s: float) -> None:
        super().__init__(f"circuit {key!r} is open; retry in {retry_after_s:.1f}s")
        self.key = key
        self.retry_after_s = max(0.0, retry_after_s)
        self.retry_after = self.retry_after_s


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to make one call; hand it back to `record_*` or `release`."""

    epoch: str
    probe_id: str | None = None
    healthy: bool = False
    """Taken from a closed circuit with no failures: a success has nothing to record."""

    @property
    def probe(self) -> bool:
        """Whether this call is a half-open probe."""
        return self.probe_id is not None


@dataclass(frozen=True, slots=True)
class CircuitSnapshot:
    """What the breaker looks like now (for health endpoints and metrics)."""

    state: CircuitState
    consecutive_failures: int
    retry_after_s: float
    probes_in_flight: int


@dataclass(frozen=True, slots=True)
class _State:
    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    epoch: str = ""
    probes: dict[str, float] = field(default_factory=dict)

    @classmethod
    def decode(cls, raw: bytes | None) -> _State:
        if raw is None:
            return cls()
        try:
            data = orjson.loads(raw)
            return cls(
                state=CircuitState(data["state"]),
                failures=int(data["failures"]),
                opened_at=float(data["opened_at"]),
                epoch=str(data["epoch"]),
                probes={str(k): float(v) for k, v in data["probes"].items()},
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            # Unreadable state (e.g. written by an incompatible version): start closed.
            return cls()

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "state": self.state.value,
                "failures": self.failures,
                "opened_at": self.opened_at,
                "epoch": self.epoch,
                "probes": self.probes,
            },
            option=orjson.OPT_SORT_KEYS,
        )


def _new_epoch() -> str:
    return secrets.token_hex(6)


class CircuitBreaker:
    """A circuit breaker for one upstream (usually one integration), shared by all replicas
    through `store`. See the module docstring for states and transitions."""

    def __init__(
        self,
        store: KeyValueStore,
        key: str,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 60.0,
        half_open_max_probes: int = 1,
        *,
        probe_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if recovery_timeout_s <= 0 or probe_timeout_s <= 0:
            raise ValueError("recovery_timeout_s and probe_timeout_s must be positive")
        if half_open_max_probes < 1:
            raise ValueError("half_open_max_probes must be at least 1")
        self.key = key
        self.failure_threshold = failure_threshold
        self.recovery_timeout_s = recovery_timeout_s
        self.half_open_max_probes = half_open_max_probes
        self.probe_timeout_s = probe_timeout_s
        self._store = store
        # `{key}` is the rate limiter's hash tag too: one store step can read both.
        self._store_key = f"cb:{{{key}}}"
        self._clock = clock
        # Long enough to outlive any open period; short enough that breakers of deleted
        # integrations do not stay forever.
        self._state_ttl_s = max(86_400.0, 4 * (recovery_timeout_s + probe_timeout_s))

    # -- public API ------------------------------------------------------------------------

    @property
    def store_key(self) -> str:
        """Where the state lives; absent exactly while the breaker is healthy (closed, no
        failures), so a store step that finds it absent may use `healthy_permit()`."""
        return self._store_key

    @staticmethod
    def healthy_permit() -> Permit:
        """The permit `allow()` gives when it finds no state at `store_key`: for a caller that
        checked that absence itself, in a step of its own (e.g. with a rate-limit hit)."""
        return Permit(_State().epoch, healthy=True)

    async def allow(self) -> Permit:
        """Leave to call the upstream, or `CircuitOpenError` with when to try again."""
        return await self._transact(self._allow)

    async def record_success(self, permit: Permit | None = None) -> None:
        """The call (let through by `permit`) succeeded: closes a half-open circuit and ends a
        streak of failures."""
        await self.record(BreakerVerdict.SUCCESS, permit)

    async def record_failure(self, permit: Permit | None = None) -> bool:
        """The call failed in a way that counts against the upstream (see the policy table).
        True when this failure opened the circuit."""
        return await self.record(BreakerVerdict.FAILURE, permit)

    async def release(self, permit: Permit) -> None:
        """The call ended without saying anything about the upstream: free its probe place."""
        if not permit.healthy:
            await self.record(BreakerVerdict.IGNORE, permit)

    async def record(self, verdict: BreakerVerdict, permit: Permit | None = None) -> bool:
        """Record the policy table's verdict on a call's outcome; True when it opened the
        circuit.

        Without a permit the verdict applies to whatever epoch is current. A success or an
        ignored outcome under a `healthy` permit costs no store round trip.
        """
        if permit is not None and permit.healthy and verdict is not BreakerVerdict.FAILURE:
            return False
        return await self._transact(lambda state, now: self._record(state, now, verdict, permit))

    async def state(self) -> CircuitState:
        """The current state; an open circuit whose recovery timeout has passed reads as
        half-open (it becomes so at the next `allow()`)."""
        return (await self.snapshot()).state

    async def snapshot(self) -> CircuitSnapshot:
        """State, failure streak, seconds until calls are let through, probes in flight."""
        current = _State.decode(await self._store.get(self._store_key))
        now = self._clock()
        if current.state is CircuitState.OPEN:
            remaining = current.opened_at + self.recovery_timeout_s - now
            if remaining > 0:
                return CircuitSnapshot(CircuitState.OPEN, current.failures, remaining, 0)
            return CircuitSnapshot(CircuitState.HALF_OPEN, current.failures, 0.0, 0)
        probes = sum(1 for until in current.probes.values() if until > now)
        return CircuitSnapshot(current.state, current.failures, 0.0, probes)

    async def reset(self) -> None:
        """Force the circuit closed with no failures (an operator's action)."""
        await self._store.delete(self._store_key)

    # -- transitions (pure: state and time in, new state and result out) -------------------

    def _allow(self, current: _State, now: float) -> tuple[_State, Permit]:
        if current.state is CircuitState.CLOSED:
            return current, Permit(current.epoch, healthy=current == _State())
        if current.state is CircuitState.OPEN:
            remaining = current.opened_at + self.recovery_timeout_s - now
            if remaining > 0:
                raise CircuitOpenError(self.key, remaining)
            current = _State(
                CircuitState.HALF_OPEN, current.failures, current.opened_at, _new_epoch()
            )
        probes = {pid: until for pid, until in current.probes.items() if until > now}
        if len(probes) >= self.half_open_max_probes:
            raise CircuitOpenError(
                self.key, min(min(probes.values()) - now, self.recovery_timeout_s)
            )
        probe_id = secrets.token_hex(6)
        probes[probe_id] = now + self.probe_timeout_s
        return replace(current, probes=probes), Permit(current.epoch, probe_id)

    def _record(
        self, current: _State, now: float, verdict: BreakerVerdict, permit: Permit | None
    ) -> tuple[_State, bool]:
        """The state after `verdict`, and whether this verdict opened the circuit."""
        if permit is not None and permit.epoch != current.epoch:
            return current, False  # a late result from an earlier epoch
        if current.state is CircuitState.OPEN:
            if now < current.opened_at + self.recovery_timeout_s or (
                verdict is BreakerVerdict.IGNORE
            ):
                return current, False
            # Recovery time has passed but no probe was taken yet: this result is the probe.
            current = replace(current, state=CircuitState.HALF_OPEN)
        if current.state is CircuitState.HALF_OPEN:
            if verdict is BreakerVerdict.SUCCESS:
                return _State(CircuitState.CLOSED, epoch=_new_epoch()), False
            if verdict is BreakerVerdict.FAILURE:
                return self._opened(current.failures, now), True
            if permit is not None and permit.probe_id in current.probes:
                probes = {p: t for p, t in current.probes.items() if p != permit.probe_id}
                return replace(current, probes=probes), False
            return current, False
        # CLOSED
        if verdict is BreakerVerdict.SUCCESS and current.failures:
            return replace(current, failures=0), False
        if verdict is BreakerVerdict.FAILURE:
            failures = current.failures + 1
            if failures >= self.failure_threshold:
                return self._opened(failures, now), True
            return replace(current, failures=failures), False
        return current, False

    @staticmethod
    def _opened(failures: int, now: float) -> _State:
        return _State(CircuitState.OPEN, failures, now, _new_epoch())

    async def _transact(self, step: Callable[[_State, float], tuple[_State, R]]) -> R:
        """Apply `step` to the stored state with compare-and-set, re-reading on contention."""
        for _ in range(_MAX_CAS_ATTEMPTS):
            raw = await self._store.get(self._store_key)
            current = _State.decode(raw)
            new, result = step(current, self._clock())
            if new == current:
                return result
            new_raw = None if new == _State() else new.encode()
            if new_raw == raw or await self._store.compare_and_set(
                self._store_key, raw, new_raw, self._state_ttl_s if new_raw is not None else None
            ):
                return result
        raise StoreError(f"circuit {self.key!r}: state kept changing under us")
