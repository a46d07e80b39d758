"""Each named transform: its params at configuration time and its values at runtime."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adaptor.mapping import MappingConfigError, TransformError, TransformRegistry
from adaptor.mapping import transforms as transforms_module

REGISTRY = TransformRegistry()


def run(name: str, value: Any, params: dict[str, Any] | None = None, context: Any = None) -> Any:
    return REGISTRY.compile(name, params).apply(value, context)


def config_locs(name: str, params: dict[str, Any] | None) -> list[tuple[str | int, ...]]:
    with pytest.raises(MappingConfigError) as caught:
        REGISTRY.compile(name, params)
    return [loc for loc, _ in caught.value.problems]


# ---- registry


def test_unknown_transform_is_rejected_with_the_available_names() -> None:
    with pytest.raises(MappingConfigError, match="unknown transform 'shout'; available: ") as e:
        REGISTRY.compile("shout", None)
    assert e.value.problems[0][0] == ("transform",)


def test_unknown_param_is_rejected() -> None:
    assert config_locs("uppercase", {"locale": "en"}) == [("params", "locale")]


def test_every_bad_param_is_reported_at_once() -> None:
    locs = config_locs("number_format", {"decimals": -1, "thousands_separator": 5, "x": 1})
    assert set(locs) == {
        ("params", "decimals"),
        ("params", "thousands_separator"),
        ("params", "x"),
    }


def test_registry_accepts_custom_transforms() -> None:
    class Reverse(transforms_module.Transform):
        name = "reverse"

        def __init__(self, params: transforms_module.Params) -> None:
            pass

        def apply(self, value: Any, context: Any) -> Any:
            return value[::-1]

    registry = TransformRegistry()
    registry.register(Reverse)
    assert registry.compile("reverse", None).apply("abc", None) == "cba"


# ---- text


def test_uppercase() -> None:
    assert run("uppercase", "ada") == "ADA"


def test_lowercase() -> None:
    assert run("lowercase", "ADA") == "ada"


def test_uppercase_of_a_number_is_a_runtime_error() -> None:
    with pytest.raises(TransformError, match="expects a string, got number"):
        run("uppercase", 5)


def test_capitalize_first_letter_only() -> None:
    assert run("capitalize", "mcDonald farm") == "McDonald farm"


def test_capitalize_words() -> None:
    assert run("capitalize", "ada lovelace", {"words": True}) == "Ada Lovelace"


def test_capitalize_rejects_non_boolean_words() -> None:
    assert config_locs("capitalize", {"words": "yes"}) == [("params", "words")]


def test_trim_whitespace() -> None:
    assert run("trim", "  x  ") == "x"


def test_trim_custom_chars() -> None:
    assert run("trim", "--x--", {"chars": "-"}) == "x"


def test_truncate_adds_suffix_when_cut() -> None:
    assert run("truncate", "abcdefgh", {"length": 5}) == "abcd…"


def test_truncate_leaves_short_text() -> None:
    assert run("truncate", "abc", {"length": 5}) == "abc"


def test_truncate_requires_length() -> None:
    assert config_locs("truncate", {}) == [("params", "length")]


def test_replace() -> None:
    assert run("replace", "a-b-c", {"old": "-", "new": "+"}) == "a+b+c"


def test_replace_requires_non_empty_old() -> None:
    assert config_locs("replace", {"old": ""}) == [("params", "old")]


# ---- dates


def test_date_format_from_iso_string() -> None:
    assert run("date_format", "2024-03-01T12:30:00Z", {"format": "%d.%m.%Y %H:%M"}) == (
        "01.03.2024 12:30"
    )


def test_date_format_from_datetime() -> None:
    assert run("date_format", datetime(2024, 3, 1), {"format": "%Y/%m/%d"}) == "2024/03/01"


def test_date_format_from_epoch_seconds() -> None:
    assert run("date_format", 1709251200, {"format": "%Y-%m-%d"}) == "2024-03-01"


def test_date_format_from_epoch_milliseconds() -> None:
    assert run("date_format", 1709251200000, {"format": "%Y-%m-%d", "unit": "ms"}) == ("2024-03-01")


def test_date_format_with_input_format() -> None:
    params = {"format": "%Y-%m-%d", "input_format": "%d/%m/%Y"}
    assert run("date_format", "01/03/2024", params) == "2024-03-01"


def test_date_format_converts_time_zone() -> None:
    params = {"format": "%H:%M", "timezone": "Europe/Berlin"}
    assert run("date_format", "2024-03-01T12:00:00Z", params) == "13:00"


def test_date_format_on_banana_is_a_runtime_error() -> None:
    with pytest.raises(TransformError, match="'banana' is not a date in ISO 8601"):
        run("date_format", "banana", {"format": "%Y"})


def test_date_format_requires_format() -> None:
    assert config_locs("date_format", {}) == [("params", "format")]


def test_date_format_rejects_unknown_time_zone() -> None:
    assert config_locs("date_format", {"format": "%Y", "timezone": "Mars/Base"}) == [
        ("params", "timezone")
    ]


def test_date_format_rejects_unknown_unit() -> None:
    assert config_locs("date_format", {"format": "%Y", "unit": "days"}) == [("params", "unit")]


def test_timestamp_to_date_defaults_to_iso_utc() -> None:
    assert run("timestamp_to_date", 1709294400) == "2024-03-01T12:00:00Z"


def test_timestamp_to_date_milliseconds_with_format() -> None:
    params = {"unit": "ms", "format": "%Y-%m-%d"}
    assert run("timestamp_to_date", 1709294400000, params) == "2024-03-01"


def test_timestamp_to_date_accepts_numeric_text() -> None:
    assert run("timestamp_to_date", "0") == "1970-01-01T00:00:00Z"


def test_timestamp_to_date_rejects_text() -> None:
    with pytest.raises(TransformError, match="expects a number"):
        run("timestamp_to_date", "yesterday")


def test_timestamp_to_date_rejects_out_of_range() -> None:
    with pytest.raises(TransformError, match="not a valid timestamp"):
        run("timestamp_to_date", 10**20)


def test_timestamp_to_date_uses_utc() -> None:
    moment = datetime.fromtimestamp(0, tz=UTC)
    assert run("timestamp_to_date", 0, {"format": "%H"}) == moment.strftime("%H")


# ---- numbers


def test_number_format_defaults() -> None:
    assert run("number_format", 1234567.891) == "1,234,567.89"


def test_number_format_rounds_half_up() -> None:
    assert run("number_format", 2.345, {"decimals": 2}) == "2.35"


def test_number_format_custom_separators() -> None:
    params = {"decimals": 1, "thousands_separator": " ", "decimal_separator": ","}
    assert run("number_format", "1234.56", params) == "1 234,6"


def test_number_format_locale() -> None:
    assert run("number_format", 1234.5, {"locale": "de_DE"}) == "1.234,50"


def test_number_format_rejects_locale_with_separators() -> None:
    assert config_locs("number_format", {"locale": "de_DE", "decimal_separator": ","}) == [
        ("params", "locale")
    ]


def test_number_format_rejects_unknown_locale() -> None:
    assert config_locs("number_format", {"locale": "xx_YY"}) == [("params", "locale")]


def test_number_format_rejects_boolean_values() -> None:
    with pytest.raises(TransformError, match="got boolean"):
        run("number_format", True)


def test_currency_format_fixed_currency() -> None:
    assert run("currency_format", 1234.5, {"currency": "USD"}) == "$1,234.50"


def test_currency_format_locale() -> None:
    assert run("currency_format", 1234.5, {"currency": "EUR", "locale": "de_DE"}) == (
        "1.234,50\xa0€"
    )


def test_currency_format_minor_units_as_stripe_sends() -> None:
    assert run("currency_format", 1999, {"currency": "usd", "minor_units": True}) == "$19.99"


def test_currency_format_minor_units_of_zero_decimal_currency() -> None:
    assert run("currency_format", 500, {"currency": "JPY", "minor_units": True}) == "¥500"


def test_currency_format_reads_currency_from_context() -> None:
    params = {"currency_field": "currency", "minor_units": True}
    assert run("currency_format", 1000, params, {"currency": "eur"}) == "€10.00"


def test_currency_format_missing_currency_in_context_is_a_runtime_error() -> None:
    with pytest.raises(TransformError, match="no valid currency code"):
        run("currency_format", 1000, {"currency_field": "currency"}, {})


def test_currency_format_rejects_unknown_currency() -> None:
    assert config_locs("currency_format", {"currency": "XYZ"}) == [("params", "currency")]


def test_currency_format_needs_exactly_one_currency_source() -> None:
    assert config_locs("currency_format", {}) == [("params", "currency")]


def test_arithmetic_add() -> None:
    assert run("arithmetic", 2, {"op": "add", "operand": 3}) == 5


def test_arithmetic_subtract() -> None:
    assert run("arithmetic", 2.5, {"op": "subtract", "operand": 1}) == 1.5


def test_arithmetic_multiply() -> None:
    assert run("arithmetic", "4", {"op": "multiply", "operand": 2.5}) == 10.0


def test_arithmetic_divide_with_decimals() -> None:
    assert run("arithmetic", 1999, {"op": "divide", "operand": 100, "decimals": 2}) == 19.99


def test_arithmetic_round_defaults_to_integer_half_up() -> None:
    assert run("arithmetic", 2.5, {"op": "round"}) == 3


def test_arithmetic_abs() -> None:
    assert run("arithmetic", -7, {"op": "abs"}) == 7


def test_arithmetic_rejects_division_by_zero_at_configuration() -> None:
    assert config_locs("arithmetic", {"op": "divide", "operand": 0}) == [("params", "operand")]


def test_arithmetic_requires_operand_for_binary_ops() -> None:
    assert config_locs("arithmetic", {"op": "add"}) == [("params", "operand")]


def test_arithmetic_rejects_unknown_op() -> None:
    assert config_locs("arithmetic", {"op": "power", "operand": 2}) == [("params", "op")]


def test_arithmetic_on_text_is_a_runtime_error() -> None:
    with pytest.raises(TransformError, match="expects a number"):
        run("arithmetic", "ten", {"op": "add", "operand": 1})


def test_to_int_from_text() -> None:
    assert run("to_int", " 42 ") == 42


def test_to_int_rejects_fractions() -> None:
    with pytest.raises(TransformError, match="not a whole number"):
        run("to_int", 4.5)


def test_to_float_from_text() -> None:
    assert run("to_float", "4.5") == 4.5


def test_to_float_rejects_nan() -> None:
    with pytest.raises(TransformError, match="finite"):
        run("to_float", "NaN")


# ---- structure


def test_concat_fields_from_context() -> None:
    params = {"fields": ["first", "last"], "separator": " "}
    assert run("concat", None, params, {"first": "Ada", "last": "Lovelace"}) == "Ada Lovelace"


def test_concat_skips_missing_parts() -> None:
    params = {"fields": ["first", "middle", "last"], "separator": " "}
    assert run("concat", None, params, {"first": "Ada", "last": "L"}) == "Ada L"


def test_concat_accepts_literals() -> None:
    params = {"fields": ["code", '`"-"`', "number"]}
    assert run("concat", None, params, {"code": "INV", "number": 7}) == "INV-7"


def test_concat_reports_bad_expression_by_index() -> None:
    assert config_locs("concat", {"fields": ["a", "b["]}) == [("params", "fields", 1)]


def test_concat_requires_fields() -> None:
    assert config_locs("concat", {"separator": " "}) == [("params", "fields")]


def test_split_on_separator() -> None:
    assert run("split", "a, b, c", {"separator": ",", "trim": True}) == ["a", "b", "c"]


def test_split_with_maxsplit() -> None:
    assert run("split", "a b c", {"maxsplit": 1}) == ["a", "b c"]


def test_join_skips_nulls() -> None:
    assert run("join", ["a", None, 3], {"separator": "/"}) == "a/3"


def test_join_of_a_string_is_a_runtime_error() -> None:
    with pytest.raises(TransformError, match="expects an array"):
        run("join", "abc")


def test_lookup_maps_values() -> None:
    assert run("lookup", "active", {"table": {"active": "Active"}}) == "Active"


def test_lookup_uses_text_of_numbers_and_booleans() -> None:
    table = {"1": "one", "true": "yes"}
    assert run("lookup", 1, {"table": table}) == "one"
    assert run("lookup", True, {"table": table}) == "yes"


def test_lookup_unmatched_keeps_value_without_default() -> None:
    assert run("lookup", "other", {"table": {"a": 1}}) == "other"


def test_lookup_unmatched_uses_default() -> None:
    assert run("lookup", "other", {"table": {"a": 1}, "default": 0}) == 0


def test_lookup_case_insensitive() -> None:
    assert run("lookup", "ACTIVE", {"table": {"Active": 1}, "case_insensitive": True}) == 1


def test_lookup_requires_table() -> None:
    assert config_locs("lookup", {"table": {}}) == [("params", "table")]


def test_default_fills_missing() -> None:
    assert run("default", None, {"value": "n/a"}) == "n/a"


def test_default_keeps_present_values() -> None:
    assert run("default", "x", {"value": "n/a"}) == "x"


def test_default_on_empty() -> None:
    assert run("default", "", {"value": "n/a", "on_empty": True}) == "n/a"


def test_default_requires_value() -> None:
    assert config_locs("default", {}) == [("params", "value")]


def test_to_string_of_structures_is_json() -> None:
    assert run("to_string", {"a": [1, True]}) == '{"a":[1,true]}'


def test_to_string_of_booleans() -> None:
    assert run("to_string", False) == "false"


@pytest.mark.parametrize(
    ("value", "expected"), [("yes", True), ("OFF", False), (1, True), (0, False), (True, True)]
)
def test_to_bool(value: Any, expected: bool) -> None:
    assert run("to_bool", value) is expected


def test_to_bool_rejects_unknown_words() -> None:
    with pytest.raises(TransformError, match="not a recognisable boolean"):
        run("to_bool", "maybe")


# ---- conditional


def test_conditional_first_matching_case_wins() -> None:
    params = {
        "cases": [
            {"when": "@ > `1000`", "then": "large"},
            {"when": "@ > `100`", "then": "medium"},
        ],
        "default": "small",
    }
    assert run("conditional", 500, params) == "medium"


def test_conditional_falls_back_to_default() -> None:
    params = {"cases": [{"when": "@ == 'a'", "then": 1}], "default": 0}
    assert run("conditional", "b", params) == 0


def test_conditional_without_default_keeps_value() -> None:
    params = {"cases": [{"when": "@ == 'a'", "then": 1}]}
    assert run("conditional", "b", params) == "b"


def test_conditional_against_context() -> None:
    params = {"cases": [{"when": "refunded", "then": "refunded"}], "against": "context"}
    assert run("conditional", "paid", params, {"refunded": True}) == "refunded"


def test_conditional_reports_each_bad_case() -> None:
    params = {"cases": [{"when": "a[", "then": 1}, {"then": 2}, {"when": "a", "then": 3, "x": 1}]}
    assert config_locs("conditional", params) == [
        ("params", "cases", 0, "when"),
        ("params", "cases", 1, "when"),
        ("params", "cases", 2, "x"),
    ]


# ---- regex_extract


def test_regex_extract_first_group_by_default() -> None:
    assert run("regex_extract", "Order #1234 shipped", {"pattern": r"#(\d+)"}) == "1234"


def test_regex_extract_whole_match_without_groups() -> None:
    assert run("regex_extract", "abc123def", {"pattern": r"\d+"}) == "123"


def test_regex_extract_named_group() -> None:
    params = {"pattern": r"(?P<user>\w+)@(?P<host>[\w.]+)", "group": "host"}
    assert run("regex_extract", "ada@example.com", params) == "example.com"


def test_regex_extract_all_matches() -> None:
    assert run("regex_extract", "a1 b22 c333", {"pattern": r"\d+", "all": True}) == [
        "1",
        "22",
        "333",
    ]


def test_regex_extract_no_match_gives_default() -> None:
    assert run("regex_extract", "abc", {"pattern": r"\d+", "default": "none"}) == "none"


def test_regex_extract_searches_numbers_as_text() -> None:
    assert run("regex_extract", 20240301, {"pattern": r"^(\d{4})"}) == "2024"


def test_regex_extract_rejects_invalid_pattern() -> None:
    assert config_locs("regex_extract", {"pattern": "(unclosed"}) == [("params", "pattern")]


def test_regex_extract_rejects_overlong_pattern() -> None:
    pattern = "a" * (transforms_module.MAX_PATTERN_LENGTH + 1)
    assert config_locs("regex_extract", {"pattern": pattern}) == [("params", "pattern")]


def test_regex_extract_rejects_missing_group() -> None:
    assert config_locs("regex_extract", {"pattern": r"(\d)", "group": 2}) == [("params", "group")]


def test_regex_extract_rejects_overlong_input() -> None:
    text = "a" * (transforms_module.MAX_REGEX_INPUT_LENGTH + 1)
    with pytest.raises(TransformError, match="exceeds"):
        run("regex_extract", text, {"pattern": "a"})


def test_regex_extract_catastrophic_pattern_times_out() -> None:
    text = "a" * 5000 + "!"
    with pytest.raises(TransformError, match="took longer than"):
        run("regex_extract", text, {"pattern": r"(a|aa)+$"})
