"""JSON Schema validation of execution input, compiled once per endpoint.

Valid documents (the common case) are checked by a `fastjsonschema` function generated at
compile time. Only when that fails does `jsonschema` walk the document to collect every error,
so a 422 names each offending field.

`fastjsonschema` implements drafts 4, 6 and 7. A schema declaring 2019-09 or 2020-12 (the
default when `$schema` is absent) that uses keywords whose meaning changed or that draft 7 does
not know (`prefixItems`, `unevaluated*`, `dependent*`, `$ref` with siblings, …) is validated by
`jsonschema` alone. So is any schema with `pattern` or `patternProperties`: those patterns come
from a tenant's config and are matched with the `regex` module under a timeout, which
`fastjsonschema` cannot do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any, Final

import fastjsonschema
import jsonschema  # ships no type information
import regex

from adaptor.mapping.errors import Loc, MappingConfigError, Problem

MAX_SCHEMA_ERRORS: Final = 100
"""Most errors reported for one document."""

MAX_PATTERN_LENGTH: Final = 500
PATTERN_TIMEOUT_SECONDS: Final = 0.05

_FAST_DRAFTS: Final = frozenset(
    {
        jsonschema.Draft4Validator,
        jsonschema.Draft6Validator,
        jsonschema.Draft7Validator,
    }
)
# Keywords draft 7 (what fastjsonschema speaks) lacks or reads differently from 2020-12.
_NEWER_KEYWORDS: Final = frozenset(
    {
        "prefixItems",
        "unevaluatedProperties",
        "unevaluatedItems",
        "dependentRequired",
        "dependentSchemas",
        "dependencies",
        "minContains",
        "maxContains",
        "$dynamicRef",
        "$dynamicAnchor",
        "$recursiveRef",
        "$recursiveAnchor",
        "$anchor",
        "$vocabulary",
    }
)
_PATTERN_KEYWORDS: Final = frozenset({"pattern", "patternProperties"})
_MESSAGE_LIMIT: Final = 300


def _walk(node: Any, loc: Loc = ()) -> Iterator[tuple[Loc, dict[str, Any]]]:
    """Every object inside a schema with its location."""
    if isinstance(node, dict):
        yield loc, node
        for key, child in node.items():
            yield from _walk(child, (*loc, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _walk(child, (*loc, index))


def _compile_patterns(schema: Any, problems: list[Problem]) -> dict[str, Any]:
    patterns: dict[str, Any] = {}

    def add(loc: Loc, source: Any) -> None:
        if not isinstance(source, str) or source in patterns:
            return
        if len(source) > MAX_PATTERN_LENGTH:
            problems.append((loc, f"pattern is longer than {MAX_PATTERN_LENGTH} characters"))
            return
        try:
            patterns[source] = regex.compile(source)
        except (regex.error, OverflowError, RecursionError, ValueError) as exc:
            problems.append((loc, f"invalid regular expression: {exc}"))

    for loc, node in _walk(schema):
        if isinstance(node.get("pattern"), str):
            add((*loc, "pattern"), node["pattern"])
        if isinstance(node.get("patternProperties"), dict):
            for key in node["patternProperties"]:
                add((*loc, "patternProperties", key), key)
    return patterns


def _plain(message: str) -> str:
    return message if len(message) <= _MESSAGE_LIMIT else message[: _MESSAGE_LIMIT - 1] + "…"


def _describe(error: Any) -> str:
    """A short message that does not echo the offending value (it may be personal data)."""
    kind, expected = error.validator, error.validator_value
    if kind == "type":
        names = expected if isinstance(expected, list) else [expected]
        return f"must be of type {' or '.join(map(str, names))}"
    if kind == "enum":
        return _plain(f"must be one of: {', '.join(repr(v) for v in expected)}")
    if kind == "const":
        return _plain(f"must be {expected!r}")
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
        return f"must be {sign[str(kind)]} {expected}"
    if kind == "multipleOf":
        return f"must be a multiple of {expected}"
    if kind in ("minLength", "maxLength"):
        return f"must be at {'least' if kind == 'minLength' else 'most'} {expected} characters"
    if kind in ("minItems", "maxItems"):
        return f"must have at {'least' if kind == 'minItems' else 'most'} {expected} items"
    if kind in ("minProperties", "maxProperties"):
        side = "least" if kind == "minProperties" else "most"
        return f"must have at {side} {expected} properties"
    if kind == "pattern":
        return error.message if "in time" in error.message else _plain(f"must match {expected!r}")
    if kind == "format":
        return f"must be a valid {expected}"
    if kind == "uniqueItems":
        return "must not contain duplicates"
    if kind in ("anyOf", "oneOf"):
        which = "exactly one" if kind == "oneOf" else "at least one"
        return f"must match {which} of the allowed shapes"
    if kind == "not":
        return "must not match the excluded shape"
    if kind == "additionalProperties":
        return "is not allowed"
    return _plain(error.message)


def _safe_keywords(patterns: dict[str, Any]) -> dict[str, Callable[..., Iterator[Any]]]:
    """`pattern`, `patternProperties` and `additionalProperties` with bounded matching, and
    one error per unexpected property (located at that property)."""

    def search(source: str, text: str) -> bool | None:
        compiled = patterns.get(source)
        if compiled is None:
            compiled = patterns[source] = regex.compile(source)
        try:
            return compiled.search(text, timeout=PATTERN_TIMEOUT_SECONDS) is not None
        except TimeoutError:
            return None

    def pattern(validator: Any, source: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string"):
            found = search(source, instance)
            if found is None:
                yield jsonschema.ValidationError("could not be checked against its pattern in time")
            elif not found:
                yield jsonschema.ValidationError(f"does not match {source!r}")

    def pattern_properties(
        validator: Any, props: dict[str, Any], instance: Any, schema: Any
    ) -> Iterator[Any]:
        if not validator.is_type(instance, "object"):
            return
        for source, subschema in props.items():
            for key, value in instance.items():
                if search(source, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=source)

    def additional_properties(
        validator: Any, allowed: Any, instance: Any, schema: Any
    ) -> Iterator[Any]:
        if not validator.is_type(instance, "object"):
            return
        known = schema.get("properties", {})
        sources = list(schema.get("patternProperties", {}))
        extras = [
            key
            for key in instance
            if key not in known and not any(search(source, key) for source in sources)
        ]
        if validator.is_type(allowed, "object"):
            for key in extras:
                yield from validator.descend(instance[key], allowed, path=key)
        elif not allowed:
            for key in extras:
                yield jsonschema.ValidationError("is not allowed", path=[key])

    return {
        "pattern": pattern,
        "patternProperties": pattern_properties,
        "additionalProperties": additional_properties,
    }


class CompiledSchema:
    """A JSON Schema compiled once; `validate` returns every problem as `(loc, msg)`.

    Raises `MappingConfigError` (locs relative to the schema) when the schema itself is
    invalid, uses a remote `$ref`, or holds an unusable pattern.
    """

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        self.schema = schema
        problems: list[Problem] = []
        if not isinstance(schema, Mapping | bool):
            raise MappingConfigError([((), "must be a JSON Schema object")])
        base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        meta = base(base.META_SCHEMA, format_checker=base.FORMAT_CHECKER)
        for error in islice(meta.iter_errors(schema), MAX_SCHEMA_ERRORS):
            message = f"invalid schema: {_plain(error.message)}"
            problems.append((tuple(error.absolute_path), message))
        keywords: set[str] = set()
        for loc, node in _walk(schema):
            keywords.update(key for key in node if isinstance(key, str))
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                problems.append(((*loc, "$ref"), "only local references ('#/...') are allowed"))
        patterns = _compile_patterns(schema, problems)
        if problems:
            raise MappingConfigError(problems)

        cls = jsonschema.validators.extend(base, _safe_keywords(patterns))
        self._validator = cls(schema, format_checker=base.FORMAT_CHECKER)
        self._fast: Callable[[Any], Any] | None = None
        uses_refs_with_siblings = any("$ref" in node and len(node) > 1 for _, node in _walk(schema))
        fast_ok = not (keywords & _PATTERN_KEYWORDS) and (
            base in _FAST_DRAFTS or not (keywords & _NEWER_KEYWORDS or uses_refs_with_siblings)
        )
        if fast_ok:
            try:
                self._fast = fastjsonschema.compile(
                    schema if isinstance(schema, bool) else dict(schema), use_default=False
                )
            except Exception:  # anything it cannot generate code for is checked by jsonschema
                self._fast = None

    @property
    def uses_fast_path(self) -> bool:
        """Whether valid documents are accepted by the generated validator."""
        return self._fast is not None

    def validate(self, document: Any) -> list[Problem]:
        """Every problem with `document` (empty when valid), at most `MAX_SCHEMA_ERRORS`."""
        fast_problem: Problem | None = None
        if self._fast is not None:
            try:
                self._fast(document)
                return []
            except fastjsonschema.JsonSchemaValueException as exc:
                name = str(exc.name or "data")
                message = str(exc.message)
                if message.startswith(name):
                    message = message[len(name) :].strip()
                fast_problem = (tuple((exc.path or ["data"])[1:]), _plain(message))
        problems = self._all_errors(document)
        # The two libraries check a few formats differently; never let a rejection go unnamed.
        if fast_problem is not None and not any(
            loc[: len(fast_problem[0])] == fast_problem[0] for loc, _ in problems
        ):
            problems.append(fast_problem)
        return problems

    def _all_errors(self, document: Any) -> list[Problem]:
        problems: list[Problem] = []
        seen: set[tuple[Loc, str]] = set()
        for error in self._validator.iter_errors(document):
            path: Loc = tuple(error.absolute_path)
            if error.validator == "required" and isinstance(error.instance, dict):
                for name in error.validator_value:
                    if name not in error.instance:
                        entry = ((*path, name), "is required")
                        if entry not in seen:
                            seen.add(entry)
                            problems.append(entry)
            else:
                entry = (path, _describe(error))
                if entry not in seen:
                    seen.add(entry)
                    problems.append(entry)
            if len(problems) >= MAX_SCHEMA_ERRORS:
                break
        return problems[:MAX_SCHEMA_ERRORS]
