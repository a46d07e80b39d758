"""The spec's `MappingEngine` entry points."""

from __future__ import annotations

import pytest

from adaptor.mapping import (
    MappingConfigError,
    MappingEngine,
    MappingError,
    MappingRule,
    PathError,
    TransformError,
)


def test_extract_value_with_default(engine: MappingEngine) -> None:
    assert engine.extract_value({"a": {"b": 1}}, "a.c", default=0) == 0


def test_extract_value_caches_compiled_expressions(engine: MappingEngine) -> None:
    assert engine.compile_expression("a.b") is engine.compile_expression("a.b")


def test_set_nested_value_with_indices(engine: MappingEngine) -> None:
    target: dict[str, object] = {}
    engine.set_nested_value(target, "a.b[1].c", 1)
    assert target == {"a": {"b": [None, {"c": 1}]}}


def test_set_nested_value_type_conflict(engine: MappingEngine) -> None:
    with pytest.raises(PathError):
        engine.set_nested_value({"a": 1}, "a.b", 2)


def test_apply_transformation(engine: MappingEngine) -> None:
    assert engine.apply_transformation("ada", "uppercase") == "ADA"


def test_apply_transformation_bad_params(engine: MappingEngine) -> None:
    with pytest.raises(MappingConfigError):
        engine.apply_transformation(1, "arithmetic", {"op": "divide", "operand": 0})


def test_apply_transformation_bad_value(engine: MappingEngine) -> None:
    with pytest.raises(TransformError):
        engine.apply_transformation("banana", "date_format", {"format": "%Y"})


def test_apply_transformation_skips_null(engine: MappingEngine) -> None:
    assert engine.apply_transformation(None, "uppercase") is None


def test_apply_mapping_builds_target(engine: MappingEngine) -> None:
    rules = [
        MappingRule("user.email", "contact.email", transform="lowercase"),
        MappingRule("user.phone", "contact.phone", default="n/a"),
    ]
    result = engine.apply_mapping({"user": {"email": "A@X"}}, rules)
    assert result == {"contact": {"email": "a@x", "phone": "n/a"}}


def test_apply_mapping_collects_all_required_and_schema_errors(engine: MappingEngine) -> None:
    rules = [
        MappingRule("a", "a", required=True),
        MappingRule("b", "b", required=True),
        MappingRule("c", "c"),
    ]
    schema = {"type": "object", "properties": {"c": {"type": "integer"}}}
    with pytest.raises(MappingError) as caught:
        engine.apply_mapping({"c": "x"}, rules, target_schema=schema)
    assert [loc for loc, _ in caught.value.problems] == [("a",), ("b",), ("c",)]


def test_apply_mapping_keeps_original_on_transform_error(engine: MappingEngine) -> None:
    warnings: list[tuple[tuple[str | int, ...], str]] = []
    rules = [MappingRule("d", "d", transform="date_format", params={"format": "%Y"})]
    assert engine.apply_mapping({"d": "banana"}, rules, warnings=warnings) == {"d": "banana"}
    assert warnings[0][0] == ("d",)


def test_apply_mapping_reports_bad_rules(engine: MappingEngine) -> None:
    rules = [MappingRule("a[", "a"), MappingRule("b", "b.."), MappingRule("c", "c", "nope")]
    with pytest.raises(MappingConfigError) as caught:
        engine.apply_mapping({}, rules)
    assert [loc for loc, _ in caught.value.problems] == [
        (0, "source_path"),
        (1, "target_path"),
        (2, "transform"),
    ]


def test_compile_endpoint_reuses_the_engine_expression_cache(engine: MappingEngine) -> None:
    from tests.mapping.factories import endpoint

    engine.compile_endpoint(endpoint(response_mapping={"data_path": "results"}))
    assert engine.compile_expression("results").source == "results"
