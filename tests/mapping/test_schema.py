"""Input validation against an endpoint's JSON Schema."""

from __future__ import annotations

from typing import Any

import pytest

from adaptor.mapping import CompiledSchema, MappingConfigError

CUSTOMER = {
    "type": "object",
    "required": ["email", "name"],
    "properties": {
        "email": {"type": "string", "format": "email"},
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": False,
}


def test_valid_document_has_no_problems() -> None:
    assert CompiledSchema(CUSTOMER).validate({"email": "a@b.co", "name": "Ada"}) == []


def test_plain_schema_uses_the_generated_validator() -> None:
    assert CompiledSchema(CUSTOMER).uses_fast_path


def test_every_offending_field_is_named() -> None:
    document = {"name": "", "age": -1, "tags": ["a", 2], "extra": True}
    problems = dict(CompiledSchema(CUSTOMER).validate(document))
    assert set(problems) == {("email",), ("name",), ("age",), ("tags", 1), ("extra",)}
    assert problems[("email",)] == "is required"
    assert problems[("extra",)] == "is not allowed"


def test_each_missing_required_property_is_its_own_problem() -> None:
    problems = CompiledSchema(CUSTOMER).validate({})
    assert [loc for loc, _ in problems] == [("email",), ("name",)]


def test_messages_do_not_echo_the_offending_value() -> None:
    problems = CompiledSchema(CUSTOMER).validate({"email": "a@b.co", "name": 12345678})
    assert problems == [(("name",), "must be of type string")]


def test_format_violation_is_reported() -> None:
    problems = CompiledSchema(CUSTOMER).validate({"email": "not-an-email", "name": "Ada"})
    assert [loc for loc, _ in problems] == [("email",)]


def test_nested_errors_carry_the_full_path() -> None:
    schema = {
        "type": "object",
        "properties": {"variables": {"type": "object", "required": ["customer_id"]}},
    }
    problems = CompiledSchema(schema).validate({"variables": {}})
    assert problems == [(("variables", "customer_id"), "is required")]


def test_newer_draft_keywords_are_validated_by_jsonschema() -> None:
    schema: dict[str, Any] = {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
        "items": False,
    }
    compiled = CompiledSchema(schema)
    assert not compiled.uses_fast_path
    assert compiled.validate(["a", 1]) == []
    assert [loc for loc, _ in compiled.validate(["a", "b", 3])] != []


def test_draft7_schema_uses_the_generated_validator() -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "integer"}
    assert CompiledSchema(schema).uses_fast_path


def test_local_refs_resolve() -> None:
    schema = {
        "$defs": {"id": {"type": "string", "minLength": 3}},
        "type": "object",
        "properties": {"id": {"$ref": "#/$defs/id"}},
    }
    assert CompiledSchema(schema).validate({"id": "x"}) == [
        (("id",), "must be at least 3 characters")
    ]


def test_invalid_schema_is_rejected_at_compile_time() -> None:
    with pytest.raises(MappingConfigError) as caught:
        CompiledSchema({"type": "strnig", "properties": {"a": {"minimum": "zero"}}})
    locs = [loc for loc, _ in caught.value.problems]
    assert ("type",) in locs
    assert ("properties", "a", "minimum") in locs


def test_remote_refs_are_rejected() -> None:
    with pytest.raises(MappingConfigError, match="only local references"):
        CompiledSchema({"$ref": "https://example.com/schema.json"})


def test_invalid_pattern_is_rejected_at_compile_time() -> None:
    with pytest.raises(MappingConfigError) as caught:
        CompiledSchema({"type": "string", "pattern": "(unclosed"})
    assert caught.value.problems[0][0] == ("pattern",)


def test_pattern_is_checked() -> None:
    compiled = CompiledSchema({"type": "string", "pattern": "^[a-z]+$"})
    assert compiled.validate("abc") == []
    assert compiled.validate("ABC") == [((), "must match '^[a-z]+$'")]


def test_catastrophic_pattern_is_bounded() -> None:
    compiled = CompiledSchema({"type": "string", "pattern": "^(a|aa)+$"})
    assert compiled.validate("a" * 5000 + "!") == [
        ((), "could not be checked against its pattern in time")
    ]


def test_pattern_properties_and_additional_properties() -> None:
    schema = {
        "type": "object",
        "patternProperties": {"^x-": {"type": "string"}},
        "additionalProperties": False,
    }
    problems = CompiledSchema(schema).validate({"x-a": 1, "y": "b"})
    assert sorted(problems) == [(("x-a",), "must be of type string"), (("y",), "is not allowed")]


def test_validation_does_not_fill_defaults_into_the_document() -> None:
    schema = {"type": "object", "properties": {"a": {"default": 1}}}
    document: dict[str, Any] = {}
    CompiledSchema(schema).validate(document)
    assert document == {}
