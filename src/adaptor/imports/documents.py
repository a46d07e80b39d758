"""Reading an OpenAPI document: JSON or YAML text, and the checks that it is OpenAPI 3.

JSON is read as JSON (orjson), never through a YAML reader: real vendor documents hold escapes
and control characters that are valid JSON and invalid YAML. YAML is read with the YAML 1.2
core scalars (only `true`/`false` are booleans, nothing becomes a timestamp), and mapping keys
such as response codes are read as strings, so the result is plain JSON data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson
import yaml

Loc = Sequence[str | int]


class ImportProblems(Exception):
    """Everything wrong with a document, each located within it (`loc` from its root)."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__(
            "; ".join(f"{'.'.join(map(str, loc)) or '(document)'}: {m}" for loc, m in problems)
        )
        self.problems = problems


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with the YAML 1.2 core schema's booleans and no implicit timestamps."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


MAX_YAML_NODES = 5_000_000
"""Most values a YAML document may expand to: aliases may repeat (or nest) an anchored value,
and the result is plain JSON data, so repetition is paid in full."""

MAX_DEPTH = 500


class _TooLarge(Exception):
    pass


def _json_data(node: Any, budget: list[int], depth: int = 0) -> Any:
    """YAML data as JSON data (string keys), within `MAX_YAML_NODES` and `MAX_DEPTH`."""
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _TooLarge
    if isinstance(node, dict):
        return {str(key): _json_data(value, budget, depth + 1) for key, value in node.items()}
    if isinstance(node, list):
        return [_json_data(value, budget, depth + 1) for value in node]
    return node


def parse_text(text: str | bytes) -> Any:
    """JSON when the text starts like JSON, else YAML. Raises ImportProblems (located at the
    line) when it is neither."""
    raw = text.encode() if isinstance(text, str) else text
    if raw.lstrip()[:1] in (b"{", b"["):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ImportProblems([((), f"is not valid JSON: {exc}")]) from None
    try:
        value = yaml.load(raw, Loader=_Yaml12Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or "cannot be read"
        raise ImportProblems([((), f"is neither JSON nor valid YAML{where}: {reason}")]) from None
    try:
        return _json_data(value, [MAX_YAML_NODES])
    except _TooLarge:
        raise ImportProblems(
            [((), f"expands to more than {MAX_YAML_NODES:,} values or {MAX_DEPTH} levels")]
        ) from None


def load_document(document: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """The document as JSON data, checked to be an OpenAPI 3.0 or 3.1 description."""
    value = parse_text(document) if isinstance(document, str | bytes) else document
    if not isinstance(value, dict):
        raise ImportProblems([((), "must be an object (an OpenAPI document)")])
    check_openapi(value)
    return value


def check_openapi(document: dict[str, Any]) -> str:
    """The `openapi` version, or ImportProblems naming each thing that makes the document
    something other than an importable OpenAPI 3 description."""
    problems: list[tuple[Loc, str]] = []
    version = document.get("openapi")
    if "swagger" in document and version is None:
        problems.append(
            (
                ("swagger",),
                f"is {document['swagger']!r}: this is a Swagger (OpenAPI 2) document; only "
                "OpenAPI 3.0 and 3.1 are imported (convert it to OpenAPI 3 first)",
            )
        )
    elif version is None:
        problems.append((("openapi",), "is required (the OpenAPI version, 3.0.x or 3.1.x)"))
    elif not isinstance(version, str) or not re.match(r"^3\.[01](\.\d+)?(-.+)?$", version):
        problems.append(
            (("openapi",), f"is {version!r}; only OpenAPI 3.0.x and 3.1.x are imported")
        )
    paths = document.get("paths")
    if paths is None:
        problems.append((("paths",), "is required: the operations to import"))
    elif not isinstance(paths, dict):
        problems.append((("paths",), "must be an object of path items"))
    info = document.get("info")
    if info is not None and not isinstance(info, dict):
        problems.append((("info",), "must be an object"))
    if problems:
        raise ImportProblems(problems)
    return str(version)
