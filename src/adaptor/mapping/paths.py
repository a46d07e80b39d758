"""Reading values with JMESPath and writing them at dot paths.

Two path languages meet here:

- *Source* expressions are JMESPath (`customer.emails[0]`, `` `"usd"` ``, `join(' ', [a, b])`).
  They are compiled once into an `Expression`, whose syntax tree becomes Python closures
  (`adaptor.mapping.jmes`) with exactly JMESPath's results.
- *Target* paths are dot paths with list indices (`items[0].name`, `a.b[2].c`). Any character
  other than `.`, `[` and `]` may appear in a name, so header-like keys (`X-Request-Id`) work.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final

import jmespath
from jmespath import exceptions as jmespath_exceptions
from jmespath import functions as jmespath_functions
from jmespath.parser import ParsedResult

from adaptor.mapping.errors import Loc, MappingConfigError, PathError
from adaptor.mapping.jmes import Evaluator, compile_tree

Segment = str | int

MAX_EXPRESSION_LENGTH: Final = 2048
"""Longest JMESPath expression accepted in a configuration."""

MAX_LIST_INDEX: Final = 10_000
"""Largest list index a target path may name (setting pads the list up to it)."""

_DIGITS = re.compile(r"[0-9]+")

_FUNCTIONS: Final = jmespath_functions.Functions.FUNCTION_TABLE


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# Dot paths (targets)


@functools.lru_cache(maxsize=4096)
def parse_path(path: str) -> tuple[Segment, ...]:
    """Split a dot path such as `a.b[2].c` into `("a", "b", 2, "c")`.

    Raises `PathError` with a message naming the position of the first mistake.
    """
    if not path:
        raise PathError("path is empty")
    segments: list[Segment] = []
    i, n = 0, len(path)
    expect_name = path[0] != "["
    while True:
        if expect_name:
            j = i
            while j < n and path[j] not in ".[]":
                j += 1
            if j == i:
                raise PathError(f"expected a name at position {i} in {path!r}")
            segments.append(path[i:j])
            i = j
        while i < n and path[i] == "[":
            close = path.find("]", i)
            if close == -1:
                raise PathError(f"unclosed '[' at position {i} in {path!r}")
            inner = path[i + 1 : close]
            if not _DIGITS.fullmatch(inner):
                raise PathError(
                    f"list index {inner!r} at position {i} in {path!r} "
                    "must be a non-negative integer"
                )
            index = int(inner)
            if index > MAX_LIST_INDEX:
                raise PathError(f"list index {index} in {path!r} exceeds {MAX_LIST_INDEX}")
            segments.append(index)
            i = close + 1
        if i == n:
            return tuple(segments)
        if path[i] != ".":
            raise PathError(f"unexpected {path[i]!r} at position {i} in {path!r}")
        i += 1
        if i == n:
            raise PathError(f"{path!r} ends with '.'")
        expect_name = True


def format_path(segments: tuple[Segment, ...] | Loc) -> str:
    """Render segments back into a dot path (`("a", 0, "b")` → `a[0].b`)."""
    out: list[str] = []
    for seg in segments:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        elif out:
            out.append(f".{seg}")
        else:
            out.append(seg)
    return "".join(out)


def get_path(data: Any, segments: tuple[Segment, ...], default: Any = None) -> Any:
    """The value at `segments` in `data`, or `default` where it is missing or null."""
    current = data
    for seg in segments:
        if isinstance(seg, str):
            if not isinstance(current, dict):
                return default
            current = current.get(seg)
        else:
            if not isinstance(current, list) or seg >= len(current):
                return default
            current = current[seg]
        if current is None:
            return default
    return current


def _conflict(segments: tuple[Segment, ...], upto: int, found: Any) -> PathError:
    wanted = "an object" if isinstance(segments[upto + 1], str) else "an array"
    where = format_path(segments[: upto + 1])
    return PathError(
        f"cannot set {format_path(segments)!r}: {where!r} is {json_type(found)}, not {wanted}"
    )


def set_path(
    target: Any, segments: tuple[Segment, ...], value: Any, *, copy_containers: bool = False
) -> None:
    """Set `value` at `segments` inside `target`, creating objects and arrays on the way.

    Lists are padded with nulls up to an index. An existing value of the wrong type in the way
    raises `PathError`. With `copy_containers`, every existing container below `target` on the
    path is shallow-copied before it is written to, so data shared with the caller (a parsed
    upstream body kept as `raw_response`) is never modified; `target` itself must be owned.
    """
    if not segments:
        raise PathError("path is empty")
    root_kind = dict if isinstance(segments[0], str) else list
    if not isinstance(target, root_kind):
        raise PathError(
            f"cannot set {format_path(segments)!r}: the target is {json_type(target)}, "
            f"not {'an object' if root_kind is dict else 'an array'}"
        )
    current: Any = target
    last = len(segments) - 1
    for pos in range(last):
        seg = segments[pos]
        wants_dict = isinstance(segments[pos + 1], str)
        if isinstance(seg, int):
            if len(current) <= seg:
                current.extend([None] * (seg + 1 - len(current)))
            child = current[seg]
        else:
            child = current.get(seg)
        if child is None:
            child = {} if wants_dict else []
        elif wants_dict:
            if not isinstance(child, dict):
                raise _conflict(segments, pos, child)
            if copy_containers:
                child = dict(child)
        else:
            if not isinstance(child, list):
                raise _conflict(segments, pos, child)
            if copy_containers:
                child = list(child)
        current[seg] = child
        current = child
    seg = segments[last]
    if isinstance(seg, int):
        if len(current) <= seg:
            current.extend([None] * (seg + 1 - len(current)))
    current[seg] = value


def delete_path(
    target: Any, segments: tuple[Segment, ...], *, copy_containers: bool = False
) -> None:
    """Remove the value at `segments` (a list element becomes null); missing paths are ignored."""
    current: Any = target
    for pos in range(len(segments) - 1):
        seg = segments[pos]
        child = get_path(current, (seg,))
        if not isinstance(child, dict | list):
            return
        if copy_containers:
            child = dict(child) if isinstance(child, dict) else list(child)
            current[seg] = child
        current = child
    seg = segments[-1]
    if isinstance(seg, str) and isinstance(current, dict):
        current.pop(seg, None)
    elif isinstance(seg, int) and isinstance(current, list) and seg < len(current):
        current[seg] = None


def set_nested_value(target: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at the dot path `path` (e.g. `items[0].name`) inside `target`."""
    set_path(target, parse_path(path), value)


def find_path_conflicts(paths: dict[tuple[Segment, ...], Loc]) -> list[tuple[Loc, str]]:
    """Problems for target paths that cannot all be set in one document.

    `a` and `a.b` clash (a value and an object at the same place); so do `a[0]` and `a.b`
    (an array and an object). `paths` maps each parsed path to the loc reported for it.
    """
    problems: list[tuple[Loc, str]] = []
    ordered = sorted(paths, key=len)
    seen: dict[tuple[Segment, ...], tuple[Segment, ...]] = {}
    kinds: dict[tuple[Segment, ...], tuple[type, tuple[Segment, ...]]] = {}
    for path in ordered:
        clash: str | None = None
        for depth in range(1, len(path)):
            prefix = path[:depth]
            if prefix in seen:
                clash = f"{format_path(path)!r} is inside {format_path(prefix)!r}, also a target"
                break
        if clash is None:
            for depth in range(len(path)):
                parent, kind = path[:depth], type(path[depth])
                known = kinds.setdefault(parent, (kind, path))
                if known[0] is not kind:
                    clash = (
                        f"{format_path(path)!r} and {format_path(known[1])!r} need "
                        f"{format_path(parent) or 'the root'!r} to be both an array and an object"
                    )
                    break
        if clash is not None:
            problems.append((paths[path], clash))
        seen[path] = path
    return problems


# --------------------------------------------------------------------------------------------
# JMESPath expressions (sources)


def _check_functions(node: Any) -> list[str]:
    """Messages for unknown functions and wrong argument counts anywhere in the tree."""
    messages: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current["type"] == "function_expression":
            name = current["value"]
            entry = _FUNCTIONS.get(name)
            if entry is None:
                messages.append(f"unknown function {name}()")
            else:
                signature = entry["signature"]
                given = len(current["children"])
                variadic = bool(signature) and bool(signature[-1].get("variadic"))
                if (variadic and given < len(signature)) or (
                    not variadic and given != len(signature)
                ):
                    at_least = "at least " if variadic else ""
                    messages.append(
                        f"{name}() takes {at_least}{len(signature)} argument(s), {given} given"
                    )
        stack.extend(current["children"])
    return messages


class Expression:
    """A compiled JMESPath expression.

    `search(data)` evaluates it: the syntax tree is compiled once into Python closures
    (`adaptor.mapping.jmes`) that give exactly what `jmespath.search` gives, only faster. It
    raises `jmespath.exceptions.JMESPathError` for runtime type errors, e.g. `length(@)` on a
    number.
    """

    __slots__ = ("parsed", "search", "source")

    search: Evaluator

    def __init__(self, parsed: ParsedResult) -> None:
        self.parsed = parsed
        self.source = parsed.expression
        # An instance attribute rather than a method: one call less per evaluation.
        self.search = compile_tree(parsed.parsed)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


LITERAL_HINT = 'a constant is a JMESPath literal in backticks: `"text"`, `42`, `true`'
"""Appended to a parse error: a plain constant is the usual cause."""


def compile_expression(source: str) -> Expression:
    """Compile and check a JMESPath expression; raises `MappingConfigError` with loc `()`."""
    if not isinstance(source, str):
        raise MappingConfigError([((), f"expected a JMESPath string, got {json_type(source)}")])
    if not source.strip():
        raise MappingConfigError([((), "JMESPath expression is empty")])
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise MappingConfigError(
            [((), f"JMESPath expression is longer than {MAX_EXPRESSION_LENGTH} characters")]
        )
    try:
        parsed = jmespath.compile(source)
    except jmespath_exceptions.JMESPathError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MappingConfigError(
            [((), f"invalid JMESPath {source!r}: {detail} ({LITERAL_HINT})")]
        ) from None
    except RecursionError:
        raise MappingConfigError([((), f"JMESPath {source!r} is nested too deeply")]) from None
    messages = _check_functions(parsed.parsed)
    if messages:
        raise MappingConfigError([((), f"invalid JMESPath {source!r}: {m}") for m in messages])
    return Expression(parsed)


class ExpressionCache:
    """Compiled expressions by source text, bounded; the oldest entry goes first when full."""

    def __init__(self, max_size: int = 4096) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._max_size = max_size
        self._compiled: dict[str, Expression] = {}

    def get(self, source: str) -> Expression:
        """The compiled expression for `source`, compiling it on first use."""
        found = self._compiled.get(source)
        if found is None:
            found = compile_expression(source)
            if len(self._compiled) >= self._max_size:
                del self._compiled[next(iter(self._compiled))]
            self._compiled[source] = found
        return found

    def __len__(self) -> int:
        return len(self._compiled)


_DEFAULT_CACHE: Final = ExpressionCache()


def extract_value(
    data: Any, expression: str, default: Any = None, *, cache: ExpressionCache | None = None
) -> Any:
    """Evaluate the JMESPath `expression` on `data`; `default` where the result is null.

    Raises `MappingConfigError` for an invalid expression and
    `jmespath.exceptions.JMESPathError` for a runtime type error (e.g. `length(@)` on a number).
    """
    result = (cache or _DEFAULT_CACHE).get(expression).search(data)
    return default if result is None else result
