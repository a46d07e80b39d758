"""`MappingEngine.compile_endpoint`: every configuration mistake, located, at once."""

from __future__ import annotations

from typing import Any

import pytest

from adaptor.mapping import MappingConfigError, MappingEngine
from tests.mapping.factories import endpoint


def problems_of(engine: MappingEngine, **fields: Any) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(MappingConfigError) as caught:
        engine.compile_endpoint(endpoint(**fields))
    return caught.value.problems


def locs_of(engine: MappingEngine, **fields: Any) -> list[tuple[str | int, ...]]:
    return [loc for loc, _ in problems_of(engine, **fields)]


def test_empty_endpoint_compiles(engine: MappingEngine) -> None:
    compiled = engine.compile_endpoint(endpoint())
    assert compiled.placeholders == ()


def test_three_mistakes_report_three_locs(engine: MappingEngine) -> None:
    locs = locs_of(
        engine,
        request_mapping={"body": {"email": "user.email["}},
        response_mapping={
            "data_path": "data[",
            "transformations": [
                {"field": "amount", "transform": "number_format", "params": {"decimals": "two"}}
            ],
        },
    )
    assert locs == [
        ("request_mapping", "body", "email"),
        ("response_mapping", "data_path"),
        ("response_mapping", "transformations", 0, "params", "decimals"),
    ]


def test_unknown_transform_is_located(engine: MappingEngine) -> None:
    locs = locs_of(
        engine,
        response_mapping={"transformations": [{"field": "a", "transform": "shout"}]},
    )
    assert locs == [("response_mapping", "transformations", 0, "transform")]


def test_bad_transform_condition_is_located(engine: MappingEngine) -> None:
    locs = locs_of(
        engine,
        response_mapping={
            "transformations": [{"field": "a", "transform": "uppercase", "condition": "x =="}]
        },
    )
    assert locs == [("response_mapping", "transformations", 0, "condition")]


def test_bad_transformation_field_path_is_located(engine: MappingEngine) -> None:
    locs = locs_of(
        engine,
        response_mapping={"transformations": [{"field": "a..b", "transform": "uppercase"}]},
    )
    assert locs == [("response_mapping", "transformations", 0, "field")]


def test_request_transformation_field_must_name_a_section(engine: MappingEngine) -> None:
    problems = problems_of(
        engine,
        request_mapping={"transformations": [{"field": "email", "transform": "lowercase"}]},
    )
    assert problems[0][0] == ("request_mapping", "transformations", 0, "field")
    assert "body.email" in problems[0][1]


def test_placeholder_without_path_param_mapping(engine: MappingEngine) -> None:
    problems = problems_of(engine, path="/customers/{id}")
    assert problems == [(("path",), "placeholder {id} has no request_mapping.path_params entry")]


def test_path_param_missing_from_path(engine: MappingEngine) -> None:
    locs = locs_of(engine, path="/customers", request_mapping={"path_params": {"id": "id"}})
    assert locs == [("request_mapping", "path_params", "id")]


def test_unbalanced_braces_in_path(engine: MappingEngine) -> None:
    assert locs_of(engine, path="/customers/{id") == [("path",)]


def test_invalid_header_name(engine: MappingEngine) -> None:
    locs = locs_of(engine, request_mapping={"headers": {"Bad Header": "x"}})
    assert locs == [("request_mapping", "headers", "Bad Header")]


def test_conflicting_body_targets(engine: MappingEngine) -> None:
    locs = locs_of(engine, request_mapping={"body": {"customer": "c", "customer.email": "e"}})
    assert locs == [("request_mapping", "body", "customer.email")]


def test_required_target_that_nothing_maps(engine: MappingEngine) -> None:
    locs = locs_of(engine, request_mapping={"body": {"a": "a"}, "required": ["body.b"]})
    assert locs == [("request_mapping", "required", 0)]


def test_required_target_must_name_a_section(engine: MappingEngine) -> None:
    locs = locs_of(engine, request_mapping={"required": ["email"]})
    assert locs == [("request_mapping", "required", 0)]


def test_required_target_may_be_filled_by_a_transformation(engine: MappingEngine) -> None:
    engine.compile_endpoint(
        endpoint(
            request_mapping={
                "transformations": [
                    {"field": "query_params.limit", "transform": "default", "params": {"value": 10}}
                ],
                "required": ["query_params.limit"],
            }
        )
    )


def test_bad_field_mapping_target_and_source(engine: MappingEngine) -> None:
    locs = locs_of(engine, response_mapping={"field_mappings": {"a[": "b", "c": "d["}})
    assert locs == [
        ("response_mapping", "field_mappings", "a["),
        ("response_mapping", "field_mappings", "c"),
    ]


def test_bad_default_value_path(engine: MappingEngine) -> None:
    locs = locs_of(engine, response_mapping={"default_values": {"a.": 1}})
    assert locs == [("response_mapping", "default_values", "a.")]


def test_invalid_validation_schema_is_located(engine: MappingEngine) -> None:
    locs = locs_of(engine, validation_schema={"type": "objekt"})
    assert locs == [("validation_schema", "type")]


def test_invalid_summary_template_is_located(engine: MappingEngine) -> None:
    assert locs_of(engine, summary_template="{% for %}") == [("summary_template",)]


def test_invalid_cache_key_field_is_located(engine: MappingEngine) -> None:
    locs = locs_of(engine, cache_config={"cache_key_fields": ["ok", "bad["]})
    assert locs == [("cache_config", "cache_key_fields", 1)]


def test_unknown_jmespath_function_is_caught_at_compile_time(engine: MappingEngine) -> None:
    problems = problems_of(engine, response_mapping={"data_path": "shout(data)"})
    assert problems[0][0] == ("response_mapping", "data_path")
    assert "unknown function shout()" in problems[0][1]


def test_error_message_summarises_problems(engine: MappingEngine) -> None:
    with pytest.raises(MappingConfigError, match=r"response_mapping\.data_path: invalid"):
        engine.compile_endpoint(endpoint(response_mapping={"data_path": "a["}))
