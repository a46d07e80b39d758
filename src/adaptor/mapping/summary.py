"""The one-line `metadata.summary` of an execution, from a sandboxed Jinja template.

Templates come from tenants, so they run in Jinja's `ImmutableSandboxedEnvironment` (no reaching
Python internals, no modifying the data) with further limits that keep rendering proportional to
the data: no macros, includes or nested/recursive loops (checked at compile time), `range`
capped, string/list repetition and `%` formatting refused, only side-effect-free filters, and
output cut at `MAX_SUMMARY_LENGTH`. Any failure while
rendering falls back to the default summary; rendering never raises.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from typing import Any, Final

from jinja2 import TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from adaptor.mapping.errors import MappingConfigError

MAX_TEMPLATE_LENGTH: Final = 2000
MAX_SUMMARY_LENGTH: Final = 1000
MAX_RANGE: Final = 1000
_MAX_BUILT_LENGTH: Final = 100_000
_MAX_FIELDS_NAMED: Final = 8

_ALLOWED_FILTERS: Final = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "dictsort", "first", "float", "groupby",
        "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min",
        "reject", "rejectattr", "replace", "reverse", "round", "select", "selectattr", "sort",
        "string", "sum", "title", "trim", "truncate", "unique", "upper", "wordcount",
    }
)  # fmt: skip
_FORBIDDEN_NODES: Final = (
    nodes.Macro,
    nodes.CallBlock,
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Extends,
    nodes.Block,
)


def _capped_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    return result


def _capped_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * max(len(new) - len(old), 0) > _MAX_BUILT_LENGTH:
        raise SecurityError("replace() would build too long a string")
    return text.replace(old, new, -1 if count is None else count)


class _SummaryEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox (no mutating the data) with repetition, power and `%` formatting bounded."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "%":
            if isinstance(left, str):
                raise SecurityError("'%' string formatting is not available")
            return operator.mod(left, right)
        if op == "**":
            if isinstance(right, int | float) and abs(right) > 100:
                raise SecurityError("exponent too large")
            return operator.pow(left, right)
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                if len(seq) * times > _MAX_BUILT_LENGTH:
                    raise SecurityError("repetition would build too long a value")
        return operator.mul(left, right)


def build_environment() -> SandboxedEnvironment:
    """The sandboxed environment summary templates are compiled in."""
    env = _SummaryEnvironment(autoescape=False, keep_trailing_newline=False)
    env.filters = {name: env.filters[name] for name in _ALLOWED_FILTERS}
    env.filters["replace"] = _capped_replace
    env.globals = {"range": _capped_range, "dict": dict}
    return env


def _check_tree(tree: nodes.Node) -> list[str]:
    problems: list[str] = []
    for node in tree.find_all(_FORBIDDEN_NODES):
        problems.append(f"{type(node).__name__.lower()} is not available in summary templates")
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            problems.append("recursive loops are not available in summary templates")
        for child in loop.body:
            if isinstance(child, nodes.For) or any(True for _ in child.find_all(nodes.For)):
                problems.append("loops may not be nested in summary templates")
                break
    return problems


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def default_summary(data: Any) -> str:
    """A short human-readable account of `data`, e.g. `Returned 3 items.`"""
    if data is None:
        return "No data returned."
    if isinstance(data, list):
        if not data:
            return "Returned no items."
        return f"Returned {_plural(len(data), 'item')}."
    if isinstance(data, dict):
        if not data:
            return "Returned an empty record."
        names = [str(key) for key in list(data)[:_MAX_FIELDS_NAMED]]
        more = len(data) - len(names)
        listed = ", ".join(names) + (f" and {more} more" if more else "")
        return f"Returned 1 record with {'field' if len(data) == 1 else 'fields'} {listed}."
    if isinstance(data, bool):
        return f"Returned {'true' if data else 'false'}."
    text = str(data)
    if len(text) > 100:
        text = text[:99] + "…"
    return f"Returned {text}."


class SummaryTemplate:
    """A compiled summary template; `render` never raises.

    Templates see `data` (the mapped response data), `input` (the input document) and
    `count` (the number of items when `data` is a list, 1 for a record, 0 for nothing).
    """

    def __init__(self, source: str | None, environment: SandboxedEnvironment | None = None):
        self.source = source
        self._template: Any = None
        if not source:
            return
        if len(source) > MAX_TEMPLATE_LENGTH:
            raise MappingConfigError(
                [((), f"template is longer than {MAX_TEMPLATE_LENGTH} characters")]
            )
        env = environment or build_environment()
        try:
            tree = env.parse(source)
            problems = _check_tree(tree)
            if problems:
                raise MappingConfigError([((), problem) for problem in problems])
            self._template = env.from_string(tree)
        except TemplateError as exc:
            where = f" (line {exc.lineno})" if isinstance(exc, TemplateSyntaxError) else ""
            raise MappingConfigError([((), f"invalid template{where}: {exc.message}")]) from None

    def render(self, data: Any, input_document: Any = None) -> str:
        """The summary: the template's output (trimmed, capped) or the default."""
        if self._template is None:
            return default_summary(data)
        if isinstance(data, list):
            count = len(data)
        else:
            count = 0 if data is None else 1
        chunks: list[str] = []
        size = 0
        stream: Iterator[str] = iter(())
        try:
            stream = self._template.generate(data=data, input=input_document, count=count)
            for chunk in stream:
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_SUMMARY_LENGTH:
                    break
        except Exception:  # a tenant's template must never fail an execution
            return default_summary(data)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        text = "".join(chunks).strip()
        if not text:
            return default_summary(data)
        if len(text) > MAX_SUMMARY_LENGTH:
            text = text[: MAX_SUMMARY_LENGTH - 1] + "…"
        return text
