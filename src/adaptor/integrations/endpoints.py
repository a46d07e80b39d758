"""Integration management routes (tenant-scoped)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response, status

from adaptor.dependencies import PageCursor, PageLimit, ServicesDep, TenantId
from adaptor.domain import IntegrationConfig, IntegrationSpec, IntegrationType
from adaptor.integrations.schemas import IntegrationPage
from adaptor.integrations.service import etag
from adaptor.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/api/v2/integrations", tags=["integrations"])

IF_MATCH_PATTERN = r'^ *(\*|(W/)?"?[0-9]{1,18}"?)( *, *(W/)?"?[0-9]{1,18}"?)* *$'

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The ETag from a read (`"1"`; a bare `1` means the same), or `*`; the '
        "write is refused with 412 if it is stale.",
        pattern=IF_MATCH_PATTERN,
    ),
]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_integration(
    body: IntegrationSpec, tenant_id: TenantId, services: ServicesDep, response: Response
) -> IntegrationConfig:
    """Create an integration for the tenant; secrets are stored encrypted and read back masked."""
    created = await services.integrations.create(tenant_id, body)
    response.headers["ETag"] = etag(created.version)
    response.headers["Location"] = f"/api/v2/integrations/{created.integration_id}"
    return created


@router.get("")
async def list_integrations(
    tenant_id: TenantId,
    services: ServicesDep,
    type: Annotated[IntegrationType | None, Query()] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    enabled: Annotated[bool | None, Query()] = None,
    limit: PageLimit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> IntegrationPage:
    """List the tenant's integrations, oldest first, filtered by type, category or enabled."""
    filters = {
        "type": str(type) if type else None,
        "category": category,
        "enabled": enabled,
    }
    return await services.integrations.page(tenant_id, filters=filters, cursor=cursor, limit=limit)


@router.get("/{integration_id}")
async def get_integration(
    integration_id: str, tenant_id: TenantId, services: ServicesDep, response: Response
) -> IntegrationConfig:
    """Read one integration with every secret shown as `********` (oauth2: `auth_status`)."""
    config = await services.oauth.describe(
        await services.integrations.get(tenant_id, integration_id)
    )
    response.headers["ETag"] = etag(config.version)
    return config


@router.put("/{integration_id}")
async def replace_integration(
    integration_id: str,
    body: IntegrationSpec,
    tenant_id: TenantId,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> IntegrationConfig:
    """Replace an integration. A secret sent as `********` keeps its stored value."""
    config = await services.integrations.replace(tenant_id, integration_id, body, if_match)
    response.headers["ETag"] = etag(config.version)
    return config


@router.patch("/{integration_id}")
async def patch_integration(
    integration_id: str,
    body: Annotated[
        dict[str, Any],
        Body(description="JSON merge patch (RFC 7396): objects merge, null removes a field."),
    ],
    tenant_id: TenantId,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> IntegrationConfig:
    """Change part of an integration. A secret sent as `********` keeps its stored value."""
    config = await services.integrations.patch(tenant_id, integration_id, body, if_match)
    response.headers["ETag"] = etag(config.version)
    return config


@router.delete("/{integration_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_integration(
    integration_id: str, tenant_id: TenantId, services: ServicesDep, if_match: IfMatch = None
) -> Response:
    """Delete an integration."""
    await services.integrations.delete(tenant_id, integration_id, if_match)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
