"""`/mcp`: the API key checked, the tenant resolved, then the MCP transport.

A missing or unknown key is a 401 problem (with `WWW-Authenticate: Bearer`), a tenant key
naming another tenant a 403, an admin key without `X-Tenant-ID` a 422, exactly as on the
`/api/v2` routes. Mounted as a plain ASGI route: FastAPI's body parsing and dependency
resolution never see the MCP traffic.
"""

from __future__ import annotations

from typing import Any

import orjson

from adaptor.dependencies import resolve_tenant
from adaptor.errors import AdaptorError
from adaptor.mcp.server import TENANT_KEY

MCP_PATH = "/mcp"


class McpEndpoint:
    """The ASGI app behind `/mcp`."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        services = scope["app"].state.services
        authorization: str | None = None
        tenant_header: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"x-tenant-id" and tenant_header is None:
                tenant_header = value.decode("latin-1")
        try:
            caller = await services.keys.authenticate(authorization)
            tenant_id = resolve_tenant(caller, tenant_header)
        except AdaptorError as exc:
            await _problem(exc, send)
            return
        scope.setdefault("state", {})[TENANT_KEY] = tenant_id
        await services.mcp.handle(scope, receive, send)


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
