"""JMESPath syntax trees compiled into Python closures.

jmespath's `TreeInterpreter` walks the syntax tree on every search: one dictionary lookup and
one method call per node and per element, which makes a filter-and-reshape over a hundred items
cost over a millisecond. `compile_node` turns the tree into nested closures once, so a search
is only the calls that do the work.

The closures reproduce the interpreter exactly (they are checked against `jmespath.search` by
the test suite): null propagation, projections dropping nulls, ordering comparisons only between
numbers or strings, equality that keeps `0`/`1` apart from `false`/`true`, JMESPath truthiness
(empty string, array and object are false, `0` is true), and function type errors. Functions
with a fast path evaluate it only for argument types they are sure of and otherwise hand the
arguments to jmespath's own implementation, which computes the result or raises its error. Any
node type not handled here is evaluated by the interpreter for that subtree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from numbers import Number
from typing import Any, Final

from jmespath import functions as jmespath_functions
from jmespath import visitor as jmespath_visitor

Evaluator = Callable[[Any], Any]
"""A compiled expression: the document in, the result out."""

_INTERPRETER: Final = jmespath_visitor.TreeInterpreter()
_FUNCTIONS: Final = jmespath_functions.Functions()
_CALL: Final = _FUNCTIONS.call_function

_ORDERING: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "lt": operator.lt,
    "gt": operator.gt,
    "lte": operator.le,
    "gte": operator.ge,
}


def _is_actual_number(value: Any) -> bool:
    """A number that is not a boolean (Python counts `True` as the integer 1)."""
    kind = type(value)
    if kind is int or kind is float:
        return True
    if kind is bool:
        return False
    return isinstance(value, Number)


def _is_comparable(value: Any) -> bool:
    """Whether ordering comparisons apply: numbers and strings only."""
    return _is_actual_number(value) or isinstance(value, str)


def _equals(left: Any, right: Any) -> Any:
    """JMESPath equality: Python's, except that 0 and 1 never equal false and true."""
    if type(left) is bool:
        if _is_actual_number(right) and right in (0, 1):
            return False
    elif type(right) is bool and _is_actual_number(left) and left in (0, 1):
        return False
    return left == right


def is_false(value: Any) -> bool:
    """JMESPath falsiness: null, false, and the empty string, array and object."""
    if value is None or value is False:
        return True
    kind = type(value)
    if kind is str or kind is list or kind is dict:
        return not value
    if kind is int or kind is float or kind is bool:
        return False
    # Anything else is compared the way the interpreter does (an empty tuple is true).
    return bool(value == "" or value == [] or value == {})


class _CompiledVisitor(jmespath_visitor.Visitor):
    """Stands in for the interpreter inside an expression reference (`&field`).

    jmespath's functions (`sort_by`, `max_by`, `map`, ...) evaluate an expref as
    `expref.visit(expref.expression, element)`; routing that call to the compiled closure keeps
    the `_Expression` type their signature checks expect.
    """

    def __init__(self, evaluate: Evaluator) -> None:
        super().__init__()
        self._evaluate = evaluate

    def visit(self, node: Any, *args: Any, **kwargs: Any) -> Any:
        return self._evaluate(args[0])


def _interpreted(node: Any) -> Evaluator:
    """The interpreter on this subtree: the fallback for anything not compiled."""
    visit = _INTERPRETER.visit

    def evaluate(value: Any) -> Any:
        return visit(node, value)

    return evaluate


def _identity(value: Any) -> Any:
    return value


def _field(name: str) -> Evaluator:
    def field(value: Any) -> Any:
        try:
            return value.get(name)
        except AttributeError:
            return None

    return field


def _fields(names: tuple[str, ...]) -> Evaluator:
    # A null input gives null for every field and index, so the chain can stop early.
    def fields(value: Any) -> Any:
        for name in names:
            try:
                value = value.get(name)
            except AttributeError:
                return None
        return value

    return fields


def _index(position: int) -> Evaluator:
    def index(value: Any) -> Any:
        if not isinstance(value, list):
            return None
        try:
            return value[position]
        except IndexError:
            return None

    return index


def _chain(steps: list[Evaluator]) -> Evaluator:
    if len(steps) == 1:
        return steps[0]
    if len(steps) == 2:
        first, second = steps

        def chain2(value: Any) -> Any:
            return second(first(value))

        return chain2
    ordered = tuple(steps)

    def chain(value: Any) -> Any:
        for step in ordered:
            value = step(value)
        return value

    return chain


def _sequence(node: Any) -> Evaluator:
    """subexpression, index_expression and pipe: each child applied to the previous result."""
    children = node["children"]
    if all(child["type"] == "field" for child in children):
        return _fields(tuple(child["value"] for child in children))
    return _chain([compile_node(child) for child in children])


def _comparator(node: Any) -> Evaluator:
    op = node["value"]
    left_node, right_node = node["children"]
    left, right = compile_node(left_node), compile_node(right_node)
    if op == "eq":

        def eq(value: Any) -> Any:
            return _equals(left(value), right(value))

        return eq
    if op == "ne":

        def ne(value: Any) -> Any:
            return not _equals(left(value), right(value))

        return ne
    compare = _ORDERING.get(op)
    if compare is None:
        return _interpreted(node)
    if (
        left_node["type"] == "field"
        and right_node["type"] == "literal"
        and _is_actual_number(right_node["value"])
    ):
        # `balance > `0``, the usual filter: one name against a number, in one closure.
        name, number = left_node["value"], right_node["value"]

        def field_against_number(value: Any) -> Any:
            try:
                found = value.get(name)
            except AttributeError:
                return None
            kind = type(found)
            if kind is int or kind is float:
                return compare(found, number)
            if found is None or kind is bool:
                return None
            if _is_comparable(found):
                return compare(found, number)
            return None

        return field_against_number
    if right_node["type"] == "literal" and _is_comparable(right_node["value"]):
        # `price > `0``: the literal side is constant and known to be comparable.
        constant = right_node["value"]

        def ordered_literal(value: Any) -> Any:
            found = left(value)
            if not _is_comparable(found):
                return None
            return compare(found, constant)

        return ordered_literal

    def ordered(value: Any) -> Any:
        first, second = left(value), right(value)
        if not (_is_comparable(first) and _is_comparable(second)):
            return None
        return compare(first, second)

    return ordered


def _projection(node: Any) -> Evaluator:
    base_node, right_node = node["children"]
    base = compile_node(base_node)
    if right_node["type"] == "identity":

        def project_identity(value: Any) -> Any:
            found = base(value)
            if not isinstance(found, list):
                return None
            return [element for element in found if element is not None]

        return project_identity
    right = compile_node(right_node)

    def project(value: Any) -> Any:
        found = base(value)
        if not isinstance(found, list):
            return None
        return _collect(found, right)

    return project


def _collect(elements: Iterable[Any], right: Evaluator) -> list[Any]:
    """A projection's right side over each element, nulls left out."""
    collected = []
    for element in elements:
        current = right(element)
        if current is not None:
            collected.append(current)
    return collected


def _value_projection(node: Any) -> Evaluator:
    base_node, right_node = node["children"]
    base, right = compile_node(base_node), compile_node(right_node)

    def project_values(value: Any) -> Any:
        found = base(value)
        try:
            elements = found.values()
        except AttributeError:
            return None
        return _collect(elements, right)

    return project_values


def _filter_projection(node: Any) -> Evaluator:
    base_node, right_node, condition_node = node["children"]
    base, condition = compile_node(base_node), compile_node(condition_node)
    right = compile_node(right_node)
    # A comparison answers true, false or null, whose Python truth is JMESPath's.
    compared = condition_node["type"] == "comparator"
    falsy = is_false

    def project_filtered(value: Any) -> Any:
        found = base(value)
        if not isinstance(found, list):
            return None
        collected = []
        for element in found:
            kept = condition(element)
            if kept if compared else not falsy(kept):
                current = right(element)
                if current is not None:
                    collected.append(current)
        return collected

    return project_filtered


def _flatten(node: Any) -> Evaluator:
    base = compile_node(node["children"][0])

    def flatten(value: Any) -> Any:
        found = base(value)
        if not isinstance(found, list):
            return None
        merged: list[Any] = []
        for element in found:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        return merged

    return flatten


def _slice(node: Any) -> Evaluator:
    bounds = slice(*node["children"])

    def take_slice(value: Any) -> Any:
        if not isinstance(value, list):
            return None
        return value[bounds]

    return take_slice


def _multi_select_dict(node: Any) -> Evaluator:
    pairs = node["children"]
    if any(pair["type"] != "key_val_pair" for pair in pairs):
        return _interpreted(node)
    if all(pair["children"][0]["type"] == "field" for pair in pairs):
        # `{id: id, email: email}`: plain lookups, the shape of most reshaping expressions.
        names = tuple((pair["value"], pair["children"][0]["value"]) for pair in pairs)

        def select_fields(value: Any) -> Any:
            if value is None:
                return None
            try:
                get = value.get
            except AttributeError:
                return dict.fromkeys(key for key, _ in names)
            return {key: get(name) for key, name in names}

        return select_fields
    compiled = tuple((pair["value"], compile_node(pair["children"][0])) for pair in pairs)

    def select(value: Any) -> Any:
        if value is None:
            return None
        return {key: evaluate(value) for key, evaluate in compiled}

    return select


def _multi_select_list(node: Any) -> Evaluator:
    compiled = tuple(compile_node(child) for child in node["children"])

    def select_list(value: Any) -> Any:
        if value is None:
            return None
        return [evaluate(value) for evaluate in compiled]

    return select_list


def _or(node: Any) -> Evaluator:
    left, right = (compile_node(child) for child in node["children"])

    def either(value: Any) -> Any:
        matched = left(value)
        if is_false(matched):
            matched = right(value)
        return matched

    return either


def _and(node: Any) -> Evaluator:
    left, right = (compile_node(child) for child in node["children"])

    def both(value: Any) -> Any:
        matched = left(value)
        if is_false(matched):
            return matched
        return right(value)

    return both


def _not(node: Any) -> Evaluator:
    child = compile_node(node["children"][0])

    def negate(value: Any) -> Any:
        found = child(value)
        if _is_actual_number(found) and found == 0:
            # `!0` is false: 0 is not a false value in JMESPath.
            return False
        return not found

    return negate


def _literal(node: Any) -> Evaluator:
    # The interpreter returns the tree's own object, not a copy; so does this.
    constant = node["value"]

    def literal(value: Any) -> Any:
        return constant

    return literal


def _expref(node: Any) -> Evaluator:
    child = node["children"][0]
    reference = jmespath_visitor._Expression(child, _CompiledVisitor(compile_node(child)))

    def expref(value: Any) -> Any:
        return reference

    return expref


# Function fast paths, each taken only for argument types it handles exactly as jmespath does.
# `None` means "not sure": the arguments then go to jmespath's implementation.
def _fast_length(args: list[Any]) -> Any:
    (subject,) = args
    kind = type(subject)
    return len(subject) if kind is str or kind is list or kind is dict else None


def _fast_contains(args: list[Any]) -> Any:
    subject, search = args
    kind = type(subject)
    if kind is list or (kind is str and type(search) is str):
        return search in subject
    return None


def _fast_starts_with(args: list[Any]) -> Any:
    subject, prefix = args
    if type(subject) is str and type(prefix) is str:
        return subject.startswith(prefix)
    return None


def _fast_ends_with(args: list[Any]) -> Any:
    subject, suffix = args
    if type(subject) is str and type(suffix) is str:
        return subject.endswith(suffix)
    return None


def _fast_to_string(args: list[Any]) -> Any:
    (subject,) = args
    return subject if type(subject) is str else None


def _fast_to_number(args: list[Any]) -> Any:
    (subject,) = args
    kind = type(subject)
    return subject if kind is int or kind is float else None


def _fast_join(args: list[Any]) -> Any:
    separator, items = args
    if type(separator) is str and type(items) is list and all(type(i) is str for i in items):
        return separator.join(items)
    return None


def _fast_keys(args: list[Any]) -> Any:
    (subject,) = args
    return list(subject.keys()) if type(subject) is dict else None


def _fast_values(args: list[Any]) -> Any:
    (subject,) = args
    return list(subject.values()) if type(subject) is dict else None


def _fast_not_null(args: list[Any]) -> Any:
    for argument in args:
        if argument is not None:
            return argument
    return None


_FAST_FUNCTIONS: Final[dict[str, tuple[int, Callable[[list[Any]], Any]]]] = {
    "length": (1, _fast_length),
    "contains": (2, _fast_contains),
    "starts_with": (2, _fast_starts_with),
    "ends_with": (2, _fast_ends_with),
    "to_string": (1, _fast_to_string),
    "to_number": (1, _fast_to_number),
    "join": (2, _fast_join),
    "keys": (1, _fast_keys),
    "values": (1, _fast_values),
}
# Results a fast path can legitimately return as None would be ambiguous with "not sure";
# none of the functions above returns null for the argument types they accept.


def _function(node: Any) -> Evaluator:
    name = node["value"]
    args = tuple(compile_node(child) for child in node["children"])
    if name == "not_null" and args:
        # No type checks and at least one argument: the result is the first non-null one.
        def not_null(value: Any) -> Any:
            return _fast_not_null([evaluate(value) for evaluate in args])

        return not_null
    fast = _FAST_FUNCTIONS.get(name)
    if fast is not None and fast[0] == len(args):
        shortcut = fast[1]

        def call_fast(value: Any) -> Any:
            resolved = [evaluate(value) for evaluate in args]
            result = shortcut(resolved)
            if result is None:
                return _CALL(name, resolved)
            return result

        return call_fast

    def call(value: Any) -> Any:
        return _CALL(name, [evaluate(value) for evaluate in args])

    return call


_COMPILERS: Final[dict[str, Callable[[Any], Evaluator]]] = {
    "subexpression": _sequence,
    "index_expression": _sequence,
    "pipe": _sequence,
    "comparator": _comparator,
    "projection": _projection,
    "value_projection": _value_projection,
    "filter_projection": _filter_projection,
    "flatten": _flatten,
    "slice": _slice,
    "multi_select_dict": _multi_select_dict,
    "multi_select_list": _multi_select_list,
    "or_expression": _or,
    "and_expression": _and,
    "not_expression": _not,
    "literal": _literal,
    "expref": _expref,
    "function_expression": _function,
}


def compile_node(node: Any) -> Evaluator:
    """A closure equivalent to `TreeInterpreter().visit(node, value)` for every value."""
    kind = node["type"]
    if kind == "field":
        return _field(node["value"])
    if kind == "index":
        return _index(node["value"])
    if kind == "current" or kind == "identity":
        return _identity
    compiler = _COMPILERS.get(kind)
    if compiler is None:
        return _interpreted(node)
    return compiler(node)


def compile_tree(node: Any) -> Evaluator:
    """`compile_node`, or the interpreter for the whole tree if it is too deep to compile."""
    try:
        return compile_node(node)
    except RecursionError:
        return _interpreted(node)


def _builds_object(node: Any) -> bool:
    """Whether every object the node evaluates to is a new dict made by the evaluation."""
    kind = node["type"]
    if kind == "multi_select_dict":
        return True
    if kind in ("subexpression", "index_expression", "pipe"):
        return _builds_object(node["children"][-1])
    return False


def returns_fresh_objects(node: Any) -> bool:
    """Whether the objects a search returns, or the objects in the list it returns, are all
    built by the search (`{id: id}`, `items[?x].{id: id}`) rather than taken from the input.

    Callers may then modify those objects' top level in place instead of copying them first.
    """
    if _builds_object(node):
        return True
    kind = node["type"]
    if kind in ("projection", "filter_projection", "value_projection"):
        return _builds_object(node["children"][1])
    if kind in ("subexpression", "index_expression", "pipe"):
        return returns_fresh_objects(node["children"][-1])
    return False
