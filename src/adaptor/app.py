"""The application factory: wiring, middleware and the one place errors become responses."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from adaptor import __version__
from adaptor.config import Settings, load_settings
from adaptor.errors import AdaptorError
from adaptor.executions.endpoints import router as executions_router
from adaptor.ids import new_request_id
from adaptor.integrations.endpoints import router as integrations_router
from adaptor.keys.endpoints import router as keys_router
from adaptor.observability.endpoints import router as ops_router
from adaptor.services import Services, build_services

log = structlog.get_logger("adaptor.app")

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
    """Request ids on every response, and a hard cap on request body size (413)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

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

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        if length is not None and length > self.max_body_bytes:
            await self._too_large(scope, receive, send_with_id)
            return

        # A body without Content-Length is counted as it streams in. Once it passes the limit
        # the app sees an error while reading, and whatever it answers is replaced by the 413.
        received = 0
        limit = self.max_body_bytes
        overflow = False
        started = False

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
                    await self._too_large(scope, receive, send_with_id)
                return
            await send_with_id(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await self._too_large(scope, receive, send_with_id)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(
            413,
            "Payload Too Large",
            f"The request body exceeds the limit of {self.max_body_bytes} bytes",
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _located(errors: list[Any]) -> list[dict[str, Any]]:
    located = []
    for error in errors:
        msg = str(error.get("msg", "is invalid"))
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            msg = f"is not valid JSON{': ' + str(reason) if reason else ''}"
        located.append({"loc": list(error.get("loc", ())), "msg": msg})
    return located


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AdaptorError)
    async def _adaptor_error(request: Request, exc: AdaptorError) -> Response:
        return problem(
            exc.status_code, exc.title, exc.message, errors=exc.errors, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = _located(list(exc.errors()))
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return problem(422, "Unprocessable Content", f"Validation failed: {summary}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, "Error")
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, title, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error(
            "app.unhandled_error",
            path=request.url.path,
            error_type=type(exc).__name__,
            request_id=request.scope.get("state", {}).get("request_id"),
        )
        return problem(500, "Internal Server Error", "An unexpected error occurred")


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
        ref = {"$ref": "#/components/schemas/Problem"}
        content = {PROBLEM: {"schema": ref}}
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status, response in list(responses.items()):
                    if status.startswith(("4", "5")):
                        response["content"] = content
                if path.startswith("/api/v2/"):
                    responses.setdefault(
                        "4XX", {"description": "Problem details (RFC 9457)", "content": content}
                    )
        app.openapi_schema = document
        return document

    return build


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service. Resources are created in the lifespan, never at import time."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services: Services = await build_services(settings)
        app.state.services = services
        if services.generated_admin_key:
            # Printed once, on the start that created it; only its hash is stored.
            print(  # noqa: T201
                f"\n  Admin API key (shown once, store it now): {services.generated_admin_key}\n",
                flush=True,
            )
        gc.collect()
        gc.freeze()
        log.info(
            "app.started",
            service=settings.service_name,
            database="sqlite" if services.database.is_sqlite else "postgresql",
            cache="redis" if settings.redis_url else "memory",
        )
        try:
            yield
        finally:
            await services.close()
            log.info("app.stopped")

    app = FastAPI(
        title="Adaptor Service",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_request_body_bytes)
    install_error_handlers(app)
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    app.include_router(ops_router)
    app.include_router(keys_router)
    app.include_router(integrations_router)
    app.include_router(executions_router)
    return app
