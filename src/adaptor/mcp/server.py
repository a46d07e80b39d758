"""The MCP server: the SDK's low-level `Server` over Streamable HTTP, stateless.

Stateless means no session lives in a process: every POST carries what it needs (the API key,
and on the 2026-07-28 protocol the version and capabilities too), so any replica answers any
request. Change notifications ride `subscriptions/listen` streams (2026-07-28), fed by the
tool catalog from the shared store's change notices, so a stream open on one replica hears
about a change made through another. Handshake-era clients (2025-06-18, 2025-11-25) are
served the same tools; having no session, they re-list instead of being notified.

`tools/call` runs the endpoint through `ExecutionService.execute_integration` with the
arguments as `input_data` and the HTTP request's id, exactly as `POST /execute` does (same
validation, limits, cache, breaker, logs and metrics).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from adaptor import __version__
from adaptor.domain import ExecutionResult
from adaptor.errors import AdaptorError, Conflict, NotFound, ValidationFailed
from adaptor.executions.service import ExecutionService
from adaptor.mcp.catalog import ToolCatalog
from adaptor.mcp.tools import structured

TENANT_KEY = "mcp_tenant"
"""Where the authenticated tenant sits in the ASGI scope's `state` for the handlers."""

MAX_TEXT = 20_000
"""Longest text content (the data as JSON when the endpoint has no summary template)."""

INSTRUCTIONS = (
    "Each tool calls one endpoint of one of the tenant's integrations with external systems. "
    "Pass the input document as the arguments (usually `variables`, as the tool's input "
    "schema describes). A failed call has isError true and `error.code`; when "
    "`error.retry_after` is set, wait that many seconds before trying again."
)


class McpService:
    """The MCP server of one process (see the module docstring)."""

    def __init__(
        self, catalog: ToolCatalog, executions: ExecutionService, *, max_body_bytes: int
    ) -> None:
        self.catalog = catalog
        self.executions = executions
        self.server: Server[Any] = Server(
            "adaptor-service",
            version=__version__,
            title="Adaptor Service",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=self._listen,
        )
        self.manager = StreamableHTTPSessionManager(
            self.server,
            stateless=True,
            json_response=True,
            max_request_body_size=max_body_bytes,
        )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the transport's task group for the app's lifetime."""
        async with self.manager.run():
            yield

    async def handle(self, scope: Any, receive: Any, send: Any) -> None:
        """Serve one authenticated HTTP request (`scope.state.mcp_tenant` set)."""
        await self.manager.handle_request(scope, receive, send)

    # handlers ---------------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tenant_id, _ = _caller(ctx)
        tenant_tools = await self.catalog.tools(tenant_id)
        return types.ListToolsResult(tools=tenant_tools.tools)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tenant_id, request_id = _caller(ctx)
        tenant_tools = await self.catalog.tools(tenant_id)
        target = tenant_tools.targets.get(params.name)
        if target is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        try:
            result = await self.executions.execute_integration(
                tenant_id,
                target.integration_id,
                target.endpoint,
                params.arguments or {},
                request_id=request_id,
            )
        except ValidationFailed as exc:
            arguments = [
                {"argument": ".".join(map(str, _argument(e["loc"]))), "msg": e["msg"]}
                for e in exc.errors
            ]
            named = "; ".join(f"{a['argument'] or '(arguments)'}: {a['msg']}" for a in arguments)
            return _failure(
                "validation_failed",
                f"The arguments do not fit the tool's input schema: {named}",
                request_id=request_id,
                errors=arguments,
            )
        except NotFound as exc:
            await self.catalog.changed(tenant_id, target.integration_id)
            return _failure("not_found", exc.message, request_id=request_id)
        except Conflict as exc:
            await self.catalog.changed(tenant_id, target.integration_id)
            return _failure("integration_disabled", exc.message, request_id=request_id)
        except AdaptorError as exc:
            return _failure("rejected", exc.message, request_id=request_id)
        return _result(result)

    async def _listen(
        self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        tenant_id, _ = _caller(ctx)
        return await self.catalog.listen_handler(tenant_id)(ctx, params)


def _caller(ctx: ServerRequestContext[Any]) -> tuple[str, str | None]:
    """`(tenant_id, request_id)` that the HTTP layer put on the request's scope."""
    request = ctx.request
    state = getattr(request, "scope", {}).get("state", {}) if request is not None else {}
    tenant_id = state.get(TENANT_KEY)
    if not isinstance(tenant_id, str):
        raise MCPError(types.INVALID_REQUEST, "The request is not authenticated")
    request_id = state.get("request_id")
    return tenant_id, request_id if isinstance(request_id, str) else None


def _argument(loc: list[Any]) -> list[Any]:
    """An input location (`body.input_data.variables.id`) as the argument path it names."""
    return loc[2:] if loc[:2] == ["body", "input_data"] else loc


def _result(result: ExecutionResult) -> types.CallToolResult:
    if result.success:
        summary = result.metadata.get("summary")
        text = summary if isinstance(summary, str) and summary else _json_text(result.data)
        return types.CallToolResult(
            content=[types.TextContent(text=text)], structured_content=structured(result.data)
        )
    error = result.error
    code = str(error.code) if error is not None else "upstream_error"
    message = error.message if error is not None else "The call failed"
    return _failure(
        code,
        message,
        request_id=result.request_id,
        retry_after=error.retry_after if error is not None else None,
        status_code=result.metadata.get("status_code"),
    )


def _failure(
    code: str,
    message: str,
    *,
    request_id: str | None,
    retry_after: int | None = None,
    status_code: Any = None,
    errors: list[dict[str, Any]] | None = None,
) -> types.CallToolResult:
    error: dict[str, Any] = {"code": code, "message": message, "retry_after": retry_after}
    if errors is not None:
        error["errors"] = errors
    if status_code is not None:
        error["status_code"] = status_code
    text = f"{code}: {message}"
    if retry_after is not None:
        text += f" (retry after {retry_after} s)"
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content={"error": error, "request_id": request_id},
        is_error=True,
    )


def _json_text(data: Any) -> str:
    text = orjson.dumps(data).decode()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
