"""`MappingEngine`: compiles an endpoint's mappings once, then maps requests and responses.

`MappingEngine.compile_endpoint` does everything expensive (JMESPath, JSON Schema, template and
transform-param compilation) and reports every configuration mistake at once. The resulting
`CompiledEndpoint` is what the execution pipeline calls per request:

    validate_input(document)  → [(loc, msg)]          the endpoint's validation_schema
    map_request(document)     → MappedRequest         path/query/headers/body from the input
    map_response(body)        → MappedResponse        success, data, error message, warnings
    render_summary(data, doc) → str                   metadata.summary

Failure policy:
- configuration mistakes raise `MappingConfigError` from `compile_endpoint` (a 422 at save time);
- request mapping problems (a required value missing, a path placeholder without a value, an
  expression failing on the input) are collected and raised together as `MappingError`;
- a transform that fails on a value keeps the original value and adds a warning (the spec's
  "TransformError: use original value"), so one odd record does not fail a whole execution;
- response problems that leave no meaningful result (success/error/data paths failing to
  evaluate) raise `MappingError`; per-field problems become warnings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

from jmespath.exceptions import JMESPathError

from adaptor.domain.integration import EndpointConfig, TransformRule
from adaptor.mapping.adf import AdfToText, TextToAdf
from adaptor.mapping.errors import (
    Loc,
    MappingConfigError,
    MappingError,
    PathError,
    Problem,
    TransformError,
)
from adaptor.mapping.jmes import returns_fresh_objects
from adaptor.mapping.paths import (
    Expression,
    ExpressionCache,
    Segment,
    delete_path,
    find_path_conflicts,
    get_path,
    json_type,
    parse_path,
    set_path,
)
from adaptor.mapping.schema import CompiledSchema
from adaptor.mapping.summary import SummaryTemplate
from adaptor.mapping.transforms import DEFAULT_TRANSFORMS, Transform, TransformRegistry

REQUEST_SECTIONS: Final = ("path_params", "query_params", "headers", "body")
MAX_WARNINGS: Final = 50
"""Most warnings kept per mapping; the rest are counted in one closing warning."""
MAX_ERROR_MESSAGE_LENGTH: Final = 500

WHOLE_BODY: Final = "@"
"""A request body target meaning the whole body: the object found is merged in at the root
(named body targets win), for APIs whose body is the record itself (Salesforce sObjects)."""
_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Failures a transform may surface besides TransformError; all mean "cannot handle this value".
_TRANSFORM_FAILURES: Final = (TransformError, ValueError, TypeError, ArithmeticError, JMESPathError)


# --------------------------------------------------------------------------------------------
# Results


@dataclass(slots=True)
class MappedRequest:
    """The request an endpoint's request mapping produced from an input document.

    `path` is the endpoint path with every placeholder filled (percent-encoded). Path params
    and headers are text; query params keep numbers and lists (booleans become `true`/
    `false`); `body` is a nested object built from the body dot paths (empty when nothing was
    mapped). `warnings` lists transforms that failed and kept their original value.
    """

    path: str
    path_params: dict[str, str]
    query_params: dict[str, Any]
    headers: dict[str, str]
    body: dict[str, Any]
    warnings: list[Problem] = field(default_factory=list)


@dataclass(slots=True)
class MappedResponse:
    """The outcome of an endpoint's response mapping on a parsed upstream body.

    `success` is false when `success_path` is falsy or `error_path` holds a non-empty value;
    `error_message` then says why and `data` is None. `warnings` locate per-field problems,
    e.g. `(("data", 3, "amount"), "currency_format failed: …")`.
    """

    success: bool
    data: Any
    error_message: str | None = None
    warnings: list[Problem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MappingRule:
    """One rule for `MappingEngine.apply_mapping`: read `source_path` (JMESPath), optionally
    transform, and write at `target_path` (dot path); `default` when nothing is found."""

    source_path: str
    target_path: str
    transform: str | None = None
    params: Mapping[str, Any] | None = None
    default: Any = None
    required: bool = False


class _Warnings:
    """Collects warnings up to `MAX_WARNINGS`, then only counts them."""

    __slots__ = ("dropped", "items")

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.dropped = 0

    def add(self, loc: Loc, message: str) -> None:
        if len(self.items) < MAX_WARNINGS:
            self.items.append((loc, message))
        else:
            self.dropped += 1

    def result(self) -> list[Problem]:
        if self.dropped:
            return [*self.items, ((), f"{self.dropped} more warnings not shown")]
        return self.items


# --------------------------------------------------------------------------------------------
# Compiled pieces


@dataclass(frozen=True, slots=True)
class _Source:
    target: tuple[Segment, ...]
    expression: Expression


@dataclass(frozen=True, slots=True)
class _Rule:
    section: str
    path: tuple[Segment, ...]
    transform: Transform
    condition: Expression | None
    key: str | None = None
    """The field name when `path` is one name (`balance`): read and written directly."""


def _truthy(value: Any) -> bool:
    """Falsy: null, false, 0, and empty strings, arrays and objects."""
    return bool(value)


def _text(value: Any) -> str | None:
    """Text for a path parameter or header value; None for arrays and objects."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_query_value(item) for item in value]
    return value


def _error_text(value: Any) -> str:
    """A readable message from whatever an upstream put at its error path."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list):
        text = "; ".join(_error_text(item) for item in value[:5] if item)
        if len(value) > 5:
            text += f"; and {len(value) - 5} more"
    elif isinstance(value, dict):
        for key in ("message", "error_description", "detail", "error", "title", "code"):
            if value.get(key):
                return _error_text(value[key])
        text = ", ".join(f"{k}={v}" for k, v in list(value.items())[:5])
    else:
        text = str(value)
    if len(text) > MAX_ERROR_MESSAGE_LENGTH:
        text = text[: MAX_ERROR_MESSAGE_LENGTH - 1] + "…"
    return text


def _owned_default(value: Any) -> Any:
    """A default value safe to place into one output (mutable defaults are copied)."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


class CompiledEndpoint:
    """An endpoint's mappings, schema and summary template, compiled and checked once.

    Build it with `MappingEngine.compile_endpoint`. Instances are immutable after
    construction and safe to share between concurrent executions.
    """

    def __init__(
        self,
        endpoint: EndpointConfig,
        *,
        path_parts: tuple[tuple[bool, str], ...],
        request_sources: dict[str, tuple[_Source, ...]],
        request_rules: tuple[_Rule, ...],
        required: tuple[tuple[str, tuple[Segment, ...]], ...],
        success_path: Expression | None,
        error_path: Expression | None,
        data_path: Expression | None,
        field_mappings: tuple[_Source, ...],
        response_rules: tuple[_Rule, ...],
        default_values: tuple[tuple[tuple[Segment, ...], Any], ...],
        schema: CompiledSchema | None,
        summary: SummaryTemplate,
        cache_key_fields: tuple[tuple[str, Expression], ...],
    ) -> None:
        self.endpoint = endpoint
        self._path_parts = path_parts
        self._placeholders = tuple(text for is_name, text in path_parts if is_name)
        self._request_sources = request_sources
        self._request_rules = request_rules
        self._required = required
        self._success_path = success_path
        self._error_path = error_path
        self._data_path = data_path
        self._field_mappings = field_mappings
        # Flat targets (`email`, not `customer.email`) take the direct-assignment path.
        self._flat_fields = tuple(
            (src.target[0], src.expression)
            for src in field_mappings
            if len(src.target) == 1 and isinstance(src.target[0], str)
        )
        if len(self._flat_fields) != len(field_mappings):
            self._flat_fields = ()
        self._response_rules = response_rules
        # Rules on one field name without a condition (most rules) run in `_map_item`'s own
        # loop instead of through `_apply_rule`: this is per item of every list response.
        self._simple_rules: tuple[tuple[str, Transform], ...] | None = (
            tuple((rule.key, rule.transform) for rule in response_rules if rule.key is not None)
            if all(rule.key is not None and rule.condition is None for rule in response_rules)
            else None
        )
        self._default_values = default_values
        # Items the data_path builds itself (`items[*].{id: id}`) belong to this mapping, so
        # transformations may write into them without copying each one first.
        self._owned_items = data_path is not None and returns_fresh_objects(data_path.parsed.parsed)
        self._schema = schema
        self._summary = summary
        self._cache_key_fields = cache_key_fields

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The `{placeholder}` names in the endpoint path, in order."""
        return self._placeholders

    # ---------------------------------------------------------------------------- input

    def validate_input(self, document: Any) -> list[Problem]:
        """Every way `document` violates the endpoint's `validation_schema` (empty if none)."""
        if self._schema is None:
            return []
        return self._schema.validate(document)

    def cache_key_values(self, document: Any) -> dict[str, Any]:
        """`cache_config.cache_key_fields` evaluated (as JMESPath) on the input document."""
        values: dict[str, Any] = {}
        for name, expression in self._cache_key_fields:
            try:
                values[name] = expression.search(document)
            except JMESPathError:
                values[name] = None
        return values

    # ---------------------------------------------------------------------------- request

    def map_request(self, document: Any) -> MappedRequest:
        """Map the input document onto path params, query params, headers and body.

        Missing (null) values are left out. Request transformations then run (conditions and
        JMESPath params see the input document), after which required targets and path
        placeholders are checked. Raises `MappingError` naming every problem.
        """
        problems: list[Problem] = []
        warnings = _Warnings()
        sections: dict[str, dict[str, Any]] = {name: {} for name in REQUEST_SECTIONS}
        for section, sources in self._request_sources.items():
            target = sections[section]
            for source in sources:
                try:
                    value = source.expression.search(document)
                except JMESPathError as exc:
                    problems.append(
                        (
                            (section, *source.target),
                            f"could not evaluate {source.expression.source!r}: {exc}",
                        )
                    )
                    continue
                if value is None:
                    continue
                if section == "body" and not source.target:
                    if not isinstance(value, dict):
                        problems.append(
                            (
                                ("body",),
                                f"{WHOLE_BODY!r} must map to an object, got {json_type(value)}",
                            )
                        )
                        continue
                    for key, item in value.items():
                        target.setdefault(key, item)
                elif section == "body":
                    set_path(target, source.target, value)
                else:
                    target[str(source.target[0])] = value

        for rule in self._request_rules:
            self._apply_rule(
                rule, sections[rule.section], document, (rule.section,), warnings, own=True
            )

        path_params: dict[str, str] = {}
        for name, value in sections["path_params"].items():
            text = _text(value)
            if text is None:
                problems.append(
                    (("path_params", name), f"must be one value, got {json_type(value)}")
                )
            else:
                path_params[name] = text
        headers: dict[str, str] = {}
        for name, value in sections["headers"].items():
            text = _text(value)
            if text is None:
                problems.append((("headers", name), f"must be one value, got {json_type(value)}"))
            elif "\r" in text or "\n" in text:
                problems.append((("headers", name), "must not contain line breaks"))
            else:
                headers[name] = text
        query = {name: _query_value(value) for name, value in sections["query_params"].items()}

        reported: set[Loc] = {loc for loc, _ in problems}
        for section, required in self._required:
            loc: Loc = (section, *required)
            if loc not in reported and get_path(sections[section], required) is None:
                found = self._describe_source(section, required)
                problems.append((loc, f"is required; {found}"))
                reported.add(loc)
        for name in self._placeholders:
            loc = ("path_params", name)
            if loc not in reported and name not in path_params:
                found = self._describe_source("path_params", (name,))
                problems.append((loc, f"is required by the endpoint path; {found}"))
                reported.add(loc)
        if problems:
            raise MappingError(problems)

        path = "".join(
            quote(path_params[text], safe="") if is_name else text
            for is_name, text in self._path_parts
        )
        return MappedRequest(
            path=path,
            path_params=path_params,
            query_params=query,
            headers=headers,
            body=sections["body"],
            warnings=warnings.result(),
        )

    def _describe_source(self, section: str, path: tuple[Segment, ...]) -> str:
        for source in self._request_sources.get(section, ()):
            if source.target == path:
                return f"nothing found at {source.expression.source!r}"
        return "no value was mapped"

    # ---------------------------------------------------------------------------- response

    def map_response(self, parsed_body: Any) -> MappedResponse:
        """Decide success, select the data and map it (per element for lists).

        `parsed_body` is not modified: mapped output is built fresh, and pass-through data
        is copied only along the paths that transformations or default values write to.
        """
        problems: list[Problem] = []
        warnings = _Warnings()
        flag = self._evaluate(self._success_path, parsed_body, "success_path", problems)
        error = self._evaluate(self._error_path, parsed_body, "error_path", problems)
        data = (
            self._evaluate(self._data_path, parsed_body, "data_path", problems)
            if self._data_path is not None
            else parsed_body
        )
        if problems:
            raise MappingError(problems)

        if _truthy(error):
            return MappedResponse(success=False, data=None, error_message=_error_text(error))
        if self._success_path is not None and not _truthy(flag):
            shown = "null" if flag is None else _error_text(flag)
            message = f"upstream reported failure ({self._success_path.source} is {shown})"
            return MappedResponse(success=False, data=None, error_message=message)

        if data is None:
            if self._data_path is not None and parsed_body is not None:
                warnings.add(("data",), f"data_path {self._data_path.source!r} matched nothing")
            return MappedResponse(success=True, data=None, warnings=warnings.result())
        if isinstance(data, list):
            mapped: Any = [
                self._map_item(item, ("data", index), warnings) for index, item in enumerate(data)
            ]
        else:
            mapped = self._map_item(data, ("data",), warnings)
        return MappedResponse(success=True, data=mapped, warnings=warnings.result())

    def _evaluate(
        self, expression: Expression | None, body: Any, name: str, problems: list[Problem]
    ) -> Any:
        if expression is None:
            return None
        try:
            return expression.search(body)
        except JMESPathError as exc:
            problems.append(((name,), f"could not evaluate {expression.source!r}: {exc}"))
            return None

    def _map_item(self, item: Any, loc: Loc, warnings: _Warnings) -> Any:
        if self._field_mappings:
            out: Any = {}
            if self._flat_fields:
                for name, expression in self._flat_fields:
                    try:
                        value = expression.search(item)
                    except JMESPathError as exc:
                        warnings.add(
                            (*loc, name), f"could not evaluate {expression.source!r}: {exc}"
                        )
                        continue
                    if value is not None:
                        out[name] = value
            else:
                for source in self._field_mappings:
                    try:
                        value = source.expression.search(item)
                    except JMESPathError as exc:
                        warnings.add(
                            (*loc, *source.target),
                            f"could not evaluate {source.expression.source!r}: {exc}",
                        )
                        continue
                    if value is not None:
                        set_path(out, source.target, value)
            owned = True
        else:
            out, owned = item, self._owned_items
        if not isinstance(out, dict) or not (self._response_rules or self._default_values):
            return out
        simple = self._simple_rules
        if simple is not None:
            # `_apply_rule` for a one-name rule without a condition, inlined.
            for key, transform in simple:
                current = out.get(key)
                if current is None and not transform.accepts_missing:
                    continue
                try:
                    result = transform.apply(current, out)
                except _TRANSFORM_FAILURES as exc:
                    warnings.add(
                        (*loc, key),
                        f"{transform.name} failed, original value kept: "
                        f"{exc or type(exc).__name__}",
                    )
                    continue
                if result is current:
                    continue
                if not owned:
                    out, owned = dict(out), True
                if result is None:
                    out.pop(key, None)
                else:
                    out[key] = result
        else:
            for rule in self._response_rules:
                updated = self._apply_rule(rule, out, out, loc, warnings, own=owned)
                owned = owned or updated is not out  # a copy was made before writing
                out = updated
        for path, default in self._default_values:
            if get_path(out, path) is None:
                if not owned:
                    out, owned = dict(out), True
                try:
                    set_path(out, path, _owned_default(default), copy_containers=True)
                except PathError as exc:
                    warnings.add((*loc, *path), f"default not applied: {exc}")
        return out

    def _apply_rule(
        self,
        rule: _Rule,
        target: dict[str, Any],
        context: Any,
        loc: Loc,
        warnings: _Warnings,
        *,
        own: bool,
    ) -> dict[str, Any]:
        """Apply one transformation rule to `target` and return it (copied first unless
        `own`); failures keep the original value and add a warning."""
        if rule.condition is not None:
            try:
                if not _truthy(rule.condition.search(context)):
                    return target
            except JMESPathError as exc:
                warnings.add(
                    (*loc, *rule.path), f"condition {rule.condition.source!r} failed: {exc}"
                )
                return target
        key = rule.key
        current = target.get(key) if key is not None else get_path(target, rule.path)
        transform = rule.transform
        if current is None and not transform.accepts_missing:
            return target
        try:
            result = transform.apply(current, context)
        except _TRANSFORM_FAILURES as exc:
            warnings.add(
                (*loc, *rule.path),
                f"{transform.name} failed, original value kept: {exc or type(exc).__name__}",
            )
            return target
        if result is current:
            return target
        if not own:
            target = dict(target)
        if key is not None:
            # One name on an object: what set_path and delete_path reduce to, without the walk.
            if result is None:
                target.pop(key, None)
            else:
                target[key] = result
            return target
        try:
            if result is None:
                delete_path(target, rule.path, copy_containers=True)
            else:
                set_path(target, rule.path, result, copy_containers=True)
        except PathError as exc:
            warnings.add((*loc, *rule.path), f"{transform.name} result not set: {exc}")
        return target

    # ---------------------------------------------------------------------------- summary

    def render_summary(self, data: Any, input_document: Any = None) -> str:
        """`metadata.summary` for `data`: the endpoint's template, or a default. Never raises."""
        return self._summary.render(data, input_document)


# --------------------------------------------------------------------------------------------
# Engine


class _Compiler:
    """Compiles one endpoint, collecting every problem with its loc."""

    def __init__(self, engine: MappingEngine) -> None:
        self.engine = engine
        self.problems: list[Problem] = []

    def expression(self, loc: Loc, source: Any) -> Expression | None:
        try:
            return self.engine.compile_expression(source)
        except MappingConfigError as exc:
            self.problems.extend(exc.prefixed(loc))
            return None

    def path(self, loc: Loc, path: str) -> tuple[Segment, ...] | None:
        try:
            return parse_path(path)
        except PathError as exc:
            self.problems.append((loc, f"invalid path: {exc}"))
            return None

    def request_target(self, loc: Loc, target: str) -> tuple[str, tuple[Segment, ...]] | None:
        section, dot, rest = target.partition(".")
        if section not in REQUEST_SECTIONS or not dot or not rest:
            self.problems.append(
                (
                    loc,
                    f"{target!r} must name a target such as body.email, query_params.limit, "
                    "path_params.id or headers.X-Name",
                )
            )
            return None
        if section != "body":
            return section, (rest,)
        parsed = self.path(loc, rest)
        return None if parsed is None else (section, parsed)

    def rule(self, loc: Loc, rule: TransformRule, section: str | None) -> _Rule | None:
        target: tuple[str, tuple[Segment, ...]] | None
        if section is None:
            target = self.request_target((*loc, "field"), rule.field)
        else:
            parsed = self.path((*loc, "field"), rule.field)
            target = None if parsed is None else (section, parsed)
        try:
            transform: Transform | None = self.engine.transforms.compile(
                rule.transform, rule.params
            )
        except MappingConfigError as exc:
            self.problems.extend(exc.prefixed(loc))
            transform = None
        condition = (
            self.expression((*loc, "condition"), rule.condition)
            if rule.condition is not None
            else None
        )
        if (
            target is None
            or transform is None
            or (rule.condition is not None and condition is None)
        ):
            return None
        path = target[1]
        key = path[0] if len(path) == 1 and isinstance(path[0], str) else None
        return _Rule(
            section=target[0], path=path, transform=transform, condition=condition, key=key
        )

    def path_parts(self, path: str) -> tuple[tuple[bool, str], ...]:
        parts: list[tuple[bool, str]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(path):
            parts.append((False, path[pos : match.start()]))
            name = match.group(1)
            if not name.strip():
                self.problems.append((("path",), "has an empty {} placeholder"))
            parts.append((True, name))
            pos = match.end()
        parts.append((False, path[pos:]))
        literal = "".join(text for is_name, text in parts if not is_name)
        if "{" in literal or "}" in literal:
            self.problems.append((("path",), "has an unbalanced '{' or '}'"))
        return tuple(part for part in parts if part[0] or part[1])


class MappingEngine:
    """Dynamic data mapping between the conversation's documents and external systems.

    Holds the transform registry and a bounded cache of compiled JMESPath expressions. The
    per-endpoint work happens on `CompiledEndpoint`; the methods here are the spec's general
    entry points (`apply_mapping`, `extract_value`, `set_nested_value`,
    `apply_transformation`). They are synchronous: mapping is pure CPU work.
    """

    def __init__(
        self,
        transforms: TransformRegistry | None = None,
        *,
        expression_cache_size: int = 4096,
    ) -> None:
        self.transforms = transforms or TransformRegistry(
            (*DEFAULT_TRANSFORMS, TextToAdf, AdfToText)
        )
        self._compiled_expressions = ExpressionCache(expression_cache_size)

    def compile_expression(self, source: str) -> Expression:
        """A compiled JMESPath expression (cached); `MappingConfigError` with loc `()`."""
        return self._compiled_expressions.get(source)

    # ---------------------------------------------------------------------------- endpoints

    def compile_endpoint(self, endpoint: EndpointConfig) -> CompiledEndpoint:
        """Compile and check everything in `endpoint`; raises `MappingConfigError` naming
        every problem, with locs relative to the endpoint."""
        c = _Compiler(self)
        request = endpoint.request_mapping
        response = endpoint.response_mapping

        path_parts = c.path_parts(endpoint.path)
        placeholders = [text for is_name, text in path_parts if is_name]
        for name in placeholders:
            if name not in request.path_params:
                c.problems.append(
                    (("path",), f"placeholder {{{name}}} has no request_mapping.path_params entry")
                )

        request_sources: dict[str, tuple[_Source, ...]] = {}
        body_targets: dict[tuple[Segment, ...], Loc] = {}
        for section in REQUEST_SECTIONS:
            entries: list[_Source] = []
            for name, source in getattr(request, section).items():
                loc: Loc = ("request_mapping", section, name)
                expression = c.expression(loc, source)
                target: tuple[Segment, ...] | None = (name,)
                if section == "body" and name == WHOLE_BODY:
                    target = ()
                elif section == "body":
                    target = c.path(loc, name)
                    if target is not None:
                        body_targets[target] = loc
                elif not name:
                    c.problems.append((loc, "name must not be empty"))
                    target = None
                elif section == "headers" and not _HEADER_NAME.fullmatch(name):
                    c.problems.append((loc, f"{name!r} is not a valid HTTP header name"))
                elif section == "path_params" and name not in placeholders:
                    c.problems.append((loc, f"{{{name}}} does not appear in the endpoint path"))
                if expression is not None and target is not None:
                    entries.append(_Source(target=target, expression=expression))
            if entries:
                request_sources[section] = tuple(entries)
        c.problems.extend(find_path_conflicts(body_targets))

        request_rules: list[_Rule] = []
        rule_targets: set[tuple[str, tuple[Segment, ...]]] = set()
        for index, rule in enumerate(request.transformations):
            compiled = c.rule(("request_mapping", "transformations", index), rule, None)
            if compiled is not None:
                request_rules.append(compiled)
                rule_targets.add((compiled.section, compiled.path))

        required: list[tuple[str, tuple[Segment, ...]]] = []
        for index, entry in enumerate(request.required):
            loc = ("request_mapping", "required", index)
            parsed_target = c.request_target(loc, entry)
            if parsed_target is None:
                continue
            section, path = parsed_target
            mapped = [src.target for src in request_sources.get(section, ())]
            mapped += [p for s, p in rule_targets if s == section]
            if not any(m[: len(path)] == path or path[: len(m)] == m for m in mapped):
                c.problems.append((loc, f"{entry!r} is required but nothing maps to it"))
            required.append(parsed_target)

        success_path = data_path = error_path = None
        if response.success_path is not None:
            success_path = c.expression(("response_mapping", "success_path"), response.success_path)
        if response.error_path is not None:
            error_path = c.expression(("response_mapping", "error_path"), response.error_path)
        if response.data_path is not None:
            data_path = c.expression(("response_mapping", "data_path"), response.data_path)

        field_mappings: list[_Source] = []
        field_targets: dict[tuple[Segment, ...], Loc] = {}
        for name, source in response.field_mappings.items():
            loc = ("response_mapping", "field_mappings", name)
            expression = c.expression(loc, source)
            target = c.path(loc, name)
            if target is not None:
                field_targets[target] = loc
            if expression is not None and target is not None:
                field_mappings.append(_Source(target=target, expression=expression))
        c.problems.extend(find_path_conflicts(field_targets))

        response_rules: list[_Rule] = []
        for index, rule in enumerate(response.transformations):
            compiled = c.rule(("response_mapping", "transformations", index), rule, "data")
            if compiled is not None:
                response_rules.append(compiled)

        default_values: list[tuple[tuple[Segment, ...], Any]] = []
        for name, value in response.default_values.items():
            target = c.path(("response_mapping", "default_values", name), name)
            if target is not None:
                default_values.append((target, value))

        schema: CompiledSchema | None = None
        if endpoint.validation_schema is not None:
            try:
                schema = CompiledSchema(endpoint.validation_schema)
            except MappingConfigError as exc:
                c.problems.extend(exc.prefixed(("validation_schema",)))

        summary = SummaryTemplate(None)
        try:
            summary = SummaryTemplate(endpoint.summary_template)
        except MappingConfigError as exc:
            c.problems.extend(exc.prefixed(("summary_template",)))

        cache_key_fields: list[tuple[str, Expression]] = []
        if endpoint.cache_config is not None:
            for index, source in enumerate(endpoint.cache_config.cache_key_fields):
                expression = c.expression(("cache_config", "cache_key_fields", index), source)
                if expression is not None:
                    cache_key_fields.append((source, expression))

        if c.problems:
            raise MappingConfigError(c.problems)
        return CompiledEndpoint(
            endpoint,
            path_parts=path_parts,
            request_sources=request_sources,
            request_rules=tuple(request_rules),
            required=tuple(required),
            success_path=success_path,
            error_path=error_path,
            data_path=data_path,
            field_mappings=tuple(field_mappings),
            response_rules=tuple(response_rules),
            default_values=tuple(default_values),
            schema=schema,
            summary=summary,
            cache_key_fields=tuple(cache_key_fields),
        )

    # ---------------------------------------------------------------------------- spec API

    def extract_value(self, data: Any, path: str, default: Any = None) -> Any:
        """Evaluate the JMESPath `path` on `data`; `default` where the result is null."""
        result = self.compile_expression(path).search(data)
        return default if result is None else result

    def set_nested_value(self, target: dict[str, Any], path: str, value: Any) -> None:
        """Set `value` at the dot path `path` (`items[0].name`) in `target`, creating
        objects and arrays as needed; `PathError` on a malformed path or a type conflict."""
        set_path(target, parse_path(path), value)

    def apply_transformation(
        self,
        value: Any,
        transform_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        context: Any = None,
    ) -> Any:
        """Apply one named transform to `value`.

        Raises `MappingConfigError` for an unknown name or bad params and `TransformError`
        when the transform cannot handle the value. Params are compiled on every call; for
        repeated use, configure the transform on an endpoint instead.
        """
        transform = self.transforms.compile(transform_name, params)
        if value is None and not transform.accepts_missing:
            return None
        try:
            return transform.apply(value, context)
        except TransformError:
            raise
        except _TRANSFORM_FAILURES as exc:
            raise TransformError(f"{transform_name} failed: {exc}") from exc

    def apply_mapping(
        self,
        source_data: Any,
        mapping_rules: Sequence[MappingRule],
        target_schema: Mapping[str, Any] | None = None,
        *,
        warnings: list[Problem] | None = None,
    ) -> dict[str, Any]:
        """Build a new object from `source_data` by `mapping_rules`, then check it against
        `target_schema`.

        Configuration mistakes in the rules raise `MappingConfigError` (locs `(index, field)`).
        Missing required values and schema violations are collected and raised together as
        `MappingError` (locs are target paths). A failing transform keeps the original value
        and appends a warning to `warnings` when given.
        """
        c = _Compiler(self)
        compiled: list[tuple[MappingRule, Expression, tuple[Segment, ...], Transform | None]] = []
        target_locs: dict[tuple[Segment, ...], Loc] = {}
        for index, rule in enumerate(mapping_rules):
            expression = c.expression((index, "source_path"), rule.source_path)
            target = c.path((index, "target_path"), rule.target_path)
            transform: Transform | None = None
            if rule.transform is not None:
                try:
                    transform = self.transforms.compile(rule.transform, rule.params)
                except MappingConfigError as exc:
                    c.problems.extend(exc.prefixed((index,)))
            if target is not None:
                if target in target_locs:
                    c.problems.append(((index, "target_path"), "is already the target of a rule"))
                target_locs[target] = (index, "target_path")
            if expression is not None and target is not None:
                compiled.append((rule, expression, target, transform))
        c.problems.extend(find_path_conflicts(target_locs))
        schema = None
        if target_schema is not None:
            try:
                schema = CompiledSchema(target_schema)
            except MappingConfigError as exc:
                c.problems.extend(exc.prefixed(("target_schema",)))
        if c.problems:
            raise MappingConfigError(c.problems)

        problems: list[Problem] = []
        result: dict[str, Any] = {}
        for rule, expression, target, transform in compiled:
            try:
                value = expression.search(source_data)
            except JMESPathError as exc:
                problems.append((target, f"could not evaluate {rule.source_path!r}: {exc}"))
                continue
            if value is None:
                value = _owned_default(rule.default)
            if transform is not None and (value is not None or transform.accepts_missing):
                try:
                    value = transform.apply(value, source_data)
                except _TRANSFORM_FAILURES as exc:
                    if warnings is not None:
                        warnings.append(
                            (target, f"{transform.name} failed, original value kept: {exc}")
                        )
            if value is None:
                if rule.required:
                    problems.append((target, f"is required; nothing found at {rule.source_path!r}"))
                continue
            try:
                set_path(result, target, value)
            except PathError as exc:
                problems.append((target, str(exc)))
        if schema is not None:
            problems.extend(schema.validate(result))
        if problems:
            raise MappingError(problems)
        return result
