"""`CompiledEndpoint.map_response` and `render_summary`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from adaptor.mapping import MappingError
from tests.mapping.factories import compile_endpoint

CHARGES = {
    "object": "list",
    "data": [
        {"id": "ch_1", "amount": 1999, "currency": "usd", "customer": {"email": "A@X.COM"}},
        {"id": "ch_2", "amount": 500, "currency": "jpy", "customer": None},
    ],
}


def test_without_mapping_the_body_passes_through() -> None:
    result = compile_endpoint().map_response(CHARGES)
    assert result.success is True
    assert result.data is CHARGES
    assert result.error_message is None


def test_data_path_selects_the_data() -> None:
    result = compile_endpoint(response_mapping={"data_path": "data[0].id"}).map_response(CHARGES)
    assert result.data == "ch_1"


def test_field_mappings_apply_to_each_element() -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "data",
            "field_mappings": {"charge_id": "id", "email": "customer.email"},
        }
    )
    assert compiled.map_response(CHARGES).data == [
        {"charge_id": "ch_1", "email": "A@X.COM"},
        {"charge_id": "ch_2"},
    ]


def test_field_mappings_to_nested_targets() -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "data[0]",
            "field_mappings": {"charge.id": "id", "charge.money[0]": "amount"},
        }
    )
    assert compiled.map_response(CHARGES).data == {"charge": {"id": "ch_1", "money": [1999]}}


def test_field_mappings_on_a_single_object() -> None:
    compiled = compile_endpoint(response_mapping={"field_mappings": {"kind": "object"}})
    assert compiled.map_response(CHARGES).data == {"kind": "list"}


def test_empty_list_maps_to_empty_list() -> None:
    compiled = compile_endpoint(
        response_mapping={"data_path": "data", "field_mappings": {"id": "id"}}
    )
    assert compiled.map_response({"data": []}).data == []


def test_data_path_matching_nothing_gives_no_data_and_a_warning() -> None:
    compiled = compile_endpoint(response_mapping={"data_path": "results"})
    result = compiled.map_response({"data": []})
    assert result.success is True
    assert result.data is None
    assert result.warnings == [(("data",), "data_path 'results' matched nothing")]


def test_null_elements_are_kept_in_lists() -> None:
    compiled = compile_endpoint(
        response_mapping={"data_path": "items", "field_mappings": {"id": "id"}}
    )
    assert compiled.map_response({"items": [None, {"id": 1}]}).data == [{}, {"id": 1}]


def test_transformations_apply_per_element() -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "data",
            "transformations": [
                {
                    "field": "amount",
                    "transform": "currency_format",
                    "params": {"currency_field": "currency", "minor_units": True},
                }
            ],
        }
    )
    amounts = [item["amount"] for item in compiled.map_response(CHARGES).data]
    assert amounts == ["$19.99", "¥500"]


def test_transformation_on_nested_field() -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "data",
            "transformations": [{"field": "customer.email", "transform": "lowercase"}],
        }
    )
    data = compiled.map_response(CHARGES).data
    assert data[0]["customer"] == {"email": "a@x.com"}
    assert data[1]["customer"] is None


def test_transformation_condition_is_evaluated_per_element() -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "data",
            "transformations": [
                {"field": "id", "transform": "uppercase", "condition": "currency == 'usd'"}
            ],
        }
    )
    assert [item["id"] for item in compiled.map_response(CHARGES).data] == ["CH_1", "ch_2"]


def test_transformations_never_modify_the_parsed_body() -> None:
    body = copy.deepcopy(CHARGES)
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "data",
            "transformations": [
                {"field": "customer.email", "transform": "lowercase"},
                {"field": "amount", "transform": "to_string"},
            ],
            "default_values": {"customer.name": "unknown"},
        }
    )
    compiled.map_response(body)
    assert body == CHARGES


def test_mapped_fields_are_transformed_without_touching_the_source() -> None:
    body = {"customer": {"email": "A@X"}}
    compiled = compile_endpoint(
        response_mapping={
            "field_mappings": {"who": "customer"},
            "transformations": [{"field": "who.email", "transform": "lowercase"}],
        }
    )
    assert compiled.map_response(body).data == {"who": {"email": "a@x"}}
    assert body == {"customer": {"email": "A@X"}}


def test_failed_transformation_keeps_value_and_warns_with_element_path() -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "items",
            "transformations": [
                {"field": "when", "transform": "date_format", "params": {"format": "%d.%m.%Y"}}
            ],
        }
    )
    result = compiled.map_response({"items": [{"when": "2024-03-01"}, {"when": "banana"}]})
    assert result.data == [{"when": "01.03.2024"}, {"when": "banana"}]
    assert len(result.warnings) == 1
    assert result.warnings[0][0] == ("data", 1, "when")


def test_warnings_are_capped() -> None:
    compiled = compile_endpoint(
        response_mapping={"transformations": [{"field": "n", "transform": "to_int"}]}
    )
    result = compiled.map_response([{"n": "x"}] * 60)
    assert len(result.warnings) == 51
    assert result.warnings[-1] == ((), "10 more warnings not shown")


def test_default_values_apply_per_element_where_missing_or_null() -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "data",
            "field_mappings": {"id": "id", "email": "customer.email"},
            "default_values": {"email": "unknown", "tags": []},
        }
    )
    data = compiled.map_response(CHARGES).data
    assert data == [
        {"id": "ch_1", "email": "A@X.COM", "tags": []},
        {"id": "ch_2", "email": "unknown", "tags": []},
    ]
    assert data[0]["tags"] is not data[1]["tags"]


def test_default_values_skip_non_object_elements() -> None:
    compiled = compile_endpoint(response_mapping={"default_values": {"a": 1}})
    assert compiled.map_response(["x", {"b": 2}]).data == ["x", {"b": 2, "a": 1}]


def test_default_value_conflicting_with_data_is_a_warning() -> None:
    compiled = compile_endpoint(response_mapping={"default_values": {"a.b": 1}})
    result = compiled.map_response({"a": "text"})
    assert result.data == {"a": "text"}
    assert result.warnings[0][0] == ("data", "a", "b")


def test_falsy_success_path_is_a_failure() -> None:
    compiled = compile_endpoint(response_mapping={"success_path": "ok", "error_path": "error"})
    result = compiled.map_response({"ok": False, "error": "channel_not_found"})
    assert result.success is False
    assert result.data is None
    assert result.error_message == "channel_not_found"


def test_missing_success_flag_is_a_failure() -> None:
    result = compile_endpoint(response_mapping={"success_path": "ok"}).map_response({})
    assert result.success is False
    assert result.error_message == "upstream reported failure (ok is null)"


def test_truthy_success_path_is_a_success() -> None:
    compiled = compile_endpoint(response_mapping={"success_path": "ok", "data_path": "user"})
    result = compiled.map_response({"ok": True, "user": {"id": 1}})
    assert result.success is True
    assert result.data == {"id": 1}


def test_non_empty_error_path_is_a_failure() -> None:
    result = compile_endpoint(response_mapping={"error_path": "errors"}).map_response(
        {"errors": [{"message": "Field 'x' doesn't exist"}, {"message": "Bad id"}]}
    )
    assert result.success is False
    assert result.error_message == "Field 'x' doesn't exist; Bad id"


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_empty_error_path_is_a_success(empty: Any) -> None:
    result = compile_endpoint(response_mapping={"error_path": "errors"}).map_response(
        {"errors": empty, "data": 1}
    )
    assert result.success is True


def test_error_object_message_is_used() -> None:
    result = compile_endpoint(response_mapping={"error_path": "error"}).map_response(
        {"error": {"type": "card_error", "message": "Your card was declined."}}
    )
    assert result.error_message == "Your card was declined."


def test_runtime_error_in_data_path_raises_mapping_error() -> None:
    compiled = compile_endpoint(response_mapping={"data_path": "length(count)"})
    with pytest.raises(MappingError) as caught:
        compiled.map_response({"count": 5})
    assert caught.value.problems[0][0] == ("data_path",)


def test_runtime_error_in_field_mapping_is_a_warning() -> None:
    compiled = compile_endpoint(
        response_mapping={"field_mappings": {"id": "id", "n": "length(count)"}}
    )
    result = compiled.map_response({"id": 1, "count": 5})
    assert result.data == {"id": 1}
    assert result.warnings[0][0] == ("data", "n")


def test_render_summary_uses_template() -> None:
    compiled = compile_endpoint(summary_template="{{ count }} charges, first {{ data[0].id }}")
    assert compiled.render_summary([{"id": "ch_1"}], {}) == "1 charges, first ch_1"


def test_render_summary_defaults_without_template() -> None:
    assert compile_endpoint().render_summary([1, 2, 3], {}) == "Returned 3 items."
