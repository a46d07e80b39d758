"""Marketplace routes: the catalogue, the wizard, test-connection, install, ratings, installs,
analytics, and publishing (admin). Mounted only while ENABLE_MARKETPLACE is on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from adaptor.dependencies import Admin, TenantId, authenticate
from adaptor.domain import IntegrationConfig, IntegrationType
from adaptor.domain.marketplace import MarketplaceItem, MarketplaceItemSpec
from adaptor.executions.schemas import ConnectionTestResult
from adaptor.integrations.service import etag
from adaptor.marketplace.schemas import (
    Analytics,
    CatalogPage,
    CategoryCount,
    InstallPage,
    InstallRequest,
    RatingRequest,
    RatingResult,
    Wizard,
)
from adaptor.marketplace.service import MarketplaceManager, Sort
from adaptor.pagination import CURSOR_DESCRIPTION, CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT

if TYPE_CHECKING:
    from adaptor.services import Services

router = APIRouter(
    prefix="/api/v2/marketplace", tags=["marketplace"], dependencies=[Depends(authenticate)]
)


async def get_marketplace(request: Request) -> MarketplaceManager:
    services: Services = request.app.state.services
    assert services.marketplace is not None
    return services.marketplace


Marketplace = Annotated[MarketplaceManager, Depends(get_marketplace)]


@router.get("/items")
async def list_items(
    marketplace: Marketplace,
    q: Annotated[str | None, Query(max_length=200)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[IntegrationType | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    sort: Sort = "popularity",
) -> CatalogPage:
    """Search the catalogue over name, description, provider and tags; filter and sort."""
    return await marketplace.search(
        q=q, category=category, type=str(type) if type else None, tag=tag, sort=sort
    )


@router.get("/categories")
async def list_categories(marketplace: Marketplace) -> list[CategoryCount]:
    """Every category with how many items it holds."""
    return await marketplace.categories()


@router.get("/items/{item_id}")
async def get_item(item_id: str, marketplace: Marketplace) -> MarketplaceItem:
    """One item with its full template."""
    return await marketplace.get(item_id)


@router.get("/items/{item_id}/wizard")
async def get_wizard(item_id: str, marketplace: Marketplace) -> Wizard:
    """The ordered setup steps: credentials first, then the connector's configuration."""
    return await marketplace.wizard(item_id)


@router.post("/items/{item_id}/test-connection")
async def test_connection(
    item_id: str, body: InstallRequest, tenant_id: TenantId, marketplace: Marketplace
) -> ConnectionTestResult:
    """Run the template's test endpoint with these credentials; nothing is stored."""
    return await marketplace.test_connection(tenant_id, item_id, body)


@router.post("/items/{item_id}/install", status_code=status.HTTP_201_CREATED)
async def install_item(
    item_id: str,
    body: InstallRequest,
    tenant_id: TenantId,
    marketplace: Marketplace,
    response: Response,
) -> IntegrationConfig:
    """Install the item: a new integration owned by the tenant, secrets masked."""
    created = await marketplace.install_integration(tenant_id, item_id, body)
    response.headers["ETag"] = etag(created.version)
    response.headers["Location"] = f"/api/v2/integrations/{created.integration_id}"
    return created


@router.post("/items/{item_id}/ratings")
async def rate_item(
    item_id: str, body: RatingRequest, tenant_id: TenantId, marketplace: Marketplace
) -> RatingResult:
    """Rate the item 1-5; the tenant's new rating replaces its earlier one."""
    return await marketplace.rate(tenant_id, item_id, body.rating)


@router.get("/installs")
async def list_installs(
    tenant_id: TenantId,
    marketplace: Marketplace,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description=CURSOR_DESCRIPTION)
    ] = None,
) -> InstallPage:
    """The tenant's installs, oldest first, with the version each installed."""
    return await marketplace.installs(tenant_id, cursor=cursor, limit=limit)


@router.post("/installs/{integration_id}/upgrade")
async def upgrade_install(
    integration_id: str, tenant_id: TenantId, marketplace: Marketplace, response: Response
) -> IntegrationConfig:
    """Rebuild an installed integration from its item's newest version."""
    upgraded = await marketplace.upgrade(tenant_id, integration_id)
    response.headers["ETag"] = etag(upgraded.version)
    return upgraded


@router.get("/items/{item_id}/analytics")
async def item_analytics(item_id: str, _admin: Admin, marketplace: Marketplace) -> Analytics:
    """Installs, active installs, executions and success rate over 7 and 30 days, p50 latency."""
    return await marketplace.analytics(item_id)


@router.post("/items", status_code=status.HTTP_201_CREATED)
async def publish_item(
    body: MarketplaceItemSpec, _admin: Admin, marketplace: Marketplace
) -> MarketplaceItem:
    """Publish a new item after its template passes every validation rule (admin)."""
    return await marketplace.publish(body, update=False)


@router.put("/items")
async def publish_version(
    body: MarketplaceItemSpec, _admin: Admin, marketplace: Marketplace
) -> MarketplaceItem:
    """Publish a new version of an item; existing installs keep theirs until upgraded."""
    return await marketplace.publish(body, update=True)
