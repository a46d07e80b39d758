"""Identifiers: the forms the API documents, from a PRNG that is never shared after a fork."""

from __future__ import annotations

import os
import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from adaptor import ids


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_new_uuid_is_what_uuid_makes_of_the_same_bits(bits: int) -> None:
    class Fixed:
        def getrandbits(self, k: int) -> int:
            assert k == 128
            return bits

    saved = ids._random
    ids._random = Fixed()  # type: ignore[assignment]
    try:
        made = ids.new_uuid()
    finally:
        ids._random = saved
    expected = uuid.UUID(int=bits, version=4)
    assert made == str(expected)
    assert uuid.UUID(made).version == 4


def test_ids_are_unique_and_well_formed() -> None:
    made = {ids.new_uuid() for _ in range(10_000)}
    assert len(made) == 10_000
    request_ids = {ids.new_request_id() for _ in range(10_000)}
    assert len(request_ids) == 10_000
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in request_ids)


def test_a_forked_child_does_not_repeat_the_parents_sequence() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        os.write(write, ids.new_uuid().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child != ids.new_uuid()


def test_time_ordered_uuids_are_version_7_and_sort_by_time() -> None:
    before = time.time_ns() // 1_000_000
    made = [ids.new_time_ordered_uuid() for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(value) for value in made]
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in parsed)
    assert [str(value) for value in parsed] == made
    stamps = [value.int >> 80 for value in parsed]
    assert before <= min(stamps)
    assert max(stamps) <= after
    # Rows made in different milliseconds sort in the order they were made.
    assert stamps == sorted(stamps)
    assert sorted(made, key=lambda value: value[:13]) == made
    assert len(set(made)) == len(made)
