"""The hot path: a plain 2026-07-28 `tools/call` answered without the transport's machinery.

A tool call is what an agent waits on, so, like `POST /execute`, its common form is answered
directly: a stateless JSON POST whose envelope passes the SDK's own validation ladder
(`classify_inbound_request`: the `_meta` envelope, `MCP-Protocol-Version`, `Mcp-Method` and
`Mcp-Name` agreeing with the body), with nothing but `name`, `arguments` and the standard
`_meta` keys. It runs the same `McpService.call_tool` the SDK's handler runs and writes the
reply the SDK writes (the result dumped by alias without nulls, `resultType`, the `serverInfo`
stamp); a test compares the two byte for byte. Anything else (another method or protocol
version, SSE only, progress tokens, `Mcp-Param-*` headers, an unknown tool, a malformed
body) returns None and goes to the SDK, which answers or refuses it as the protocol says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import mcp_types as types
import orjson
from mcp.shared.inbound import InboundModernRoute, classify_inbound_request

from adaptor.mcp.server import McpService

MODERN_VERSION: Final = "2026-07-28"
_ENVELOPE_KEYS: Final = frozenset(
    {
        types.PROTOCOL_VERSION_META_KEY,
        types.CLIENT_CAPABILITIES_META_KEY,
        types.CLIENT_INFO_META_KEY,
    }
)
_PARAM_KEYS: Final = frozenset({"name", "arguments", "_meta"})


def eligible(headers: Mapping[str, str]) -> bool:
    """Whether the headers alone allow the direct path (the body decides the rest)."""
    if headers.get("mcp-protocol-version") != MODERN_VERSION:
        return False
    if headers.get("mcp-method") != "tools/call":
        return False
    if "application/json" not in headers.get("accept", ""):
        return False
    content_type = headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return False
    return not any(name.startswith("mcp-param-") for name in headers)


async def answer(
    service: McpService,
    tenant_id: str,
    request_id: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> bytes | None:
    """The JSON-RPC reply to a plain tool call, or None to let the SDK answer."""
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(decoded, dict) or decoded.get("jsonrpc") != "2.0":
        return None
    rpc_id = decoded.get("id")
    if isinstance(rpc_id, bool) or not isinstance(rpc_id, str | int):
        return None
    if decoded.get("method") != "tools/call" or set(decoded) != {
        "jsonrpc",
        "id",
        "method",
        "params",
    }:
        return None
    params = decoded["params"]
    if not isinstance(params, dict) or not set(params) <= _PARAM_KEYS:
        return None
    meta = params.get("_meta")
    if not isinstance(meta, dict) or not set(meta) <= _ENVELOPE_KEYS:
        return None
    verdict = classify_inbound_request(decoded, headers=headers)
    if not isinstance(verdict, InboundModernRoute) or verdict.protocol_version != MODERN_VERSION:
        return None
    name, arguments = params.get("name"), params.get("arguments")
    if not isinstance(name, str) or not (arguments is None or isinstance(arguments, dict)):
        return None
    cached = service.catalog.cached(tenant_id)
    if cached is not None and name in cached.header_bound:
        return None  # the SDK checks its `Mcp-Param-*` headers
    result = await service.call_tool(tenant_id, request_id, name, arguments or {})
    if result is None:
        return None  # an unknown tool: the SDK words that error
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    dumped["_meta"] = {types.SERVER_INFO_META_KEY: service.server_info}
    return orjson.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": dumped})
