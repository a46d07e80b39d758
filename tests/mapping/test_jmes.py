"""Compiled JMESPath gives exactly what jmespath's interpreter gives, errors included."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptor.mapping import compile_expression
from adaptor.mapping.jmes import compile_node, compile_tree, is_false

DOCUMENTS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    0.0,
    1.5,
    "",
    "abc",
    [],
    {},
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [None, 1, None, "a", [], {}, [1, [2, 3]], False],
    [[1, 2], 3, [4, [5, 6]], [], None, "x"],
    {"a": None, "b": False, "c": 0, "d": "", "e": [], "f": {}},
    {"a": {"b": {"c": [1, 2, 3]}}, "x": "y"},
    {"a": 1, "b": True, "c": 1.0, "d": "1", "e": [1], "f": {"k": 1}, "g": 0, "h": False},
    {"foo": [{"bar": 1, "baz": "x"}, {"bar": 2}, {"baz": "y"}, None, 7, "s", []]},
    {"foo": {"a": {"bar": 1}, "b": {"bar": 2}, "c": {"other": 3}, "d": None, "e": 5}},
    {
        "people": [
            {"name": "ada", "age": 36, "tags": ["x", "y"], "active": True, "team": {"n": "a"}},
            {"name": "bob", "age": 17, "tags": [], "active": False, "team": None},
            {"name": "cy", "age": None, "tags": ["z"], "active": True},
            {"name": "di", "age": 50.5, "active": 0, "team": {"n": "b"}},
            {"name": "", "age": "40", "tags": None},
            {"age": 36, "name": "eve", "score": [1, 2]},
        ],
        "meta": {"count": 6, "next": None, "sep": ", "},
    },
    {"data": [{"balance": b, "currency": "usd", "id": i} for i, b in enumerate([5, 0, -3])]},
    {"data": [{"balance": "5"}, {"balance": None}, {"balance": True}, {"balance": 2.5}, {}]},
    {"nested": [[[1, 2], [3]], [[4]], [], [[5, 6], 7]], "words": ["b", "a", "c"]},
    {"matrix": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "s": "hello", "n": -4.25},
    {"reservations": [{"instances": [{"state": "running"}, {"state": "stopped"}]}, {}]},
    OrderedDict([("z", 1), ("a", [1, 2])]),
]

EXPRESSIONS: list[str] = [
    # fields, subexpressions, missing keys and nulls
    "a",
    "a.b",
    "a.b.c",
    "a.b.c[0]",
    "x",
    "foo.bar",
    "foo.a.bar",
    "meta.next",
    "meta.next.deeper",
    '"a"',
    "@",
    "@.a",
    # indices and slices, negative steps
    "[0]",
    "[-1]",
    "[10]",
    "[-20]",
    "a[0]",
    "foo[0].bar",
    "matrix[1][2]",
    "matrix[-1][-1]",
    "[0:3]",
    "[::2]",
    "[::-1]",
    "[5:1:-1]",
    "[-3:]",
    "[:-3]",
    "[-1:-4:-1]",
    "[100:]",
    "[1:1]",
    "matrix[::-1][0]",
    "matrix[:2][1]",
    "words[::-1]",
    "nested[1:][0]",
    # projections (skipping nulls), nested and flattened
    "[*]",
    "foo[*].bar",
    "foo[*].baz",
    "foo[*]",
    "people[*].name",
    "people[*].team.n",
    "people[*].tags[0]",
    "people[*].tags[*]",
    "people[*].[name, age]",
    "people[*].{n: name, t: team.n}",
    "matrix[*][0]",
    "matrix[*][1:]",
    "reservations[*].instances[*].state",
    "reservations[].instances[].state",
    "*",
    "*.bar",
    "foo.*",
    "foo.*.bar",
    "foo.*.*",
    "meta.*",
    "a.*.c",
    "@.*",
    # flatten of mixed lists
    "[]",
    "[][]",
    "nested[]",
    "nested[][]",
    "nested[][][]",
    "foo[]",
    "foo[].bar",
    "people[].tags[]",
    "matrix[]",
    "matrix[][0]",
    "[].foo",
    # filters with comparisons, and/or/not
    "[?@ > `3`]",
    "[?@ == `1`]",
    "[?@ != `null`]",
    "[?@]",
    "[?!@]",
    "foo[?bar]",
    "foo[?bar == `1`]",
    "foo[?bar > `1`].baz",
    "foo[?baz == 'x'].bar",
    "foo[?baz < 'y']",
    "foo[?!bar]",
    "people[?age > `20`].name",
    "people[?age >= `36`]",
    "people[?age < `40` && active].name",
    "people[?age < `40` || !active].name",
    "people[?!(age > `20`)].name",
    "people[?active == `true`].name",
    "people[?active == `1`].name",
    "people[?active != `false`].name",
    "people[?age == `36.0`].name",
    "people[?tags == `[]`].name",
    "people[?team == `null`].name",
    "people[?team.n == 'a'].team",
    "people[?contains(tags, 'x')].name",
    "people[?length(tags || `[]`) > `0`].name",
    "people[?starts_with(name, 'a')].name",
    "people[?name > 'b'].name",
    "people[?age > name].name",
    "data[?balance > `0`].{id: id, c: currency}",
    "data[?balance > `0`].balance",
    "data[?balance >= `-1.5`].id",
    "people[?age <= `36`].name",
    "people[?age < `20.5`]",
    "people[?name > `1`].name",
    "people[?active > `0`].name",
    "foo[?bar != `1`]",
    "data[?balance >= `0`]",
    "data[?balance == `0`]",
    "data[?balance]",
    "matrix[?[0] > `1`]",
    "matrix[?@[0] > `1`][1]",
    "people[?tags][].tags[]",
    "[?a == `null`]",
    "a[?b]",
    # comparators outside filters
    "a == b",
    "a == c",
    "a == d",
    "a != b",
    "a < c",
    "a <= c",
    "a > `0`",
    "b == `true`",
    "g == h",
    "g == `false`",
    "e == `[1]`",
    "e == `[true]`",
    'f == `{"k": 1}`',
    "a < d",
    "d < d",
    "x < `1`",
    "`1` < `2`",
    "`null` == `null`",
    "'a' < 'b'",
    "`1.5` >= `1`",
    # truthiness of or / and / not
    "a || b",
    "b || c",
    "c || d",
    "d || e",
    "e || f",
    "f || 'z'",
    "a && b",
    "c && a",
    "d && a",
    "e && a",
    "!a",
    "!b",
    "!c",
    "!d",
    "!e",
    "!f",
    "!g",
    "!x",
    "!`0.0`",
    "!`[0]`",
    "x || `null`",
    "people[0].name && people[1].name",
    "(a || x).b",
    # multi-selects on null and non-objects
    "{a: a, b: b}",
    "{x: x}",
    "[a, b]",
    "[x, y]",
    "x.{a: a}",
    "x.[a]",
    "a.{b: b}",
    "foo.{first: a.bar, missing: z}",
    "{a: a, a: b}",
    "[[a], {c: c}]",
    "people[0].{name: name, first_tag: tags[0], n: team.n}",
    # literals, raw strings, pipes
    '`"lit"`',
    '`[1, 2, {"a": null}]`',
    '`{"a": [true, false]}`',
    "`null`",
    "`-0.5`",
    "'raw string'",
    "'it\\'s'",
    "foo | [0]",
    "foo[*] | [0]",
    "foo[*].bar | [0]",
    "people[*].name | [1:3]",
    "people | length(@)",
    "a | b | c",
    "*.bar | [0]",
    # functions
    "length(@)",
    "length(people)",
    "length(s)",
    "length(a)",
    "length(x)",
    "abs(n)",
    "abs(a)",
    "avg(matrix[0])",
    "avg(`[]`)",
    "ceil(n)",
    "floor(n)",
    "contains(words, 'a')",
    "contains(s, 'ell')",
    "contains(s, `1`)",
    "contains(n, 'a')",
    "contains(`[1, 2]`, `1.0`)",
    "ends_with(s, 'lo')",
    "starts_with(s, 'he')",
    "starts_with(n, 'a')",
    "join(', ', words)",
    "join(meta.sep, people[*].name)",
    "join(', ', matrix[0])",
    "join(`1`, words)",
    "keys(meta)",
    "keys(@)",
    "keys(words)",
    "values(meta)",
    "values(`[]`)",
    "max(matrix[0])",
    "max(words)",
    "min(`[]`)",
    "min(people[*].age)",
    'merge(meta, `{"count": 0}`)',
    "not_null(x, a, b)",
    "not_null(x, y)",
    "not_null(meta.next, meta.count)",
    "reverse(words)",
    "reverse(s)",
    "reverse(n)",
    "sort(words)",
    "sort(matrix[0])",
    "sort(people[*].name)",
    "sort_by(people, &name)[*].name",
    "sort_by(people, &age)",
    "sort_by(`[]`, &a)",
    "max_by(people[?age != null && age != '40'], &age).name",
    "min_by(people, &name).name",
    "map(&name, people)",
    "map(&[0], matrix)",
    "sum(matrix[1])",
    "sum(`[]`)",
    "to_array(a)",
    "to_array(e)",
    "to_string(a)",
    "to_string(s)",
    "to_string(meta)",
    "to_string(`null`)",
    "to_number('12')",
    "to_number('1.5')",
    "to_number('abc')",
    "to_number(a)",
    "to_number(b)",
    "to_number(e)",
    "type(@)",
    "type(a)",
    "type(x)",
    "length(people[?active])",
    "people[?length(name) > `2`].name",
    "people[?type(age) == 'number'].age",
    "to_string(people[0].age)",
    "join('-', sort(words))",
]


def _same(left: Any, right: Any) -> bool:
    """Equal with types: 1, 1.0 and True differ, and so do lists and tuples."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, float) and left != left:
        return right != right
    return bool(left == right)


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        return "value", run()
    except Exception as exc:  # the interpreter's own errors are part of its behaviour
        return type(exc).__name__, str(exc)


def _check(expression: str, document: Any) -> None:
    parsed = jmespath.compile(expression)
    compiled = compile_node(parsed.parsed)
    expected = _outcome(lambda: jmespath.search(expression, document))
    got = _outcome(lambda: compiled(document))
    assert got[0] == expected[0], (expression, document, got, expected)
    assert _same(got[1], expected[1]), (expression, document, got, expected)


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_compiled_matches_interpreter_on_every_document(expression: str) -> None:
    for document in DOCUMENTS:
        _check(expression, document)


def test_expression_search_uses_the_compiled_form() -> None:
    expression = compile_expression("people[?age > `20`].name")
    document = {"people": [{"name": "ada", "age": 36}, {"name": "bob", "age": 17}, {}]}
    assert expression.search(document) == ["ada"]


def test_literals_are_the_trees_own_objects_like_the_interpreter() -> None:
    parsed = jmespath.compile("`[1, 2]`")
    assert compile_node(parsed.parsed)(None) is parsed.parsed["value"]


def test_unknown_node_types_fall_back_to_the_interpreter() -> None:
    node = {"type": "no_such_node", "children": []}
    with pytest.raises(NotImplementedError):
        compile_node(node)(None)


def test_deep_trees_fall_back_to_the_interpreter() -> None:
    node: dict[str, Any] = {"type": "identity", "children": []}
    for _ in range(5000):
        node = {"type": "not_expression", "children": [node]}
    evaluate = compile_tree(node)
    assert callable(evaluate)


def test_truthiness_matches_the_interpreter() -> None:
    interpreter = jmespath.visitor.TreeInterpreter()
    for value in [*DOCUMENTS, (), 0.0, "0", [0], {"": None}, OrderedDict()]:
        assert is_false(value) == interpreter._is_false(value), value


def test_expression_references_keep_the_interpreters_type_checks() -> None:
    document = {"a": [{"k": 1}, {"k": "x"}]}
    for expression in ("sort_by(a, &k)", "max_by(a, &k)", "min_by(a, &missing)"):
        _check(expression, document)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=5)
    | st.sampled_from([0.0, 1.0, 1.5, -2.5])
    | st.sampled_from(["", "a", "b", "ab", "0", "1"])
)
KEYS = st.sampled_from(["a", "b", "c", "foo", "bar", "age", "name", "tags"])
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)

PROPERTY_EXPRESSIONS = [
    "a",
    "a.b.c",
    "[0].a",
    "[-1]",
    "[1:4:2]",
    "[::-1]",
    "[*].a",
    "[*].a.b",
    "[*][0]",
    "*.a",
    "*.*",
    "[]",
    "[][]",
    "[].a",
    "a[]",
    "[?a]",
    "[?a > `1`]",
    "[?a <= `1.5`].b",
    "[?a < `0`]",
    "[?a >= b]",
    "[?a == b]",
    "[?a != `0`]",
    "[?a == `false`]",
    "[?!a]",
    "[?a && b].c",
    "[?a || b]",
    "[?a < 'b']",
    "a || b",
    "a && b",
    "!a",
    "{x: a, y: b.c}",
    "[a, b, c]",
    "a.{x: b}",
    "foo[*].{n: name, t: tags[0]}",
    "a | [0]",
    "[*].a | [0]",
    "length(@)",
    "length(a)",
    "contains(@, `1`)",
    "contains(a, 'a')",
    "starts_with(a, 'a')",
    "to_string(a)",
    "to_number(a)",
    "not_null(a, b, `7`)",
    "keys(@)",
    "values(a)",
    "join(',', @)",
    "sort_by(@, &a)",
    "type(a)",
    "[?type(a) == 'number'] | length(@)",
]


@settings(max_examples=300, deadline=None)
@given(document=JSON)
def test_compiled_matches_interpreter_on_generated_documents(document: Any) -> None:
    for expression in PROPERTY_EXPRESSIONS:
        _check(expression, document)


def test_every_listed_expression_is_compiled_without_the_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(node: Any) -> Any:
        raise AssertionError(f"fell back to the interpreter for {node['type']}")

    monkeypatch.setattr("adaptor.mapping.jmes._interpreted", refuse)
    for expression in [*EXPRESSIONS, *PROPERTY_EXPRESSIONS]:
        compile_node(jmespath.compile(expression).parsed)
