"""`adaptor rotate-key`: every stored secret moves to the newest key."""

from __future__ import annotations

import httpx
from cryptography.fernet import Fernet

from adaptor.integrations.service import IntegrationService
from adaptor.security.crypto import SecretBox
from adaptor.services import Services
from tests.conftest import Tenant
from tests.integrations.payloads import rest_integration


async def test_rotation_reencrypts_under_the_newest_key(
    services: Services, app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    integration_id = created.json()["integration_id"]
    old_key = services.settings.encryption_key
    assert old_key is not None
    new_key = Fernet.generate_key().decode()
    both = IntegrationService(
        services.database, SecretBox.from_setting(f"{new_key},{old_key}"), services.mapping
    )
    assert await both.rotate_secrets() >= 1
    only_new = IntegrationService(services.database, SecretBox([new_key]), services.mapping)
    loaded = await only_new.load(tenant.tenant_id, integration_id)
    assert loaded.config.auth_config.credentials["api_key"] == "sk_live_SECRET_1234567890"
    back = IntegrationService(
        services.database, SecretBox.from_setting(f"{old_key},{new_key}"), services.mapping
    )
    await back.rotate_secrets()  # leave the shared database as the other tests expect it
