"""Tool definitions from integrations: one tool per enabled endpoint (no I/O).

- `name`: `<integration name as a slug>__<endpoint>`, at most 64 of `[A-Za-z0-9_-]`. A name
  that is too long, or already taken by an older integration of the tenant, is cut and ends
  with a hash of the integration id and endpoint, so it stays the same from list to list.
- `description`: what the endpoint does, which integration and call it is, and what it needs.
- `inputSchema`: the endpoint's `validation_schema` where set, else an object derived from the
  request mapping's paths (`variables.customer_id` → `variables: {customer_id: ...}`), the
  targets in `request_mapping.required` required.
- `outputSchema`: where `response_mapping.field_mappings` fixes the fields of the data; the
  structured content is then the data object, or `{"items": [...]}` for a list of them.
- `annotations`: `readOnlyHint` for GET/HEAD/OPTIONS, `destructiveHint` for DELETE,
  `idempotentHint` by HTTP semantics.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import mcp_types as types
import orjson

from adaptor.domain import EndpointConfig, HttpMethod, IntegrationConfig

MAX_NAME: Final = 64
SEPARATOR: Final = "__"
MAX_DESCRIPTION: Final = 1500
READ_ONLY: Final = frozenset({HttpMethod.GET, HttpMethod.HEAD, HttpMethod.OPTIONS})

_SIMPLE_PATH = re.compile(
    r'^(?:[A-Za-z_][A-Za-z0-9_]*|"[^"\\]+")(?:\.(?:[A-Za-z_][A-Za-z0-9_]*|"[^"\\]+"))*$'
)
_SEGMENT = re.compile(r'[A-Za-z_][A-Za-z0-9_]*|"[^"\\]+"')
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class ToolTarget:
    integration_id: str
    integration_name: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class TenantTools:
    """One tenant's tools, in listing order, and what each name runs."""

    tools: list[types.Tool]
    targets: dict[str, ToolTarget]
    by_name: dict[str, types.Tool]
    header_bound: frozenset[str] = frozenset()
    """Tools whose input schema declares `x-mcp-header` parameters (checked by the SDK)."""


def slug(text: str) -> str:
    return _NOT_NAME.sub("-", text.lower().replace("_", "-")).strip("-") or "integration"


def build_tools(integrations: Iterable[IntegrationConfig]) -> TenantTools:
    """Tools for every enabled endpoint of the enabled integrations, oldest integration first
    (so an older integration keeps the plain name when two share one)."""
    tools: list[types.Tool] = []
    targets: dict[str, ToolTarget] = {}
    for integration in integrations:
        if not integration.enabled:
            continue
        prefix = slug(integration.name)
        for endpoint_name, endpoint in integration.endpoints.items():
            name = tool_name(prefix, endpoint_name, integration.integration_id, taken=targets)
            targets[name] = ToolTarget(integration.integration_id, integration.name, endpoint_name)
            tools.append(_tool(name, integration, endpoint_name, endpoint))
    header_bound = frozenset(
        tool.name for tool in tools if b'"x-mcp-header"' in orjson.dumps(tool.input_schema)
    )
    return TenantTools(tools, targets, {tool.name: tool for tool in tools}, header_bound)


def tool_name(prefix: str, endpoint: str, integration_id: str, *, taken: Iterable[str]) -> str:
    plain = f"{prefix}{SEPARATOR}{_NOT_NAME.sub('_', endpoint)}"
    if len(plain) <= MAX_NAME and plain not in taken:
        return plain
    digest = hashlib.sha256(f"{integration_id}/{endpoint}".encode()).hexdigest()[:10]
    return f"{plain[: MAX_NAME - len(digest) - 1]}-{digest}"


def _tool(
    name: str, integration: IntegrationConfig, endpoint_name: str, endpoint: EndpointConfig
) -> types.Tool:
    input_schema = input_schema_of(endpoint)
    method = endpoint.method
    return types.Tool(
        name=name,
        title=f"{integration.name}: {_headline(endpoint.description) or endpoint_name}",
        description=_description(integration, endpoint_name, endpoint, input_schema),
        input_schema=input_schema,
        output_schema=output_schema_of(endpoint),
        annotations=types.ToolAnnotations(
            read_only_hint=method in READ_ONLY,
            destructive_hint=method is HttpMethod.DELETE,
            idempotent_hint=method.idempotent,
            open_world_hint=True,
        ),
    )


def _headline(text: str | None, limit: int = 80) -> str | None:
    """The first sentence of a description, cut to `limit` characters."""
    if not text:
        return None
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _description(
    integration: IntegrationConfig,
    endpoint_name: str,
    endpoint: EndpointConfig,
    input_schema: dict[str, Any],
) -> str:
    what = endpoint.description or endpoint_name.replace("_", " ").capitalize()
    lines = [what.rstrip(".") + "."]
    about = f"Integration: {integration.name} ({integration.category})"
    if integration.description:
        about += f", {integration.description.split(chr(10))[0][:300]}"
    lines.append(about.rstrip(".") + ".")
    lines.append(f"Calls {endpoint.method} {endpoint.path or '/'} on the integration's API.")
    needed = sorted(_required_paths(input_schema))
    if needed:
        lines.append("Required arguments: " + ", ".join(needed) + ".")
    text = "\n".join(lines)
    return text if len(text) <= MAX_DESCRIPTION else text[: MAX_DESCRIPTION - 1] + "…"


def _required_paths(schema: Any, prefix: str = "", depth: int = 0) -> list[str]:
    if not isinstance(schema, dict) or depth > 3:
        return []
    found: list[str] = []
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    assert isinstance(props, dict)
    for name in schema.get("required") or []:
        if not isinstance(name, str):
            continue
        path = f"{prefix}{name}"
        child = props.get(name)
        nested = _required_paths(child, f"{path}.", depth + 1)
        found.extend(nested or [path])
    return found


# schemas ------------------------------------------------------------------------------------


def input_schema_of(endpoint: EndpointConfig) -> dict[str, Any]:
    """A JSON Schema object for the endpoint's input document."""
    declared = endpoint.validation_schema
    if declared:
        schema = dict(declared)
        if "type" not in schema:
            schema["type"] = "object"
        if schema["type"] == "object" or (
            isinstance(schema["type"], list) and "object" in schema["type"]
        ):
            return schema
        return {"type": "object", "allOf": [declared]}
    return derived_input_schema(endpoint)


def derived_input_schema(endpoint: EndpointConfig) -> dict[str, Any]:
    """An object schema built from the request mapping's JMESPath paths."""
    root: dict[str, Any] = {"type": "object", "properties": {}}
    mapping = endpoint.request_mapping
    required_targets = set(mapping.required)
    sections = (
        ("path_params", "path parameter", mapping.path_params),
        ("query_params", "query parameter", mapping.query_params),
        ("headers", "header", mapping.headers),
        ("body", "body field", mapping.body),
    )
    for section, label, targets in sections:
        for target, expression in targets.items():
            segments = _segments(expression)
            if not segments:
                continue  # a literal or a computed value: nothing the caller passes
            leaf = _ensure(root, segments, required=f"{section}.{target}" in required_targets)
            leaf.setdefault("description", f"Sent as the {label} `{target}`.")
    return root


def _segments(expression: str) -> list[str] | None:
    text = expression.strip()
    if not _SIMPLE_PATH.match(text):
        return None
    return [part.strip('"') for part in _SEGMENT.findall(text)]


def _ensure(root: dict[str, Any], segments: list[str], *, required: bool) -> dict[str, Any]:
    node = root
    for index, segment in enumerate(segments):
        props = node.setdefault("properties", {})
        if node.get("type") != "object":
            node["type"] = "object"
        child = props.setdefault(segment, {})
        if required:
            needed = node.setdefault("required", [])
            if segment not in needed:
                needed.append(segment)
        if index < len(segments) - 1:
            child.setdefault("type", "object")
        node = child
    return node


def output_schema_of(endpoint: EndpointConfig) -> dict[str, Any] | None:
    """The structured content's schema, when the response mapping names the data's fields."""
    mapping = endpoint.response_mapping
    fields = list(mapping.field_mappings) + [
        key for key in mapping.default_values if key not in mapping.field_mappings
    ]
    if not fields:
        return None
    element: dict[str, Any] = {"type": "object", "properties": {}}
    for target in fields:
        node = element
        parts = target.split(".")
        for index, part in enumerate(parts):
            props = node.setdefault("properties", {})
            node = props.setdefault(part, {} if index == len(parts) - 1 else {"type": "object"})
    schema: dict[str, Any] = {
        "type": "object",
        "description": "The data object, or `items`: the list of them.",
        "properties": dict(element["properties"]),
    }
    schema["properties"].setdefault("items", {"type": "array", "items": element})
    return schema


def structured(data: Any) -> dict[str, Any]:
    """Structured content must be an object: a list is `{"items": [...]}`, a scalar
    `{"value": ...}`."""
    if isinstance(data, dict):
        return data
    if isinstance(data, list):
        return {"items": data}
    return {"value": data}
