"""Identifiers for requests and log rows.

Log rows get time-ordered (version 7) UUIDs: consecutive rows land next to each other in the
primary-key index instead of at random places, which keeps bulk inserts cheap on both databases.

They need to be unique, not unpredictable (nothing is authorised by knowing one), so they come
from the process's seeded PRNG instead of a system call for fresh entropy on every request. A
forked child reseeds, so two processes never share the sequence.
"""

from __future__ import annotations

import os
import random
import time

_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)

# Version 4 and the RFC 4122 variant, as uuid.UUID(int=..., version=4) sets them.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (0x4000 << 64) | (0x8000 << 48)


def new_uuid() -> str:
    """A random (version 4) UUID as text, the form of `str(uuid.uuid4())`."""
    text = f"{(_random.getrandbits(128) & _CLEAR) | _SET:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_time_ordered_uuid() -> str:
    """A version 7 UUID (RFC 9562) as text: 48 bits of Unix time in ms, then random bits."""
    low = _random.getrandbits(74)
    value = (
        (time.time_ns() // 1_000_000) << 80
        | 0x7 << 76
        | (low >> 62) << 64
        | 0b10 << 62
        | (low & ((1 << 62) - 1))
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def new_request_id() -> str:
    """32 hexadecimal characters, the form of `uuid4().hex`."""
    return f"{_random.getrandbits(128):032x}"


class TimeOrderedIds:
    """Version 7 UUIDs that increase strictly within this generator (RFC 9562, method 1: a
    12-bit counter after the millisecond), so ids stamped one after another sort in the order
    they were stamped, and random bits after it keep other processes' ids distinct."""

    def __init__(self) -> None:
        self._ms = 0
        self._counter = 0

    def next(self) -> str:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > self._ms:
            self._ms, self._counter = now_ms, 0
        else:
            self._counter += 1
            if self._counter > 0xFFF:  # 4,096 in one millisecond: borrow the next one
                self._ms, self._counter = self._ms + 1, 0
        value = (
            self._ms << 80 | 0x7 << 76 | self._counter << 64 | 0b10 << 62 | _random.getrandbits(62)
        )
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


sequential_ids = TimeOrderedIds()
"""The process's one sequence for rows the event relay reads (execution logs, outbox rows):
ids stamped anywhere in the process sort in the order they were stamped."""


def time_ordered_floor(unix_s: float) -> str:
    """The smallest version 7 UUID text of the millisecond `unix_s` falls in: every id made
    in that millisecond or later sorts at or after it."""
    text = f"{int(unix_s * 1000) << 80 | 0x7 << 76 | 0b10 << 62:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
