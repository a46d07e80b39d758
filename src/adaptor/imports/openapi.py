"""An OpenAPI 3.0/3.1 document turned into an `IntegrationSpec` (no I/O, no storage).

Each operation becomes an endpoint:

- named by its operationId in snake_case (else method and path), deduplicated with `_2`, `_3`;
- path, query and header parameters map from `variables.<name>`; the top-level properties of a
  JSON or form request body map from `variables.<property>`, and the body's media type becomes
  the endpoint's `Content-Type` header;
- `validation_schema` describes `variables`: every parameter and body property with its type,
  enum, format and bounds, `required` as the operation requires it. Schemas are OpenAPI's
  converted to JSON Schema 2020-12 (`nullable` becomes a `"null"` type, `$ref`s are inlined, a
  recursive reference and anything deeper than `MAX_SCHEMA_DEPTH` levels accept any value,
  `oneOf` is read as `anyOf` since vendors' alternatives often overlap);
- a path parameter used in the path but never declared (Intercom has two) is inferred as a
  required string.

`servers[0]` (variables filled with their defaults) is the base URL; an operation or path item
whose own server differs from it gets an absolute path. `securitySchemes` give `auth_config`:
the scheme the document's security requirements name, preferring bearer, then an API key in a
header, in the query, basic, OAuth2 (authorization code, else client credentials).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import regex

from adaptor.imports.documents import ImportProblems, Loc, check_openapi
from adaptor.imports.references import DocumentResolver, UnresolvableReference

if TYPE_CHECKING:
    from referencing._core import Resolver  # the type `Registry.resolver()` returns

METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch")
"""HTTP methods an operation can have that an endpoint can call (TRACE is left out)."""

MAX_SCHEMA_DEPTH: Final = 4
"""Levels of nested schema kept below each input variable."""

MAX_SCHEMA_NODES: Final = 2_000
"""Most schema nodes in one endpoint's `validation_schema` (inlined references counted each
time; the largest in the vendors' documents has about 800), so a document whose references fan
out cannot make an import, or the compiling of its schemas, explode."""

MAX_DOCUMENT_SCHEMA_NODES: Final = 100_000
"""The same over all of a document's endpoints (Intercom's 231 endpoints hold about 5,000)."""

MAX_DESCRIPTION: Final = 300
JSON_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
JSON_MEDIA: Final = re.compile(r"^application/([\w.+-]+\+)?json$")
FORM_MEDIA: Final = "application/x-www-form-urlencoded"
IGNORED_HEADERS: Final = frozenset({"accept", "content-type", "authorization"})
"""Header parameters OpenAPI says are ignored (described elsewhere in the document)."""

_BLOCK_TAG = re.compile(r"</?(?:p|br|li|ul|ol|div|h[1-6]|table|tr|td)\b[^<>]*>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"{([^{}]+)}")

# Keywords copied as they are (JSON Schema keeps their meaning).
_PLAIN_KEYWORDS: Final = (
    "enum",
    "const",
    "format",
    "default",
    "multipleOf",
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
)
_AUTH_RANK: Final = {"bearer_token": 0, "api_key_header": 1, "api_key_query": 2, "basic_auth": 3}


@dataclass
class ImportOptions:
    name: str | None = None
    base_url: str | None = None
    operations: list[str] | None = None
    """operationIds (or endpoint names) to import; all when None."""


@dataclass
class ImportedDocument:
    """The spec to store, with what the import found in the document."""

    spec: dict[str, Any]
    """An `IntegrationSpec` document (validated by the caller)."""
    operations: int
    """Operations in the document."""
    endpoints: list[str]
    needs_credentials: bool
    notes: list[str] = field(default_factory=list)


@dataclass
class _Context:
    resolver: DocumentResolver
    problems: list[tuple[Loc, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    memo: dict[tuple[int, int], tuple[dict[str, Any], int]] = field(default_factory=dict)
    """Converted schemas by (source object, depth), with how many nodes each holds."""
    emitted: int = 0
    """Schema nodes produced for the current endpoint (inlined references included)."""
    emitted_before: int = 0
    """... and for the endpoints before it."""

    def over_budget(self) -> bool:
        return (
            self.emitted > MAX_SCHEMA_NODES
            or self.emitted_before + self.emitted > MAX_DOCUMENT_SCHEMA_NODES
        )

    def problem(self, loc: Loc, message: str) -> None:
        entry = (tuple(loc), message)
        if entry not in self.problems:  # path-level parameters are read once per operation
            self.problems.append(entry)

    def deref(self, node: Any, resolver: Resolver[Any], loc: Loc) -> tuple[Any, Resolver[Any]]:
        """Follow `$ref`s until a node that is not one (on failure a problem is recorded and
        None returned, which callers skip without a second complaint)."""
        seen: set[int] = set()
        while isinstance(node, dict) and "$ref" in node:
            if id(node) in seen:
                self.problem((*loc, "$ref"), "is a reference cycle")
                return None, resolver
            seen.add(id(node))
            try:
                node, resolver = self.resolver.lookup(node["$ref"], resolver)
            except UnresolvableReference as exc:
                self.problem((*loc, "$ref"), str(exc))
                return None, resolver
        return node, resolver


def convert_document(
    document: dict[str, Any], resolver: DocumentResolver, options: ImportOptions
) -> ImportedDocument:
    """The integration `document` describes. Raises ImportProblems naming every location in
    the document (or option) that prevents the import."""
    version = check_openapi(document)
    ctx = _Context(resolver)
    root = resolver.root
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    assert isinstance(info, dict)
    top_servers = document.get("servers")
    default_server = _server_url(top_servers, ("servers",), ctx)
    base_url = options.base_url.rstrip("/") if options.base_url else None
    prefix = ""
    if default_server is not None and not default_server.startswith(("http://", "https://")):
        prefix = default_server.rstrip("/")  # relative to the API's host: part of each path
        if base_url is None:
            ctx.notes.append(
                f"servers[0] is relative ({default_server}): give base_url to reach the API"
            )
    elif base_url is None and default_server is not None:
        base_url = default_server.rstrip("/")

    wanted = set(options.operations) if options.operations is not None else None
    found: set[str] = set()
    endpoints: dict[str, dict[str, Any]] = {}
    used_names: set[str] = set()
    operations = 0
    security_used: list[str] = []
    for name in _requirement_names(document.get("security")):
        security_used.append(name)

    paths, paths_resolver = ctx.deref(document.get("paths"), root, ("paths",))
    if not isinstance(paths, dict):
        raise ImportProblems([(("paths",), "must be an object of path items")])
    for raw_path, raw_item in paths.items():
        item_loc: Loc = ("paths", raw_path)
        if not isinstance(raw_path, str) or not raw_path.startswith("/"):
            ctx.problem(item_loc, "a path must start with '/'")
            continue
        item, item_resolver = ctx.deref(raw_item, paths_resolver, item_loc)
        if item is None:
            continue
        if not isinstance(item, dict):
            ctx.problem(item_loc, "must be a path item object")
            continue
        item_server = _server_url(item.get("servers"), (*item_loc, "servers"), ctx)
        shared = item.get("parameters") or []
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            operations += 1
            op_loc: Loc = (*item_loc, method)
            if not isinstance(operation, dict):
                ctx.problem(op_loc, "must be an operation object")
                continue
            operation_id = operation.get("operationId")
            name = _endpoint_name(operation_id, method, raw_path, used_names)
            keys = {name}
            if isinstance(operation_id, str):
                keys.add(operation_id)
            if wanted is not None:
                hits = keys & wanted
                if not hits:
                    continue
                found |= hits
            used_names.add(name)
            security_used.extend(_requirement_names(operation.get("security")))
            server = _server_url(operation.get("servers"), (*op_loc, "servers"), ctx) or item_server
            path = prefix + raw_path
            if server and options.base_url is None and server.rstrip("/") != base_url:
                path = server.rstrip("/") + raw_path
            endpoints[name] = _endpoint(
                ctx, name, method, path, raw_path, operation, shared, item_resolver, op_loc
            )

    if wanted is not None:
        for index, wanted_id in enumerate(options.operations or []):
            if wanted_id not in found:
                ctx.problem(
                    ("$options", "operations", index),
                    f"{wanted_id!r} is not an operationId (or endpoint name) of the document",
                )
    if not endpoints and not ctx.problems:
        ctx.problem(("paths",), "has no operations to import")
    if ctx.problems:
        raise ImportProblems(ctx.problems)

    auth = _auth_config(document, root, security_used, ctx)
    title = info.get("title") if isinstance(info.get("title"), str) else None
    name = (options.name or (title or "").strip() or "Imported API")[:255]
    description = info.get("description") if isinstance(info.get("description"), str) else None
    spec: dict[str, Any] = {
        "name": name,
        "description": _short(plain_text(description), 4000) if description else None,
        "type": "rest_api",
        "category": "imported",
        "base_url": base_url,
        "auth_config": auth,
        "endpoints": endpoints,
        "metadata": {
            "openapi": {
                "version": version,
                "title": title,
                "info_version": info.get("version")
                if isinstance(info.get("version"), str)
                else None,
                "operations": operations,
                "imported": len(endpoints),
                "notes": ctx.notes[:50],
            }
        },
    }
    needs_credentials = auth["type"] != "none"
    return ImportedDocument(
        spec=spec,
        operations=operations,
        endpoints=list(endpoints),
        needs_credentials=needs_credentials,
        notes=ctx.notes,
    )


# endpoints ----------------------------------------------------------------------------------


def snake_case(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _endpoint_name(operation_id: Any, method: str, path: str, used: set[str]) -> str:
    base = snake_case(operation_id) if isinstance(operation_id, str) else ""
    if not base:
        base = snake_case(f"{method} {path}") or method
    base = base[:200]
    name, counter = base, 2
    while name in used:
        name = f"{base}_{counter}"
        counter += 1
    return name


def variable(name: str) -> str:
    """The JMESPath expression for `variables.<name>` (quoted when not an identifier)."""
    if _IDENTIFIER.match(name):
        return f"variables.{name}"
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'variables."{escaped}"'


def _endpoint(
    ctx: _Context,
    name: str,
    method: str,
    path: str,
    raw_path: str,
    operation: dict[str, Any],
    shared: Any,
    resolver: Resolver[Any],
    loc: Loc,
) -> dict[str, Any]:
    ctx.emitted_before += ctx.emitted
    ctx.emitted = 0
    mapping: dict[str, Any] = {
        "path_params": {},
        "query_params": {},
        "headers": {},
        "body": {},
        "required": [],
    }
    properties: dict[str, Any] = {}
    required: list[str] = []
    declared: dict[tuple[str, str], tuple[dict[str, Any], Resolver[Any], Loc]] = {}
    for source, params in (("parameters", shared), ("operation", operation.get("parameters"))):
        if params is None:
            continue
        base_loc = loc[:-1] if source == "parameters" else loc
        if not isinstance(params, list):
            ctx.problem((*base_loc, "parameters"), "must be a list")
            continue
        for index, raw in enumerate(params):
            p_loc: Loc = (*base_loc, "parameters", index)
            param, p_resolver = ctx.deref(raw, resolver, p_loc)
            if param is None:
                continue
            if not isinstance(param, dict):
                ctx.problem(p_loc, "must be a parameter object")
                continue
            p_name, p_in = param.get("name"), param.get("in")
            if not isinstance(p_name, str) or not p_name:
                ctx.problem((*p_loc, "name"), "is required")
                continue
            if p_in not in ("path", "query", "header", "cookie"):
                ctx.problem((*p_loc, "in"), "must be path, query, header or cookie")
                continue
            declared[(p_in, p_name)] = (param, p_resolver, p_loc)  # the operation's win

    for placeholder in _PLACEHOLDER.findall(raw_path):
        if ("path", placeholder) not in declared:
            ctx.notes.append(f"{name}: path parameter {placeholder!r} is not declared (a string)")
            declared[("path", placeholder)] = (
                {"name": placeholder, "in": "path", "required": True, "schema": {"type": "string"}},
                resolver,
                loc,
            )

    targets = {"path": "path_params", "query": "query_params", "header": "headers"}
    for (p_in, p_name), (param, p_resolver, p_loc) in declared.items():
        if p_in == "cookie":
            ctx.notes.append(f"{name}: cookie parameter {p_name!r} is not mapped")
            continue
        if p_in == "header" and p_name.lower() in IGNORED_HEADERS:
            continue
        if p_in == "path" and f"{{{p_name}}}" not in raw_path:
            continue
        target = targets[p_in]
        mapping[target][p_name] = variable(p_name)
        schema_node: Any = param.get("schema")
        if schema_node is None and isinstance(param.get("content"), dict):
            first = next(iter(param["content"].values()), None)
            schema_node = first.get("schema") if isinstance(first, dict) else None
        schema = _schema(ctx, schema_node, p_resolver, (*p_loc, "schema"), 1)
        _describe(schema, param.get("description"))
        properties.setdefault(p_name, schema)
        if p_in == "path" or param.get("required") is True:
            mapping["required"].append(f"{target}.{p_name}")
            if p_name not in required:
                required.append(p_name)

    body_ref = operation.get("requestBody")
    if body_ref is not None:
        body_loc: Loc = (*loc, "requestBody")
        body, b_resolver = ctx.deref(body_ref, resolver, body_loc)
        if isinstance(body, dict):
            _map_body(ctx, name, body, b_resolver, body_loc, mapping, properties, required)

    endpoint: dict[str, Any] = {
        "name": name,
        "path": path,
        "method": method.upper(),
        "description": _operation_description(operation),
        "request_mapping": {key: value for key, value in mapping.items() if value},
    }
    variables: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        variables["required"] = required
    document: dict[str, Any] = {"type": "object", "properties": {"variables": variables}}
    if required:
        document["required"] = ["variables"]
    endpoint["validation_schema"] = document
    return endpoint


def _map_body(
    ctx: _Context,
    name: str,
    body: dict[str, Any],
    resolver: Resolver[Any],
    loc: Loc,
    mapping: dict[str, Any],
    properties: dict[str, Any],
    required: list[str],
) -> None:
    content = body.get("content")
    if not isinstance(content, dict) or not content:
        return
    media = next((m for m in content if JSON_MEDIA.match(m.split(";")[0].strip())), None)
    if media is None and FORM_MEDIA in content:
        media = FORM_MEDIA
    if media is None:
        ctx.notes.append(f"{name}: request body {next(iter(content))!r} is not mapped")
        return
    media_object = content[media] if isinstance(content[media], dict) else {}
    schema_loc: Loc = (*loc, "content", media, "schema")
    node, s_resolver = ctx.deref(media_object.get("schema"), resolver, schema_loc)
    body_props, body_required = _object_properties(ctx, node, s_resolver, schema_loc)
    mapping["headers"]["Content-Type"] = "'" + media.split(";")[0].strip() + "'"
    if body_props is None:
        ctx.notes.append(f"{name}: the request body is not an object; its content is not mapped")
        return
    body_is_required = body.get("required") is True
    for prop, (prop_node, prop_resolver, prop_loc) in body_props.items():
        if not isinstance(prop_node, dict):
            continue
        mapping["body"][prop] = variable(prop)
        converted = _schema(ctx, prop_node, prop_resolver, prop_loc, 1)
        if converted.get("readOnly") is True:
            del mapping["body"][prop]
            continue
        properties.setdefault(prop, converted)
        if body_is_required and prop in body_required:
            mapping["required"].append(f"body.{prop}")
            if prop not in required:
                required.append(prop)


def _object_properties(
    ctx: _Context, node: Any, resolver: Resolver[Any], loc: Loc, depth: int = 0
) -> tuple[dict[str, tuple[Any, Resolver[Any], Loc]] | None, set[str]]:
    """The top-level properties of a body schema (through `allOf`, and every alternative of
    `oneOf`/`anyOf`, whose own required properties are then not required)."""
    if not isinstance(node, dict) or depth > 8:
        return None, set()
    props: dict[str, tuple[Any, Resolver[Any], Loc]] = {}
    required: set[str] = set()
    is_object = node.get("type") == "object" or (
        isinstance(node.get("type"), list) and "object" in node["type"]
    )
    own = node.get("properties")
    if isinstance(own, dict):
        is_object = True
        for key, value in own.items():
            value, value_resolver = ctx.deref(value, resolver, (*loc, "properties", key))
            props[key] = (value, value_resolver, (*loc, "properties", key))
        if isinstance(node.get("required"), list):
            required.update(str(r) for r in node["required"])
    for keyword in ("allOf", "oneOf", "anyOf"):
        parts = node.get(keyword)
        if not isinstance(parts, list):
            continue
        for index, part in enumerate(parts):
            part_loc: Loc = (*loc, keyword, index)
            part, part_resolver = ctx.deref(part, resolver, part_loc)
            sub_props, sub_required = _object_properties(
                ctx, part, part_resolver, part_loc, depth + 1
            )
            if sub_props is None:
                continue
            is_object = True
            for key, value in sub_props.items():
                props.setdefault(key, value)
            if keyword == "allOf":
                required |= sub_required
    if not is_object:
        return None, set()
    return props, required


def _operation_description(operation: dict[str, Any]) -> str | None:
    summary = operation.get("summary")
    description = operation.get("description")
    text = summary if isinstance(summary, str) and summary.strip() else description
    if not isinstance(text, str) or not text.strip():
        return None
    return _short(plain_text(text), 1000) or None


def plain_text(text: str) -> str:
    """Descriptions as text: HTML tags dropped (Stripe writes `<p>`), entities decoded,
    whitespace collapsed."""
    return " ".join(html.unescape(_TAG.sub("", _BLOCK_TAG.sub(" ", text))).split())


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(schema: dict[str, Any], description: Any) -> None:
    if isinstance(description, str) and description.strip() and "description" not in schema:
        schema["description"] = _short(plain_text(description), MAX_DESCRIPTION)


# schemas ------------------------------------------------------------------------------------


def _schema(
    ctx: _Context,
    node: Any,
    resolver: Resolver[Any],
    loc: Loc,
    depth: int,
    seen: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """OpenAPI schema → JSON Schema 2020-12 (see the module docstring)."""
    if isinstance(node, bool):
        return {} if node else {"not": {}}
    if not isinstance(node, dict):
        return {}
    if "$ref" in node:
        target, target_resolver = ctx.deref(node, resolver, loc)
        key = id(target)
        if key in seen:
            return {}  # a recursive schema: its inner levels accept any value
        memo_key = (key, depth)
        cached = ctx.memo.get(memo_key)
        if cached is None:
            before = ctx.emitted
            converted = _schema(ctx, target, target_resolver, loc, depth, seen | {key})
            ctx.memo[memo_key] = (converted, ctx.emitted - before)
            return dict(converted)
        ctx.emitted += cached[1]
        return {} if ctx.over_budget() else dict(cached[0])

    ctx.emitted += 1
    if ctx.over_budget():
        return {}  # an endpoint's schema this large accepts the rest as it comes
    out: dict[str, Any] = {}
    types = node.get("type")
    type_list = types if isinstance(types, list) else [types] if isinstance(types, str) else []
    type_list = [t for t in type_list if t in JSON_TYPES]
    nullable = node.get("nullable") is True
    if type_list:
        if nullable and "null" not in type_list:
            type_list.append("null")
        out["type"] = type_list[0] if len(type_list) == 1 else type_list
    for keyword in _PLAIN_KEYWORDS:
        if keyword in node:
            out[keyword] = node[keyword]
    if isinstance(out.get("enum"), list):
        if nullable and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if not out["enum"]:
            del out["enum"]
    elif "enum" in out:
        del out["enum"]
    if not isinstance(out.get("format"), str):
        out.pop("format", None)
    _bounds(node, out)
    pattern = node.get("pattern")
    if isinstance(pattern, str) and _usable_pattern(pattern):
        out["pattern"] = pattern
    if node.get("readOnly") is True:
        out["readOnly"] = True
    if depth <= 1:
        _describe(out, node.get("description"))

    if depth >= MAX_SCHEMA_DEPTH:
        return out  # deeper structure accepts any value
    next_depth = depth + 1
    props = node.get("properties")
    if isinstance(props, dict):
        out["properties"] = {
            str(key): _schema(ctx, value, resolver, (*loc, "properties", key), next_depth, seen)
            for key, value in props.items()
        }
        required = node.get("required")
        if isinstance(required, list) and all(isinstance(r, str) for r in required):
            writable = [r for r in required if not out["properties"].get(r, {}).get("readOnly")]
            if writable:
                out["required"] = writable
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):
        out["additionalProperties"] = extra
    elif isinstance(extra, dict):
        out["additionalProperties"] = _schema(
            ctx, extra, resolver, (*loc, "additionalProperties"), next_depth, seen
        )
    items = node.get("items")
    if isinstance(items, dict):
        out["items"] = _schema(ctx, items, resolver, (*loc, "items"), next_depth, seen)
    for keyword, target in (("allOf", "allOf"), ("anyOf", "anyOf"), ("oneOf", "anyOf")):
        parts = node.get(keyword)
        if isinstance(parts, list) and parts:
            alternatives = [
                _schema(ctx, part, resolver, (*loc, keyword, index), next_depth, seen)
                for index, part in enumerate(parts)
            ]
            if target == "anyOf" and any(not part for part in alternatives):
                continue  # one alternative accepts anything: so does the whole
            out.setdefault(target, []).extend(alternatives)
    negated = node.get("not")
    if isinstance(negated, dict) and negated:
        converted_not = _schema(ctx, negated, resolver, (*loc, "not"), next_depth, seen)
        if converted_not:
            out["not"] = converted_not
    return out


def _bounds(node: dict[str, Any], out: dict[str, Any]) -> None:
    """`exclusiveMinimum`/`exclusiveMaximum`: OpenAPI 3.0's booleans become 2020-12 numbers."""
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(exclusive)
        if isinstance(value, bool):
            if value and isinstance(node.get(bound), int | float):
                out[exclusive] = node[bound]
                out.pop(bound, None)
        elif isinstance(value, int | float):
            out[exclusive] = value
    for keyword in _PLAIN_KEYWORDS:
        value = out.get(keyword)
        numeric = keyword not in ("enum", "const", "format", "default", "uniqueItems")
        if numeric and (isinstance(value, bool) or not isinstance(value, int | float)):
            out.pop(keyword, None)
        elif keyword == "uniqueItems" and not isinstance(value, bool):
            out.pop(keyword, None)
    if "multipleOf" in out and out["multipleOf"] <= 0:
        del out["multipleOf"]
    for keyword in ("maxLength", "minLength", "maxItems", "minItems"):
        if keyword in out and (not isinstance(out[keyword], int) or out[keyword] < 0):
            del out[keyword]
    for keyword in ("maxProperties", "minProperties"):
        if keyword in out and (not isinstance(out[keyword], int) or out[keyword] < 0):
            del out[keyword]


def _usable_pattern(pattern: str) -> bool:
    if len(pattern) > 500:
        return False
    try:
        regex.compile(pattern)
    except (regex.error, OverflowError, RecursionError, ValueError):
        return False
    return True


# servers and security -----------------------------------------------------------------------


def _server_url(servers: Any, loc: Loc, ctx: _Context) -> str | None:
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return None
    server = servers[0]
    url = server.get("url")
    if not isinstance(url, str) or not url:
        return None
    variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}
    assert isinstance(variables, dict)

    def fill(match: re.Match[str]) -> str:
        spec = variables.get(match.group(1))
        if isinstance(spec, dict) and isinstance(spec.get("default"), str | int):
            return str(spec["default"])
        ctx.problem((*loc, 0, "variables", match.group(1)), "a server variable needs a default")
        return match.group(0)

    return _PLACEHOLDER.sub(fill, url)


def _requirement_names(security: Any) -> Iterator[str]:
    if isinstance(security, list):
        for requirement in security:
            if isinstance(requirement, dict):
                yield from (str(name) for name in requirement)


def _auth_config(
    document: dict[str, Any], root: Resolver[Any], used: list[str], ctx: _Context
) -> dict[str, Any]:
    components, c_resolver = ctx.deref(document.get("components"), root, ("components",))
    if not isinstance(components, dict):
        return {"type": "none"}
    schemes, s_resolver = ctx.deref(
        components.get("securitySchemes"), c_resolver, ("components", "securitySchemes")
    )
    if not isinstance(schemes, dict) or not schemes:
        return {"type": "none"}
    named = [name for name in dict.fromkeys(used) if name in schemes] or list(schemes)
    candidates: list[tuple[int, int, dict[str, Any]]] = []
    for order, name in enumerate(named):
        loc: Loc = ("components", "securitySchemes", name)
        scheme, _ = ctx.deref(schemes[name], s_resolver, loc)
        config = _scheme_config(scheme) if isinstance(scheme, dict) else None
        if config is None:
            ctx.notes.append(f"security scheme {name!r} has no equivalent auth type")
            continue
        rank_key = config.pop("_rank")
        candidates.append((rank_key, order, config))
    if ctx.problems:
        raise ImportProblems(ctx.problems)
    if not candidates:
        return {"type": "none"}
    candidates.sort(key=lambda c: (c[0], c[1]))
    return candidates[0][2]


def _scheme_config(scheme: dict[str, Any]) -> dict[str, Any] | None:
    kind = scheme.get("type")
    if kind == "http":
        http = str(scheme.get("scheme", "")).lower()
        if http == "bearer":
            return {"type": "bearer_token", "_rank": _AUTH_RANK["bearer_token"]}
        if http == "basic":
            return {"type": "basic_auth", "_rank": _AUTH_RANK["basic_auth"]}
        return None
    if kind == "apiKey":
        where, name = scheme.get("in"), scheme.get("name")
        if not isinstance(name, str) or not name:
            return None
        if where == "header":
            return {
                "type": "api_key",
                "api_key_header": name,
                "_rank": _AUTH_RANK["api_key_header"],
            }
        if where == "query":
            return {"type": "api_key", "api_key_param": name, "_rank": _AUTH_RANK["api_key_query"]}
        return None
    if kind == "oauth2":
        flows = scheme.get("flows") if isinstance(scheme.get("flows"), dict) else {}
        assert isinstance(flows, dict)
        for flow_name, flow in (
            ("authorization_code", flows.get("authorizationCode")),
            ("client_credentials", flows.get("clientCredentials")),
        ):
            if not isinstance(flow, dict) or not isinstance(flow.get("tokenUrl"), str):
                continue
            scopes = flow.get("scopes") if isinstance(flow.get("scopes"), dict) else {}
            assert isinstance(scopes, dict)
            config: dict[str, Any] = {
                "type": "oauth2",
                "oauth2_flow": flow_name,
                "token_url": flow["tokenUrl"],
                "scopes": [str(scope) for scope in scopes],
                "_rank": 4 if flow_name == "authorization_code" else 5,
            }
            if flow_name == "authorization_code":
                if not isinstance(flow.get("authorizationUrl"), str):
                    continue
                config["authorization_url"] = flow["authorizationUrl"]
            return config
    return None
