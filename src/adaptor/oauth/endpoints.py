"""OAuth2 consent routes: start an authorization, and the provider's callback."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response

from adaptor.dependencies import ServicesDep, TenantId
from adaptor.errors import AdaptorError
from adaptor.oauth.schemas import AuthorizeResponse, CallbackResult

router = APIRouter(tags=["oauth"])

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}
h1{{font-size:1.4rem}}</style></head>
<body><h1>{title}</h1><p>{detail}</p></body></html>
"""


def _page(title: str, detail: str, status_code: int) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), detail=html.escape(detail)),
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


@router.post("/api/v2/integrations/{integration_id}/oauth/authorize")
async def authorize(
    integration_id: str, tenant_id: TenantId, services: ServicesDep
) -> AuthorizeResponse:
    """Start consent for an authorization-code integration: the URL to send a person to."""
    return await services.oauth.authorize(tenant_id, integration_id)


@router.get(
    "/api/v2/oauth/callback",
    response_model=CallbackResult,
    responses={
        200: {"content": {"text/html": {}}},
        400: {
            "description": "Unknown, used or expired state, or access refused: a page saying "
            "why, or a problem with `Accept: application/json`.",
            "content": {"text/html": {}},
        },
    },
)
async def callback(
    services: ServicesDep,
    state: Annotated[str | None, Query(max_length=512)] = None,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
    error_description: Annotated[str | None, Query(max_length=2048)] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The provider's redirect after consent (no API key): an HTML page, or JSON on request."""
    wants_json = accept is not None and "application/json" in accept
    try:
        result = await services.oauth.callback(
            state=state, code=code, error=error, error_description=error_description
        )
    except AdaptorError as exc:
        if wants_json:
            raise
        return _page("The connection failed", exc.message, exc.status_code)
    if wants_json:
        return JSONResponse(result.model_dump(mode="json"), headers={"Cache-Control": "no-store"})
    return _page(
        "Connected",
        "The integration is connected; you can close this window.",
        200,
    )
