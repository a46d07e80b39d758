"""Admin routes for caller API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from adaptor.dependencies import Admin, ServicesDep
from adaptor.keys.schemas import TENANT_PATTERN, ApiKeyCreate, ApiKeyCreated, ApiKeyPage
from adaptor.pagination import CURSOR_DESCRIPTION, CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/api/v2/admin/api-keys", tags=["api keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyCreate, _: Admin, services: ServicesDep) -> ApiKeyCreated:
    """Issue a tenant API key. The plain key is returned only in this response."""
    return await services.keys.create(
        tenant_id=body.tenant_id, name=body.name, expires_at=body.expires_at
    )


@router.get("")
async def list_api_keys(
    _: Admin,
    services: ServicesDep,
    tenant_id: Annotated[str | None, Query(pattern=TENANT_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description=CURSOR_DESCRIPTION)
    ] = None,
) -> ApiKeyPage:
    """List API keys (never their secrets), optionally for one tenant."""
    return await services.keys.page(tenant_id=tenant_id, cursor=cursor, limit=limit)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(key_id: str, _: Admin, services: ServicesDep) -> Response:
    """Revoke an API key; requests made with it are refused with 401 from then on."""
    await services.keys.revoke(key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
