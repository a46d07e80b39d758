"""The MCP server: the SDK's low-level `Server` over Streamable HTTP, stateless.

Stateless means no session lives in a process: every POST carries what it needs (the API key,
and on the 2026-07-28 protocol the version and capabilities too), so any replica answers any
request. Change notifications ride `subscriptions/listen` streams (2026-07-28), fed by the
tool catalog from the shared store's change notices, so a stream open on one replica hears
about a change made through another. Handshake-era clients (2025-06-18, 2025-11-25) are
served the same tools; having no session, they re-list instead of being notified.

`tools/call` runs the endpoint through `ExecutionService.execute_serialised` with the
arguments as `input_data` and the HTTP request's id, exactly as `POST /execute` does (same
validation, limits, cache, breaker, logs and metrics).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import mcp_types as types
import orjson
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError

from adaptor import __version__
from adaptor.errors import AdaptorError, Conflict, NotFound, ValidationFailed
from adaptor.executions.service import ExecutionService
from adaptor.mcp.catalog import ToolCatalog
from adaptor.mcp.tools import structured

CURRENT_TENANT: ContextVar[str | None] = ContextVar("mcp_tenant", default=None)
"""The authenticated tenant of the request being served (set by the `/mcp` endpoint)."""

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
        self.direct_calls = True
        """Answer plain 2026-07-28 tool calls on the direct path (see `adaptor.mcp.direct`)."""
        self.server: Server[Any] = Server(
            "adaptor-service",
            version=__version__,
            title="Adaptor Service",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=self._listen,
            get_tool_input_schema=self._input_schema,
        )
        self.server_info = self.server.server_info.model_dump(
            by_alias=True, mode="json", exclude_none=True
        )
        """The `serverInfo` stamp of 2026-07-28 results (for the direct path)."""
        # The SDK's default OpenTelemetry span per message: the service has no tracer, and the
        # span is a measurable share of a call's CPU.
        self.server.middleware = []
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

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        """For the transport's `Mcp-Param-*` header check, which would otherwise run the
        whole `tools/list` handler on every call: the caller's cached tool, if listed."""
        tenant_id = CURRENT_TENANT.get()
        cached = self.catalog.cached(tenant_id) if tenant_id is not None else None
        tool = cached.by_name.get(name) if cached is not None else None
        return tool.input_schema if tool is not None else None

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
        result = await self.call_tool(tenant_id, request_id, params.name, params.arguments or {})
        if result is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        return result

    async def call_tool(
        self, tenant_id: str, request_id: str | None, name: str, arguments: dict[str, Any]
    ) -> types.CallToolResult | None:
        """Run the tool `name` of the tenant with `arguments` as `input_data` (None: no such
        tool). Failures are results with `isError`, as the protocol wants them."""
        target = (await self.catalog.tools(tenant_id)).targets.get(name)
        if target is None:
            return None
        try:
            payload = await self.executions.execute_serialised(
                tenant_id, target.integration_id, target.endpoint, arguments, request_id=request_id
            )
        except ValidationFailed as exc:
            problems = [
                {"argument": ".".join(map(str, _argument(e["loc"]))), "msg": e["msg"]}
                for e in exc.errors
            ]
            named = "; ".join(f"{a['argument'] or '(arguments)'}: {a['msg']}" for a in problems)
            return _failure(
                "validation_failed",
                f"The arguments do not fit the tool's input schema: {named}",
                request_id=request_id,
                errors=problems,
            )
        except NotFound as exc:
            await self.catalog.changed(tenant_id, target.integration_id)
            return _failure("not_found", exc.message, request_id=request_id)
        except Conflict as exc:
            await self.catalog.changed(tenant_id, target.integration_id)
            return _failure("integration_disabled", exc.message, request_id=request_id)
        except AdaptorError as exc:
            return _failure("rejected", exc.message, request_id=request_id)
        return _result(orjson.loads(payload))

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


def _result(result: dict[str, Any]) -> types.CallToolResult:
    """The tool result for an `ExecutionResult` document (as `/execute` would answer it)."""
    if result["success"]:
        summary = (result.get("metadata") or {}).get("summary")
        data = result.get("data")
        text = summary if isinstance(summary, str) and summary else _json_text(data)
        return types.CallToolResult(
            content=[types.TextContent(text=text)], structured_content=structured(data)
        )
    error = result.get("error") or {}
    return _failure(
        str(error.get("code") or "upstream_error"),
        str(error.get("message") or "The call failed"),
        request_id=result.get("request_id"),
        retry_after=error.get("retry_after"),
        status_code=(result.get("metadata") or {}).get("status_code"),
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
