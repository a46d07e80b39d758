"""Dot paths and JMESPath extraction."""

from __future__ import annotations

import jmespath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptor.mapping import (
    ExpressionCache,
    MappingConfigError,
    PathError,
    compile_expression,
    extract_value,
    parse_path,
    set_nested_value,
)
from adaptor.mapping.paths import delete_path, find_path_conflicts, format_path, get_path, set_path


def test_parse_path_splits_names_and_indices() -> None:
    assert parse_path("a.b[2].c") == ("a", "b", 2, "c")


def test_parse_path_accepts_consecutive_indices() -> None:
    assert parse_path("grid[1][0]") == ("grid", 1, 0)


def test_parse_path_accepts_header_like_names() -> None:
    assert parse_path("X-Request-Id") == ("X-Request-Id",)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("", "empty"),
        ("a..b", "expected a name"),
        ("a.", "ends with '.'"),
        (".a", "expected a name"),
        ("a[", "unclosed"),
        ("a[x]", "non-negative integer"),
        ("a[-1]", "non-negative integer"),
        ("a[1]b", "unexpected 'b'"),
        ("a]", "unexpected ']'"),
        ("a[999999]", "exceeds"),
    ],
)
def test_parse_path_rejects_malformed_paths(path: str, fragment: str) -> None:
    with pytest.raises(PathError, match=fragment):
        parse_path(path)


def test_format_path_renders_indices_in_brackets() -> None:
    assert format_path(("items", 0, "name")) == "items[0].name"


def test_set_nested_value_creates_objects() -> None:
    target: dict[str, object] = {}
    set_nested_value(target, "customer.address.city", "Oslo")
    assert target == {"customer": {"address": {"city": "Oslo"}}}


def test_set_nested_value_pads_lists_with_none() -> None:
    target: dict[str, object] = {}
    set_nested_value(target, "items[2].name", "pen")
    assert target == {"items": [None, None, {"name": "pen"}]}


def test_set_nested_value_keeps_existing_siblings() -> None:
    target: dict[str, object] = {"a": {"x": 1}, "items": [{"id": 1}]}
    set_nested_value(target, "a.y", 2)
    set_nested_value(target, "items[0].name", "pen")
    assert target == {"a": {"x": 1, "y": 2}, "items": [{"id": 1, "name": "pen"}]}


def test_set_nested_value_rejects_setting_inside_a_string() -> None:
    target: dict[str, object] = {"a": "text"}
    with pytest.raises(PathError, match="'a' is string, not an object"):
        set_nested_value(target, "a.b", 1)


def test_set_nested_value_rejects_index_into_an_object() -> None:
    target: dict[str, object] = {"a": {"b": 1}}
    with pytest.raises(PathError, match="'a' is object, not an array"):
        set_nested_value(target, "a[0]", 1)


def test_set_path_with_copy_containers_leaves_shared_data_untouched() -> None:
    shared = {"customer": {"email": "A@X"}}
    owned = dict(shared)
    set_path(owned, ("customer", "email"), "a@x", copy_containers=True)
    assert shared == {"customer": {"email": "A@X"}}
    assert owned == {"customer": {"email": "a@x"}}


def test_delete_path_removes_a_key() -> None:
    target = {"a": {"b": 1, "c": 2}}
    delete_path(target, ("a", "b"))
    assert target == {"a": {"c": 2}}


def test_get_path_returns_default_for_missing_null_and_out_of_range() -> None:
    data = {"a": None, "items": [1]}
    assert get_path(data, ("a",), "d") == "d"
    assert get_path(data, ("items", 5), "d") == "d"
    assert get_path(data, ("missing", "x"), "d") == "d"


def test_find_path_conflicts_reports_value_and_object_at_same_place() -> None:
    problems = find_path_conflicts({("a",): ("a",), ("a", "b"): ("a.b",)})
    assert [loc for loc, _ in problems] == [("a.b",)]


def test_find_path_conflicts_reports_array_and_object_at_same_place() -> None:
    problems = find_path_conflicts({("a", 0): ("x",), ("a", "b"): ("y",)})
    assert len(problems) == 1
    assert "both an array and an object" in problems[0][1]


def test_extract_value_reads_nested_fields() -> None:
    assert extract_value({"a": {"b": [10, 20]}}, "a.b[1]") == 20


def test_extract_value_returns_default_when_missing() -> None:
    assert extract_value({"a": {}}, "a.b.c", default="none") == "none"


def test_extract_value_returns_default_for_null() -> None:
    assert extract_value({"a": None}, "a", default=0) == 0


def test_extract_value_evaluates_literals() -> None:
    assert extract_value({}, '`"usd"`') == "usd"


def test_extract_value_evaluates_functions() -> None:
    assert extract_value({"a": "x", "b": "y"}, "join('-', [a, b])") == "x-y"


def test_plain_chain_on_wrong_type_gives_none_like_jmespath() -> None:
    expression = compile_expression("a.b[0]")
    assert expression.search({"a": "text"}) is None
    assert expression.search({"a": {"b": {"0": 1}}}) is None


def test_negative_index_matches_jmespath() -> None:
    assert compile_expression("items[-1]").search({"items": [1, 2, 3]}) == 3


def test_compile_expression_rejects_syntax_errors() -> None:
    with pytest.raises(MappingConfigError, match="invalid JMESPath"):
        compile_expression("a[")


def test_compile_expression_rejects_unknown_functions() -> None:
    with pytest.raises(MappingConfigError, match=r"unknown function nope\(\)"):
        compile_expression("nope(@)")


def test_compile_expression_rejects_wrong_argument_count() -> None:
    with pytest.raises(MappingConfigError, match=r"join\(\) takes 2 argument"):
        compile_expression("join(@)")


def test_compile_expression_rejects_overlong_expressions() -> None:
    with pytest.raises(MappingConfigError, match="longer than"):
        compile_expression("a" * 5000)


def test_expression_cache_reuses_compiled_expressions() -> None:
    cache = ExpressionCache()
    assert cache.get("a.b") is cache.get("a.b")


def test_expression_cache_evicts_oldest_when_full() -> None:
    cache = ExpressionCache(max_size=2)
    first = cache.get("a")
    cache.get("b")
    cache.get("c")
    assert len(cache) == 2
    assert cache.get("a") is not first


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_segments = st.lists(st.one_of(_names, st.integers(min_value=0, max_value=5)), max_size=5)


@st.composite
def _dot_paths(draw: st.DrawFn) -> str:
    path = draw(_names)
    for segment in draw(_segments):
        path += f"[{segment}]" if isinstance(segment, int) else f".{segment}"
    return path


@given(path=_dot_paths(), value=st.one_of(st.integers(), st.text(max_size=5), st.booleans()))
def test_set_then_extract_round_trips(path: str, value: object) -> None:
    target: dict[str, object] = {}
    set_nested_value(target, path, value)
    assert extract_value(target, path) == value
    assert get_path(target, parse_path(path)) == value


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "A"]), children, max_size=3)
    ),
    max_leaves=10,
)


@given(path=_dot_paths(), data=_json)
def test_plain_chain_lookup_agrees_with_jmespath(path: str, data: object) -> None:
    assert compile_expression(path).search(data) == jmespath.search(path, data)
