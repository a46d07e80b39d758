"""Identifiers for requests and log rows.

They need to be unique, not unpredictable (nothing is authorised by knowing one), so they come
from the process's seeded PRNG instead of a system call for fresh entropy on every request.
"""

from __future__ import annotations

import random
import uuid

_random = random.Random()


def new_uuid() -> str:
    """A random (version 4) UUID as text."""
    return str(uuid.UUID(int=_random.getrandbits(128), version=4))


def new_request_id() -> str:
    """32 hexadecimal characters, the form of `uuid4().hex`."""
    return f"{_random.getrandbits(128):032x}"
