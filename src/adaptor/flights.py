"""Single-flight: one in-process call per key, joined by every caller that asks meanwhile.

A cache that misses under load must not start the same load once per waiting caller: at 16 or
64 concurrent requests that turns one database read into as many, all queued on one event
loop. `Flights.join` starts the call for the first caller of a key and hands every later one,
until it lands, the same task, shielded, so that one caller giving up (cancelled) does not
cancel it for the others. A caller that knows the call has become stale meanwhile (a change
notice arrived) calls `forget`: the callers after it start a new one, and the stale call's
waiters still get its result. `launch` starts a call that nobody waits for (a refresh ahead of
an expiry, a check in the background) unless one for its key is in flight already.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Flights(Generic[K, V]):
    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    def join(
        self, key: K, start: Callable[[], Coroutine[Any, Any, V]]
    ) -> tuple[asyncio.Future[V], bool]:
        """The call in flight for `key`, started with `start()` if there is none, shielded for
        this caller, and whether this caller started it (the leader)."""
        task = self._tasks.get(key)
        leader = task is None
        if task is None:
            task = self._start(key, start)
        # Shielded: a cancelled caller must not cancel the call others are waiting on.
        return asyncio.shield(task), leader

    def launch(self, key: K, start: Callable[[], Coroutine[Any, Any, V]]) -> None:
        """Start `start()` for `key` in the background unless a call for `key` is in flight;
        nobody awaits it, and its failure is retrieved (not reported as never retrieved)."""
        if key not in self._tasks:
            self._start(key, start)

    def _start(self, key: K, start: Callable[[], Coroutine[Any, Any, V]]) -> asyncio.Task[V]:
        task = asyncio.create_task(start())
        self._tasks[key] = task
        task.add_done_callback(functools.partial(self._landed, key))
        return task

    def forget(self, key: K) -> None:
        """Callers of `key` from now on start a new call."""
        self._tasks.pop(key, None)

    def clear(self) -> None:
        self._tasks.clear()

    def cancel(self) -> None:
        """Cancel every call in flight (at shutdown) and forget them."""
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def __len__(self) -> int:
        return len(self._tasks)

    def _landed(self, key: K, task: asyncio.Task[V]) -> None:
        if self._tasks.get(key) is task:  # not a newer call started after `forget`
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a call nobody awaits any more is not reported
