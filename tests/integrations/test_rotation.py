"""`adaptor rotate-key`: every stored secret moves to the newest key."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from adaptor.app import create_app
from adaptor.domain import IntegrationSpec
from adaptor.integrations.repository import IntegrationRepository
from adaptor.integrations.service import IntegrationService
from adaptor.security.crypto import SecretBox, fingerprint
from adaptor.services import Services
from tests.conftest import Tenant, serve_app
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


async def test_undecryptable_secrets_are_auth_failed_and_health_degraded(
    app_client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    """Secrets stored under a key the service no longer has: the executions say so, nothing
    is a 500, and readiness reports it from start-up on."""
    created = await app_client.post(
        "/api/v2/integrations",
        json=rest_integration(base_url="http://127.0.0.1:9"),
        headers=tenant.headers,
    )
    integration_id = created.json()["integration_id"]
    lost_key = Fernet.generate_key().decode()
    async with services.database.session() as session:
        row = await IntegrationRepository(session).get(tenant.tenant_id, integration_id)
        assert row is not None
        row.secrets = SecretBox([lost_key]).encrypt([["auth_config.credentials.api_key", "x"]])
    try:
        restarted = create_app(services.settings)
        async with serve_app(restarted) as client:
            ready = await client.get("/health/ready")
            assert ready.status_code == 200
            assert ready.json()["checks"]["encryption"] == "degraded"
            assert ready.json()["status"] == "degraded"
            executed = await client.post(
                f"/api/v2/execute/{integration_id}/get_customer",
                json={"input_data": {"variables": {"customer_id": "1"}}},
                headers=tenant.headers,
            )
            assert executed.status_code == 200, executed.text
            error = executed.json()["error"]
            assert error["code"] == "auth_failed"
            assert integration_id in error["message"]
            assert "cannot be decrypted" in error["message"]
            read = await client.get(
                f"/api/v2/integrations/{integration_id}", headers=tenant.headers
            )
            assert read.status_code == 200
            # Sending the secret again repairs the integration.
            repaired = await client.patch(
                f"/api/v2/integrations/{integration_id}",
                json={"auth_config": {"credentials": {"api_key": "sk_new_value_123"}}},
                headers=tenant.headers,
            )
            assert repaired.status_code == 200, repaired.text
    finally:
        await app_client.delete(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)


def test_rotate_key_updates_the_development_key_file(tmp_path: Path) -> None:
    """README's rotation, then a restart without ENCRYPTION_KEY: the secrets still open."""
    import asyncio

    from click.testing import CliRunner

    from adaptor.cli import main
    from adaptor.config import Settings
    from adaptor.integrations.service import IntegrationService
    from adaptor.mapping import MappingEngine
    from adaptor.services import secret_box_for
    from adaptor.storage.database import Database

    settings = Settings(data_dir=tmp_path, encryption_key=None, postgres_uri=None)

    async def store() -> str:
        database = Database(settings.database_url)
        await database.migrate()
        service = IntegrationService(database, secret_box_for(settings), MappingEngine())
        created = await service.create("acme", IntegrationSpec.model_validate(rest_integration()))
        await database.close()
        return created.integration_id

    async def secret(integration_id: str) -> object:
        database = Database(settings.database_url)
        service = IntegrationService(database, secret_box_for(settings), MappingEngine())
        loaded = await service.load("acme", integration_id)
        await database.close()
        return loaded.config.auth_config.credentials["api_key"], loaded.secrets_error

    integration_id = asyncio.run(store())
    old = (tmp_path / "encryption.key").read_text().strip()
    new = Fernet.generate_key().decode()
    env = {"DATA_DIR": str(tmp_path), "ENCRYPTION_KEY": f"{new},{old}", "POSTGRES_URI": ""}
    result = CliRunner().invoke(main, ["rotate-key"], env=env)
    assert result.exit_code == 0, result.output
    assert f"keys (newest first): {fingerprint(new)}, {fingerprint(old)}" in result.output
    assert "re-encrypted the secrets of 1 integration(s)" in result.output
    assert f"now holds {fingerprint(new)}" in result.output
    assert new not in result.output
    assert old not in result.output
    assert (tmp_path / "encryption.key").read_text().strip() == new
    assert asyncio.run(secret(integration_id)) == ("sk_live_SECRET_1234567890", None)

    without = CliRunner().invoke(main, ["rotate-key"], env={**env, "ENCRYPTION_KEY": ""})
    assert without.exit_code == 1
    assert "ENCRYPTION_KEY is not set" in without.output
    assert str(tmp_path / "encryption.key") in without.output
