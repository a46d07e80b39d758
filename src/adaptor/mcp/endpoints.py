"""`/mcp`: the API key checked, the tenant resolved, then the MCP transport.

A missing or unknown key is a 401 problem (with `WWW-Authenticate: Bearer`), a tenant key
naming another tenant a 403, an admin key without `X-Tenant-ID` a 422, exactly as on the
`/api/v2` routes. Mounted as a plain ASGI route: FastAPI's body parsing and dependency
resolution never see the MCP traffic.
"""

from __future__ import annotations

from typing import Any

import orjson

from adaptor.asgi import replay_body
from adaptor.dependencies import resolve_tenant
from adaptor.errors import AdaptorError
from adaptor.mcp import direct
from adaptor.mcp.server import CURRENT_TENANT, TENANT_KEY

MCP_PATH = "/mcp"


class McpEndpoint:
    """The ASGI app behind `/mcp`."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        services = scope["app"].state.services
        headers: dict[str, str] = {}
        repeated = False
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1")
            repeated = repeated or name in headers
            headers.setdefault(name, raw_value.decode("latin-1"))
        try:
            caller = await services.keys.authenticate(headers.get("authorization"))
            tenant_id = resolve_tenant(caller, headers.get("x-tenant-id"))
        except AdaptorError as exc:
            await _problem(exc, send)
            return
        state = scope.setdefault("state", {})
        state[TENANT_KEY] = tenant_id
        token = CURRENT_TENANT.set(tenant_id)
        try:
            if (
                services.mcp.direct_calls
                and scope["method"] == "POST"
                and not repeated
                and direct.eligible(headers)
            ):
                body = await _read_body(receive)
                if body is None:
                    return  # the client went away
                payload = await direct.answer(
                    services.mcp, tenant_id, state.get("request_id"), headers, body
                )
                if payload is not None:
                    await _send_json(payload, send)
                    return
                receive = replay_body(body, receive)
            await services.mcp.handle(scope, receive, send)
        finally:
            CURRENT_TENANT.reset(token)


async def _read_body(receive: Any) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(payload: bytes, send: Any) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode("ascii")),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _problem(exc: AdaptorError, send: Any) -> None:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": exc.title,
        "status": exc.status_code,
        "detail": exc.message,
    }
    if exc.errors:
        body["errors"] = exc.errors
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()),
    ]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
