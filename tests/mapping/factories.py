"""Endpoint configs for the mapping tests, validated like stored ones."""

from __future__ import annotations

from typing import Any

from adaptor.domain.integration import EndpointConfig
from adaptor.mapping import CompiledEndpoint, MappingEngine


def endpoint(**fields: Any) -> EndpointConfig:
    """An endpoint config from plain JSON-like fields."""
    fields.setdefault("name", "endpoint")
    return EndpointConfig.model_validate(fields)


def compile_endpoint(**fields: Any) -> CompiledEndpoint:
    """The compiled form of `endpoint(**fields)`."""
    return MappingEngine().compile_endpoint(endpoint(**fields))
