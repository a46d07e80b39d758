"""`metadata.summary`: sandboxed templates and the default wording."""

from __future__ import annotations

import pytest

from adaptor.mapping import MappingConfigError, SummaryTemplate, default_summary
from adaptor.mapping.summary import MAX_SUMMARY_LENGTH


def test_default_summary_of_a_list() -> None:
    assert default_summary([1] * 100) == "Returned 100 items."


def test_default_summary_of_one_item() -> None:
    assert default_summary([1]) == "Returned 1 item."


def test_default_summary_of_an_empty_list() -> None:
    assert default_summary([]) == "Returned no items."


def test_default_summary_of_a_record() -> None:
    assert default_summary({"id": 1, "email": "a", "name": "b"}) == (
        "Returned 1 record with fields id, email, name."
    )


def test_default_summary_of_a_wide_record_lists_a_few_fields() -> None:
    record = {f"f{i}": i for i in range(12)}
    assert default_summary(record).endswith("f7 and 4 more.")


def test_default_summary_of_nothing() -> None:
    assert default_summary(None) == "No data returned."


def test_template_sees_data_input_and_count() -> None:
    template = SummaryTemplate("{{ count }} orders for {{ input.user.name }}: {{ data[0].id }}")
    assert template.render([{"id": "o1"}], {"user": {"name": "Ada"}}) == "1 orders for Ada: o1"


def test_template_does_not_escape_html() -> None:
    assert SummaryTemplate("{{ data }}").render("<b>&</b>") == "<b>&</b>"


def test_undefined_values_render_empty() -> None:
    assert SummaryTemplate("Name: {{ data.missing }}.").render({}) == "Name: ."


def test_render_error_falls_back_to_default() -> None:
    assert SummaryTemplate("{{ data.a.b.c() }}").render({"a": {}}) == (
        "Returned 1 record with field a."
    )


def test_empty_output_falls_back_to_default() -> None:
    assert SummaryTemplate("{% if false %}x{% endif %}").render([1, 2]) == "Returned 2 items."


def test_output_is_capped() -> None:
    text = SummaryTemplate("{% for i in range(1000) %}0123456789{% endfor %}").render(None)
    assert len(text) == MAX_SUMMARY_LENGTH
    assert text.endswith("…")


def test_syntax_error_is_rejected_at_compile_time() -> None:
    with pytest.raises(MappingConfigError, match="invalid template"):
        SummaryTemplate("{{ data")


def test_unknown_filter_is_rejected_at_compile_time() -> None:
    with pytest.raises(MappingConfigError, match="No filter named 'center'"):
        SummaryTemplate("{{ data|center(1000000000) }}")


def test_nested_loops_are_rejected() -> None:
    with pytest.raises(MappingConfigError, match="may not be nested"):
        SummaryTemplate("{% for a in data %}{% for b in data %}{% endfor %}{% endfor %}")


def test_macros_are_rejected() -> None:
    with pytest.raises(MappingConfigError, match="macro is not available"):
        SummaryTemplate("{% macro f() %}{% endmacro %}")


def test_sandbox_blocks_internals() -> None:
    rendered = SummaryTemplate("{{ data.__class__.__mro__ }}").render({"a": 1})
    assert "class" not in rendered


def test_sandbox_blocks_mutating_the_data() -> None:
    data = {"a": 1}
    SummaryTemplate("{{ data.update({'b': 2}) }}").render(data)
    assert data == {"a": 1}


def test_large_repetition_falls_back_to_default() -> None:
    assert SummaryTemplate("{{ 'x' * 1000000000 }}").render([]) == "Returned no items."


def test_large_range_falls_back_to_default() -> None:
    assert SummaryTemplate("{% for i in range(10**9) %}{% endfor %}").render([]) == (
        "Returned no items."
    )


def test_string_percent_formatting_falls_back_to_default() -> None:
    assert SummaryTemplate("{{ '%999999999d' % 1 }}").render([]) == "Returned no items."
