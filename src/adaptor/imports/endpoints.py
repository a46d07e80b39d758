"""`POST /api/v2/integrations/import` (tenant-scoped).

Included before the integrations router, so the path is never read as an integration id. Its
body may be up to `MAX_IMPORT_BYTES` (real vendor descriptions are 1-3 MB), apart from the
general request limit; the request middleware applies that limit to this path.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from adaptor.dependencies import ServicesDep, TenantId
from adaptor.domain import IntegrationConfig
from adaptor.imports.schemas import ImportRequest
from adaptor.imports.service import ImportService
from adaptor.integrations.service import etag

IMPORT_PATH = "/api/v2/integrations/import"

router = APIRouter(tags=["integrations"])


@router.post(
    IMPORT_PATH,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": IntegrationConfig, "description": "`dry_run`: nothing stored"}},
)
async def import_integration(
    body: ImportRequest, tenant_id: TenantId, services: ServicesDep, response: Response
) -> IntegrationConfig:
    """Create an integration from an OpenAPI 3.0/3.1 description: one endpoint per
    operation, parameters and body properties mapped from `variables.*`, `validation_schema`
    from the schemas, `base_url` from `servers[0]`, `auth_config` from `securitySchemes`.

    When the auth needs credentials the integration is stored disabled: PATCH it with
    `auth_config.credentials` and `enabled: true`. With `dry_run` the answer is 200 with the
    integration that would be created, and nothing is stored. A document that is not OpenAPI
    3, or a `$ref` that cannot be followed, is a 422 locating each problem under
    `body.document`.
    """
    outcome = await ImportService(services.integrations).import_openapi(tenant_id, body)
    config = outcome.integration
    if not outcome.stored:
        response.status_code = status.HTTP_200_OK
        return config
    response.headers["ETag"] = etag(config.version)
    response.headers["Location"] = f"/api/v2/integrations/{config.integration_id}"
    return config
