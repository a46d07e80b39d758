"""Web-layer dependencies shared by the endpoint modules: services, caller and tenant."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Query, Request

from adaptor.errors import Forbidden, ValidationFailed
from adaptor.keys.schemas import TENANT_PATTERN, Caller
from adaptor.pagination import CURSOR_DESCRIPTION, CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT

if TYPE_CHECKING:
    from adaptor.services import Services

_TENANT = re.compile(TENANT_PATTERN)


async def get_services(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated["Services", Depends(get_services)]


async def authenticate(
    request: Request,
    authorization: Annotated[
        str | None, Header(description="`Bearer <api key>`", include_in_schema=False)
    ] = None,
) -> Caller:
    services: Services = request.app.state.services
    return await services.keys.authenticate(authorization)


Principal = Annotated[Caller, Depends(authenticate)]


async def require_admin(caller: Principal) -> Caller:
    if not caller.is_admin:
        raise Forbidden("This route needs an admin API key")
    return caller


Admin = Annotated[Caller, Depends(require_admin)]


async def tenant_scope(
    request: Request,
    caller: Principal,
    x_tenant_id: Annotated[
        str | None,
        Header(
            alias="X-Tenant-ID",
            description="Tenant to act for. Optional with a tenant key (defaults to its own "
            "tenant); required with an admin key.",
        ),
    ] = None,
) -> str:
    tenant_id = resolve_tenant(caller, x_tenant_id)
    request.state.tenant_id = tenant_id  # for the access log line
    return tenant_id


def resolve_tenant(caller: Caller, x_tenant_id: str | None) -> str:
    """The tenant a request acts for: X-Tenant-ID checked against the caller's key."""
    if x_tenant_id is None:
        if caller.tenant_id is None:
            raise ValidationFailed.of(
                [(("header", "X-Tenant-ID"), "is required with an admin key")]
            )
        return caller.tenant_id
    if not _TENANT.match(x_tenant_id):
        raise ValidationFailed.of(
            [(("header", "X-Tenant-ID"), "must be 1-255 letters, digits or . _ : -")]
        )
    if not caller.is_admin and caller.tenant_id != x_tenant_id:
        raise Forbidden("This API key may not act for that tenant")
    return x_tenant_id


TenantId = Annotated[str, Depends(tenant_scope)]


PageLimit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Default {DEFAULT_LIMIT}.")]
"""`?limit=` of every list (1-500)."""
PageCursor = Annotated[str | None, Query(pattern=CURSOR_PATTERN, description=CURSOR_DESCRIPTION)]
"""`?cursor=` of every list: the previous page's `next_cursor`."""
