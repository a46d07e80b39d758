"""Checking a template endpoint against a vendor's official OpenAPI (or Swagger 2.0)
description: the method and path exist, and every required parameter and body field is
mapped."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from adaptor.domain.marketplace import EndpointTemplate, MarketplaceItemSpec

_SLOT = re.compile(r"\{\{?[^{}]*\}?\}")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    required_path: tuple[str, ...]
    required_query: tuple[str, ...]
    required_body: tuple[str, ...]


def _credential(param: dict[str, Any]) -> bool:
    """A parameter that carries the API credential (Slack's `token`), which the template's
    auth config sends (Slack takes it as a bearer token too)."""
    return str(param.get("description", "")).startswith("Authentication token")


def _shape(path: str) -> str:
    return _SLOT.sub("{}", path.rstrip("/") or "/")


@functools.cache
def load(document: Path) -> dict[str, Any]:
    return dict(orjson.loads(document.read_bytes()))


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/") or seen > 20:
            return node
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
        seen += 1
    return node


def operations(document: Path) -> dict[tuple[str, str], Operation]:
    """Every operation by (METHOD, full path shape), server path prefixes included."""
    doc = load(document)
    prefixes: list[str] = []
    if "swagger" in doc:
        prefixes.append(doc.get("basePath", "").rstrip("/"))
    for server in doc.get("servers", []) or [{"url": ""}]:
        prefixes.append(urlsplit(server["url"]).path.rstrip("/"))
    found: dict[tuple[str, str], Operation] = {}
    for path, item in doc["paths"].items():
        item = resolve(doc, item)
        own = [urlsplit(s["url"]).path.rstrip("/") for s in item.get("servers", [])]
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = [resolve(doc, p) for p in [*shared, *op.get("parameters", [])]]
            body_required: list[str] = []
            request_body = resolve(doc, op.get("requestBody") or {})
            for media in (request_body.get("content") or {}).values():
                schema = resolve(doc, media.get("schema") or {})
                body_required = list(schema.get("required", []))
                break
            for param in params:  # Swagger 2.0 bodies
                if param.get("in") == "body":
                    schema = resolve(doc, param.get("schema") or {})
                    body_required = list(schema.get("required", []))
                elif param.get("in") == "formData" and param.get("required"):
                    body_required.append(param["name"])
            operation = Operation(
                method.upper(),
                path,
                tuple(p["name"] for p in params if p.get("in") == "path"),
                tuple(
                    p["name"]
                    for p in params
                    if p.get("in") == "query" and p.get("required") and not _credential(p)
                ),
                tuple(body_required),
            )
            for prefix in own or prefixes:
                found[(method.upper(), _shape(prefix + path))] = operation
    return found


def _fills(shape: str, path: str) -> bool:
    """Whether a literal path segment stands for a described parameter (`/users/me` for
    `/users/{user_gid}`, a documented value)."""
    pattern = "/".join("[^/]+" if part == "{}" else re.escape(part) for part in shape.split("/"))
    return shape.count("{}") > path.count("{}") and re.fullmatch(pattern, path) is not None


def endpoint_problems(
    item: MarketplaceItemSpec,
    endpoint: EndpointTemplate,
    document: Path,
    *,
    gateway: str = "",
) -> list[str]:
    """What is wrong with one template endpoint according to the vendor's description.

    `gateway` is a path prefix the vendor's API gateway adds in front of the described paths
    (Atlassian's `/ex/jira/{cloudid}` for OAuth apps)."""
    base = str(item.template.base_config.get("base_url", ""))
    base_path = urlsplit(_SLOT.sub("x", base)).path.rstrip("/").removeprefix(gateway)
    key = (str(endpoint.method), _shape(base_path + endpoint.path))
    known = operations(document)
    operation = known.get(key) or next(
        (op for (method, shape), op in known.items() if method == key[0] and _fills(shape, key[1])),
        None,
    )
    if operation is None:
        return [f"{key[0]} {base_path}{endpoint.path} is not in {document.name}"]
    problems: list[str] = []
    mapping = endpoint.request_mapping
    placeholders = re.findall(r"\{\{?([^{}]*)\}?\}", endpoint.path)
    if len(placeholders) != len(operation.required_path) and key in known:
        problems.append(
            f"{endpoint.name}: path parameters {placeholders} vs {list(operation.required_path)}"
        )
    for name in operation.required_query:
        if name not in mapping.query_params:
            problems.append(f"{endpoint.name}: required query parameter {name!r} is not mapped")
    body_roots = {target.split(".")[0] for target in mapping.body}
    for name in operation.required_body:
        if name not in body_roots and "@" not in mapping.body:
            problems.append(f"{endpoint.name}: required body field {name!r} is not mapped")
    return problems
