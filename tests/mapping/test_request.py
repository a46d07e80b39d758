"""`CompiledEndpoint.map_request` and `validate_input`."""

from __future__ import annotations

import pytest

from adaptor.mapping import MappingError
from tests.mapping.factories import compile_endpoint

DOCUMENT = {
    "variables": {"customer_id": "cus_1", "limit": 5, "tags": ["a", "b"]},
    "user_data": {"email": "Ada@Example.COM", "name": "Ada"},
    "context": {"locale": "de"},
}


def test_maps_every_section() -> None:
    compiled = compile_endpoint(
        path="/customers/{id}",
        request_mapping={
            "path_params": {"id": "variables.customer_id"},
            "query_params": {"limit": "variables.limit"},
            "headers": {"Accept-Language": "context.locale"},
            "body": {"email": "user_data.email"},
        },
    )
    mapped = compiled.map_request(DOCUMENT)
    assert mapped.path == "/customers/cus_1"
    assert mapped.path_params == {"id": "cus_1"}
    assert mapped.query_params == {"limit": 5}
    assert mapped.headers == {"Accept-Language": "de"}
    assert mapped.body == {"email": "Ada@Example.COM"}
    assert mapped.warnings == []


def test_body_dot_paths_build_nested_objects_and_lists() -> None:
    compiled = compile_endpoint(
        request_mapping={
            "body": {"customer.email": "user_data.email", "items[1].tag": "variables.tags[0]"}
        }
    )
    assert compiled.map_request(DOCUMENT).body == {
        "customer": {"email": "Ada@Example.COM"},
        "items": [None, {"tag": "a"}],
    }


def test_literal_values() -> None:
    compiled = compile_endpoint(request_mapping={"body": {"currency": '`"usd"`', "n": "`3`"}})
    assert compiled.map_request({}).body == {"currency": "usd", "n": 3}


def test_missing_values_are_omitted() -> None:
    compiled = compile_endpoint(
        request_mapping={"query_params": {"q": "variables.query"}, "body": {"x": "nothing.here"}}
    )
    mapped = compiled.map_request(DOCUMENT)
    assert mapped.query_params == {}
    assert mapped.body == {}


def test_path_values_are_percent_encoded() -> None:
    compiled = compile_endpoint(
        path="/files/{name}", request_mapping={"path_params": {"name": "n"}}
    )
    assert compiled.map_request({"n": "../admin?x=1"}).path == "/files/..%2Fadmin%3Fx%3D1"


def test_numbers_and_booleans_become_text_in_path_and_headers() -> None:
    compiled = compile_endpoint(
        path="/page/{n}",
        request_mapping={"path_params": {"n": "`2`"}, "headers": {"X-Live": "`true`"}},
    )
    mapped = compiled.map_request({})
    assert mapped.path == "/page/2"
    assert mapped.headers == {"X-Live": "true"}


def test_query_booleans_become_text_and_lists_stay_lists() -> None:
    compiled = compile_endpoint(
        request_mapping={"query_params": {"live": "`false`", "tag": "variables.tags"}}
    )
    assert compiled.map_request(DOCUMENT).query_params == {"live": "false", "tag": ["a", "b"]}


def test_object_as_path_param_is_a_problem() -> None:
    compiled = compile_endpoint(
        path="/x/{id}", request_mapping={"path_params": {"id": "variables"}}
    )
    with pytest.raises(MappingError) as caught:
        compiled.map_request(DOCUMENT)
    assert caught.value.problems == [(("path_params", "id"), "must be one value, got object")]


def test_header_with_line_break_is_a_problem() -> None:
    compiled = compile_endpoint(request_mapping={"headers": {"X-Name": "name"}})
    with pytest.raises(MappingError, match="line breaks"):
        compiled.map_request({"name": "a\r\nInjected: 1"})


def test_all_missing_required_values_are_reported() -> None:
    compiled = compile_endpoint(
        path="/customers/{id}",
        request_mapping={
            "path_params": {"id": "variables.id"},
            "query_params": {"limit": "variables.max"},
            "body": {"customer.email": "user.email"},
            "required": ["body.customer.email", "query_params.limit"],
        },
    )
    with pytest.raises(MappingError) as caught:
        compiled.map_request({})
    assert [loc for loc, _ in caught.value.problems] == [
        ("body", "customer", "email"),
        ("query_params", "limit"),
        ("path_params", "id"),
    ]
    assert "nothing found at 'user.email'" in caught.value.problems[0][1]


def test_runtime_expression_error_is_a_located_problem() -> None:
    compiled = compile_endpoint(request_mapping={"body": {"n": "length(variables.limit)"}})
    with pytest.raises(MappingError) as caught:
        compiled.map_request(DOCUMENT)
    assert caught.value.problems[0][0] == ("body", "n")


def test_request_transformation_applies_to_target() -> None:
    compiled = compile_endpoint(
        request_mapping={
            "body": {"email": "user_data.email"},
            "transformations": [{"field": "body.email", "transform": "lowercase"}],
        }
    )
    assert compiled.map_request(DOCUMENT).body == {"email": "ada@example.com"}


def test_request_transformation_condition_reads_the_input_document() -> None:
    compiled = compile_endpoint(
        request_mapping={
            "body": {"name": "user_data.name"},
            "transformations": [
                {
                    "field": "body.name",
                    "transform": "uppercase",
                    "condition": "context.locale == 'en'",
                }
            ],
        }
    )
    assert compiled.map_request(DOCUMENT).body == {"name": "Ada"}


def test_default_transformation_satisfies_required_target() -> None:
    compiled = compile_endpoint(
        request_mapping={
            "query_params": {"limit": "variables.max"},
            "transformations": [
                {"field": "query_params.limit", "transform": "default", "params": {"value": 10}}
            ],
            "required": ["query_params.limit"],
        }
    )
    assert compiled.map_request({}).query_params == {"limit": 10}


def test_failed_request_transformation_keeps_value_and_warns() -> None:
    compiled = compile_endpoint(
        request_mapping={
            "body": {"when": "variables.date"},
            "transformations": [
                {"field": "body.when", "transform": "date_format", "params": {"format": "%Y"}}
            ],
        }
    )
    mapped = compiled.map_request({"variables": {"date": "banana"}})
    assert mapped.body == {"when": "banana"}
    assert mapped.warnings[0][0] == ("body", "when")
    assert "date_format failed, original value kept" in mapped.warnings[0][1]


def test_request_transformation_does_not_modify_the_input_document() -> None:
    document = {"customer": {"email": "A@X"}}
    compiled = compile_endpoint(
        request_mapping={
            "body": {"customer": "customer"},
            "transformations": [{"field": "body.customer.email", "transform": "lowercase"}],
        }
    )
    assert compiled.map_request(document).body == {"customer": {"email": "a@x"}}
    assert document == {"customer": {"email": "A@X"}}


def test_validate_input_without_schema_accepts_anything() -> None:
    assert compile_endpoint().validate_input({"anything": 1}) == []


def test_validate_input_names_every_field() -> None:
    compiled = compile_endpoint(
        validation_schema={
            "type": "object",
            "required": ["variables"],
            "properties": {
                "variables": {
                    "type": "object",
                    "required": ["customer_id"],
                    "properties": {"limit": {"type": "integer", "maximum": 100}},
                }
            },
        }
    )
    problems = compiled.validate_input({"variables": {"limit": 500}})
    assert problems == [
        (("variables", "customer_id"), "is required"),
        (("variables", "limit"), "must be <= 100"),
    ]


def test_cache_key_values_read_the_input_document() -> None:
    compiled = compile_endpoint(cache_config={"cache_key_fields": ["variables.customer_id"]})
    assert compiled.cache_key_values(DOCUMENT) == {"variables.customer_id": "cus_1"}
