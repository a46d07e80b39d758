"""Fixtures shared by the mapping tests."""

from __future__ import annotations

import pytest

from adaptor.mapping import MappingEngine


@pytest.fixture
def engine() -> MappingEngine:
    return MappingEngine()
