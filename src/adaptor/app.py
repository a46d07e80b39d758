"""The application factory: wiring, middleware and the one place errors become responses."""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.staticfiles import StaticFiles

from adaptor import __version__
from adaptor.asgi import replay_body
from adaptor.config import Settings, load_settings
from adaptor.dependencies import resolve_tenant
from adaptor.domain import ExecutionRequest
from adaptor.errors import AdaptorError
from adaptor.executions.endpoints import router as executions_router
from adaptor.ids import new_request_id
from adaptor.imports.endpoints import IMPORT_PATH
from adaptor.imports.endpoints import router as imports_router
from adaptor.integrations.endpoints import router as integrations_router
from adaptor.keys.endpoints import router as keys_router
from adaptor.marketplace.endpoints import router as marketplace_router
from adaptor.mcp.endpoints import MCP_PATH, McpEndpoint
from adaptor.oauth.endpoints import router as oauth_router
from adaptor.observability.endpoints import router as ops_router
from adaptor.observability.tracing import TraceContextMiddleware, Tracing
from adaptor.services import Services, build_services, tracing_for
from adaptor.webhooks.endpoints import router as webhooks_router

log = structlog.get_logger("adaptor.app")
access_log = structlog.get_logger("adaptor.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBLEM = "application/problem+json"

DESCRIPTION = """\
Configure integrations with external systems and execute them mid-conversation.

* Every `/api/v2` route except inbound webhooks and the OAuth callback needs
  `Authorization: Bearer <api key>`.
* Tenant-scoped routes take `X-Tenant-ID`. A tenant key may omit it (its own tenant is used) and
  may name only its own tenant (else 403); an admin key must name one.
* Errors are RFC 9457 problem JSON (`type`, `title`, `status`, `detail`, and `errors` with
  `loc`/`msg` for each field at fault). 422 names every offending field; a body that is not valid
  JSON is also a 422, located at `body`.
* Every response carries `X-Request-ID`.
* Writes to an integration accept `If-Match` with the `ETag` of a read; a stale one is a 412.
"""


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM, headers=headers)


class RequestContextMiddleware:
    """Request ids on every response, a hard cap on request body size (413), and the direct
    routes for executions and MCP posts.

    `POST /api/v2/execute/{integration_id}/{endpoint_name}` is the call a conversation waits
    on, so it is answered here without FastAPI's routing and dependency resolution: the same
    authentication, tenant check, body model and service call, in a fraction of the time. A
    body that does not validate, or anything unusual about the request (no Content-Length, not
    JSON, an odd path), goes to the FastAPI route with the body replayed, so every error reads
    exactly as the documented route's. `POST /mcp` (an agent's tool call) goes straight to the
    MCP endpoint for the same reason.
    """

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.path_limits = path_limits or {}
        """Routes with a body limit of their own (the OpenAPI import)."""
        self.mcp = McpEndpoint()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        length: int | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:128]
            elif name == b"content-length" and value.isdigit():
                length = int(value)
        if not request_id:
            request_id = new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            limit = self.path_limits.get(scope["path"], self.max_body_bytes)
            if length is not None and length > limit:
                await self._too_large(scope, receive, send_with_id, limit)
                return

            if length is not None and scope["method"] == "POST":
                path = scope["path"]
                target = _execute_target(path) if path.startswith(EXECUTE_PREFIX) else None
                if target is not None:
                    scope["state"]["route"] = EXECUTE_ROUTE
                    await self._execute(scope, receive, send_counted, send_with_id, target, header)
                    return
                if path == MCP_PATH:
                    # An agent's tool call: straight to the MCP endpoint, a plain ASGI app that
                    # answers its own errors, past FastAPI's exception middleware and router.
                    # Its GET and DELETE, and a POST without a length, take the mounted route.
                    scope["state"]["route"] = MCP_PATH
                    await self._general(scope, receive, send_with_id, limit, self.mcp)
                    return

            await self._general(scope, receive, send_with_id, limit)
        finally:
            # After the response has gone out: the line costs the caller no latency.
            _access_line(scope, status, started)

    async def _general(
        self, scope: Scope, receive: Receive, send: Send, limit: int, app: ASGIApp | None = None
    ) -> None:
        """`app` (the FastAPI app unless given) with the body counted against `limit` and an
        unexpected error answered as a 500 problem."""
        # A body without Content-Length is counted as it streams in. Once it passes the limit
        # the app sees an error while reading, and whatever it answers is replaced by the 413.
        # A defect is answered here too (a bare 500 problem), so that it carries X-Request-ID
        # like every other response; Starlette's own handler sits outside this middleware.
        received = 0
        overflow = False
        started = False  # a response has begun (ours or the app's)

        async def bounded_receive() -> Message:
            nonlocal received, overflow
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    overflow = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if overflow:
                if not started:
                    started = True
                    await self._too_large(scope, receive, send, limit)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await (app or self.app)(scope, bounded_receive, guarded_send)
        except Exception as exc:
            if started:
                if isinstance(exc, _BodyTooLarge):
                    return
                raise  # too late to answer: the server closes the connection
            if overflow:  # the app may have wrapped our error in one of its own
                await self._too_large(scope, receive, send, limit)
            else:
                await unexpected_problem(scope, exc)(scope, receive, send)

    async def _execute(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        send_with_id: Send,
        target: tuple[str, str],
        id_header: tuple[bytes, bytes],
    ) -> None:
        """The execute route, answered directly (see the class docstring). `send_with_id`
        adds the X-Request-ID header; the success response carries it already."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send_with_id)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)

        authorization: str | None = None
        tenant_header: str | None = None
        json_body = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"x-tenant-id":
                if tenant_header is None:
                    tenant_header = value.decode("latin-1")
            elif name == b"content-type":
                json_body = value.split(b";", 1)[0].strip().lower() == b"application/json"

        request: ExecutionRequest | None = None
        if json_body:
            try:
                request = ExecutionRequest.model_validate_json(body)
            except ValidationError:
                request = None
        if request is None:
            await self.app(scope, replay_body(body, receive), send_with_id)
            return

        try:
            services: Services = scope["app"].state.services
            caller = await services.keys.authenticate(authorization)
            tenant_id = resolve_tenant(caller, tenant_header)
            scope["state"]["tenant_id"] = tenant_id
            payload = await services.executions.execute_serialised(
                tenant_id,
                target[0],
                target[1],
                request.input_data,
                request.options,
                context=request.context,
                request_id=scope["state"]["request_id"],
            )
        except AdaptorError as exc:
            await adaptor_problem(exc)(scope, receive, send_with_id)
            return
        except Exception as exc:
            await unexpected_problem(scope, exc)(scope, receive, send_with_id)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(payload)).encode("ascii")),
                    (b"content-type", b"application/json"),
                    id_header,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, limit: int | None = None
    ) -> None:
        response = problem(
            413,
            "Payload Too Large",
            f"The request body exceeds the limit of {limit or self.max_body_bytes} bytes",
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


EXECUTE_PREFIX = "/api/v2/execute/"
EXECUTE_ROUTE = "/api/v2/execute/{integration_id}/{endpoint_name}"


def _access_line(scope: Scope, status: int, started: float) -> None:
    """One info line per request: method, route template (never the raw path, which holds
    ids), status, duration, request id and tenant. Nothing at all below LOG_LEVEL=info (the
    level `configure_logging` gives both structlog and the standard library)."""
    if not logging.root.isEnabledFor(logging.INFO):
        return
    state = scope.get("state", {})
    template = state.get("route") or getattr(scope.get("route"), "path", None)
    if template is None and status < 400:
        template = scope.get("path")  # a fixed path (/docs, /openapi.json): no ids in it
    access_log.info(
        "http.request",
        method=scope.get("method"),
        route=template,
        status=status,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        request_id=state.get("request_id"),
        tenant_id=state.get("tenant_id"),
    )


def _execute_target(path: str) -> tuple[str, str] | None:
    """`(integration_id, endpoint_name)` of an execute path, or None for any other path
    (batch, a trailing slash, an empty or extra segment)."""
    integration_id, slash, endpoint_name = path[len(EXECUTE_PREFIX) :].partition("/")
    if not integration_id or not endpoint_name or not slash or "/" in endpoint_name:
        return None
    return integration_id, endpoint_name


def _located(errors: list[Any]) -> list[dict[str, Any]]:
    located = []
    for error in errors:
        msg = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        loc = list(error.get("loc", ()))
        if error.get("type") == "json_invalid":
            # FastAPI locates a decode error as ("body", offset): the offset is a position in
            # the text, not a field.
            reason = (error.get("ctx") or {}).get("error", "")
            offset = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
            where = f" at character {offset}" if offset is not None else ""
            msg = f"is not valid JSON{where}{': ' + str(reason) if reason else ''}"
            loc = loc[:1]
        located.append({"loc": loc, "msg": msg})
    return located


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _content_type_problem(request: Request, errors: list[dict[str, Any]]) -> str | None:
    """Why a JSON body was not read, when the Content-Type is the cause."""
    if request.method not in _BODY_METHODS or not any(
        e["loc"][:1] == ["body"] for e in errors if e["loc"]
    ):
        return None
    content_type = request.headers.get("content-type")
    if content_type is None:
        return "is missing: send the body as JSON with Content-Type: application/json"
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and "+json" in media):
        return None
    return f"must be application/json (got {media or 'nothing'})"


def adaptor_problem(exc: AdaptorError) -> Response:
    """The problem response for an error the service raised on purpose."""
    return problem(exc.status_code, exc.title, exc.message, errors=exc.errors, headers=exc.headers)


def unexpected_problem(scope: Scope, exc: Exception) -> Response:
    """Log a defect with its message and traceback (redacted like every log line) and the
    request id, and answer a bare 500 (its X-Request-ID finds the log line)."""
    request_id = scope.get("state", {}).get("request_id")
    log.error(
        "app.unhandled_error",
        method=scope.get("method"),
        path=scope.get("path"),
        error_type=type(exc).__name__,
        error=str(exc),
        request_id=request_id,
        exc_info=exc,
    )
    return problem(500, "Internal Server Error", "An unexpected error occurred")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AdaptorError)
    async def _adaptor_error(request: Request, exc: AdaptorError) -> Response:
        return adaptor_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = _located(list(exc.errors()))
        content_type = _content_type_problem(request, errors)
        if content_type is not None:
            errors = [e for e in errors if e["loc"][:1] != ["body"]]
            errors.insert(0, {"loc": ["header", "Content-Type"], "msg": content_type})
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem(422, "Unprocessable Content", f"Validation failed: {summary}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path; the path may
            # have one route per method.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request.scope))}
        return problem(exc.status_code, title, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return unexpected_problem(request.scope, exc)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route serves at this request's path (asked of the router, so
    included routers and mounts answer for themselves). A path the API documents literally
    (`/api/v2/integrations/import`) is that resource alone: a template that would also match
    it (`/api/v2/integrations/{integration_id}`) does not add its methods."""
    documented = app.openapi().get("paths", {}).get(scope["path"])
    if documented:
        return [
            method
            for method in _METHODS
            if method.lower() in documented or (method == "HEAD" and "get" in documented)
        ]
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in app.router.routes
        )
    ]


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details. `errors` locates each field at fault.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Unprocessable Content"},
        "status": {"type": "integer", "example": 422},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                    },
                    "msg": {"type": "string"},
                },
            },
        },
    },
}


BEARER_SCHEME = "bearerAuth"
HTML = "text/html"

UNAUTHENTICATED_PATHS = ("/api/v2/webhooks/", "/api/v2/oauth/callback")
"""Routes the contract leaves without an API key (inbound webhooks, the OAuth callback)."""


def _drop_null_branch(parameter: dict[str, Any]) -> None:
    """An optional header or query parameter is sent or left out; it is never JSON null. The
    generated `anyOf: [{...}, {"type": "null"}]` would invite a literal `null` value."""
    schema = parameter.get("schema", {})
    branches = schema.get("anyOf")
    if parameter.get("in") in ("header", "query") and isinstance(branches, list):
        kept = [branch for branch in branches if branch.get("type") != "null"]
        if len(kept) == 1 and len(kept) < len(branches):
            rest = {key: value for key, value in schema.items() if key != "anyOf"}
            parameter["schema"] = {**kept[0], **rest}


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The generated document with every error response described as problem JSON."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["Problem"] = PROBLEM_SCHEMA
        document["components"]["securitySchemes"] = {
            BEARER_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key (`adk_…`): the admin key printed at first start, or "
                "a tenant key from `POST /api/v2/admin/api-keys`.",
            }
        }
        ref = {"$ref": "#/components/schemas/Problem"}
        content = {PROBLEM: {"schema": ref}}
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                if path.startswith("/api/v2/") and not path.startswith(UNAUTHENTICATED_PATHS):
                    operation["security"] = [{BEARER_SCHEME: []}]
                for parameter in operation.get("parameters", []):
                    _drop_null_branch(parameter)
                responses = operation.setdefault("responses", {})
                for status, response in list(responses.items()):
                    if status.startswith(("4", "5")):
                        # A page a person reads (the OAuth callback's) stays documented.
                        pages = {k: v for k, v in response.get("content", {}).items() if k == HTML}
                        response["content"] = {**content, **pages}
                if path.startswith("/api/v2/"):
                    responses.setdefault(
                        "4XX", {"description": "Problem details (RFC 9457)", "content": content}
                    )
        app.openapi_schema = document
        return document

    return build


DOCS_ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI from the `swagger-ui-bundle` package, so it works offline) and
    `GET /` redirecting to it."""
    app.mount(
        DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets"
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True},
        )

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")


GC_THRESHOLDS = (10_000, 50, 100)
"""The cyclic garbage collector's thresholds once the service has started (Python's are 700,
10, 10). Every execution allocates hundreds of containers (the mapped customer list alone is
a hundred dicts), so with the defaults the youngest generation is collected every few requests
and, since the objects frozen at startup no longer count as long-lived, the whole heap about
once a second: measured at concurrency 16, 7 % of the CPU of a plain execution and 5 % of a
mapped one, and stalls of 3-7 ms that every request in flight waits out. Collections still
run, fewer and larger: the youngest generation every 10,000 allocations, the oldest after
fifty million. (The memory scenario of `bench/` checks that nothing accumulates.)"""


def create_app(settings: Settings | None = None, *, tracing: Tracing | None = None) -> FastAPI:
    """Build the service. Resources are created in the lifespan, never at import time."""
    settings = settings or load_settings()
    tracing = tracing or tracing_for(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services: Services = await build_services(settings, tracing=tracing)
        app.state.services = services
        if services.generated_admin_key:
            # Printed once, on the start that created it; only its hash is stored.
            # On stderr, for the person starting it: stdout carries only JSON log lines.
            print(  # noqa: T201
                f"\n  Admin API key (shown once, store it now): {services.generated_admin_key}\n",
                file=sys.stderr,
                flush=True,
            )
        gc.collect()
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info(
            "app.started",
            service=settings.service_name,
            database="sqlite" if services.database.is_sqlite else "postgresql",
            cache="redis" if settings.redis_url else "memory",
            data_dir=str(settings.data_dir),
        )
        try:
            async with services.mcp.running():
                yield
        finally:
            gc.set_threshold(*thresholds)
            await services.close()
            log.info("app.stopped")

    app = FastAPI(
        title="Adaptor Service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below from bundled assets, without a CDN
        openapi_url="/openapi.json",
        # Spans, metrics and logs are the service's own (adaptor.observability): FastAPI's
        # native telemetry would only duplicate them, and its per-request check of the global
        # OpenTelemetry providers costs every request a few microseconds.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        path_limits={IMPORT_PATH: settings.max_import_bytes},
    )
    if tracing.enabled:
        app.add_middleware(TraceContextMiddleware)  # outermost: the caller's trace context
    install_error_handlers(app)
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    install_docs(app)
    app.include_router(ops_router)
    app.include_router(keys_router)
    app.include_router(imports_router)  # before /integrations/{integration_id}
    app.include_router(integrations_router)
    app.include_router(executions_router)
    app.include_router(webhooks_router)
    app.include_router(oauth_router)
    # Plain ASGI (no FastAPI body parsing or dependencies), matched first: a tool call is on
    # the conversation's path like an execution.
    app.router.routes.insert(
        0,
        Route(MCP_PATH, McpEndpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False),
    )
    if settings.enable_marketplace:
        app.include_router(marketplace_router)
    return app
