"""Credentials and OAuth tokens in Vault's KV v2 engine, against a real OpenBao dev server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest
from sqlalchemy import select

from adaptor.app import create_app
from adaptor.services import Services
from adaptor.storage.tables import IntegrationRow, OAuthTokenRow
from tests.conftest import ADMIN_KEY, Backend, make_settings, new_tenant, serve_app
from tests.executions.test_execute import create, execute
from tests.executions.upstream import Reply, serve_upstream
from tests.oauth.provider import Provider, run_provider
from tests.oauth.test_flows import oauth_integration
from tests.ports import free_port

BIN = Path(sys.executable).parent


@dataclass
class Bao:
    url: str
    token: str
    process: subprocess.Popen[bytes]

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.token)


def start_bao() -> Bao:
    """`bao server -dev` on a free loopback port (KV v2 mounted at `secret/`)."""
    port = free_port()
    token = f"root-{uuid.uuid4().hex}"
    process = subprocess.Popen(
        [
            str(BIN / "bao"),
            "server",
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": str(Path(os.environ.get("TMPDIR", "/tmp")))},
    )
    bao = Bao(f"http://127.0.0.1:{port}", token, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("bao server -dev exited")
        try:
            if bao.client().is_authenticated():
                return bao
        except Exception:
            time.sleep(0.2)
    process.kill()
    pytest.fail("bao server -dev did not start")


def stop_bao(bao: Bao) -> None:
    bao.process.terminate()
    try:
        bao.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        bao.process.kill()
        bao.process.wait()


@pytest.fixture(scope="session")
def bao() -> Iterator[Bao]:
    running = start_bao()
    try:
        yield running
    finally:
        stop_bao(running)


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    with run_provider() as running:
        yield running


async def test_credentials_live_in_vault_and_the_database_keeps_a_reference(
    tmp_path: Path, backend: Backend, bao: Bao
) -> None:
    settings = make_settings(tmp_path, backend, vault_url=bao.url, vault_token=bao.token)
    app = create_app(settings)
    async with serve_app(app) as client, serve_upstream() as upstream:
        upstream.reply("GET", "/v1/me", Reply(200, {"id": "u_1"}))
        services: Services = app.state.services
        tenant = await new_tenant(client)
        document = {
            "name": "CRM",
            "type": "rest_api",
            "category": "crm",
            "base_url": upstream.url,
            "auth_config": {"type": "bearer_token", "credentials": {"token": "tok-in-vault-42"}},
            "endpoints": {"me": {"path": "/v1/me", "method": "GET"}},
        }
        integration_id = await create(client, tenant, document)
        async with services.database.session() as session:
            row = (
                await session.execute(
                    select(IntegrationRow).where(IntegrationRow.integration_id == integration_id)
                )
            ).scalar_one()
        assert row.secrets is not None
        assert row.secrets.startswith(f"vault:adaptor/{tenant.tenant_id}/{integration_id}/")
        assert "tok-in-vault-42" not in row.secrets
        stored = bao.client().secrets.kv.v2.read_secret_version(
            path=f"adaptor/{tenant.tenant_id}/{integration_id}/credentials",
            raise_on_deleted_version=True,
        )
        assert stored["data"]["data"]["document"] == [
            [["auth_config", "credentials", "token"], "tok-in-vault-42"]
        ]
        read = await client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
        assert read.json()["auth_config"]["credentials"]["token"] == "********"
        patched = await client.patch(
            f"/api/v2/integrations/{integration_id}",
            json={"description": "kept the secret"},
            headers=tenant.headers,
        )
        assert patched.status_code == 200, patched.text
        result = (await execute(client, tenant, integration_id, "me")).json()
        assert result["success"] is True, result
        assert upstream.seen[-1].headers["authorization"] == "Bearer tok-in-vault-42"
        ready = await client.get("/health/ready")
        assert ready.json()["checks"]["vault"] == "ok"
        deleted = await client.delete(
            f"/api/v2/integrations/{integration_id}", headers=tenant.headers
        )
        assert deleted.status_code == 204
        with pytest.raises(hvac.exceptions.InvalidPath):
            bao.client().secrets.kv.v2.read_secret_version(
                path=f"adaptor/{tenant.tenant_id}/{integration_id}/credentials",
                raise_on_deleted_version=True,
            )


async def test_oauth_tokens_live_in_vault(
    tmp_path: Path, backend: Backend, bao: Bao, provider: Provider
) -> None:
    settings = make_settings(tmp_path, backend, vault_url=bao.url, vault_token=bao.token)
    app = create_app(settings)
    oauth_client = provider.client()
    async with serve_app(app) as client, serve_upstream() as upstream:
        upstream.reply("GET", "/v1/me", Reply(200, {"id": "u_1"}))
        services: Services = app.state.services
        tenant = await new_tenant(client)
        integration_id = await create(
            client,
            tenant,
            oauth_integration(upstream, provider, oauth_client, "client_credentials"),
        )
        result = (await execute(client, tenant, integration_id, "me")).json()
        assert result["success"] is True, result
        async with services.database.session() as session:
            row = (
                await session.execute(
                    select(OAuthTokenRow).where(OAuthTokenRow.integration_id == integration_id)
                )
            ).scalar_one()
        assert row.tokens.startswith(f"vault:adaptor/{tenant.tenant_id}/{integration_id}/oauth@")
        tokens = await services.oauth.token_store(tenant.tenant_id, integration_id).load(fresh=True)
        assert tokens is not None
        assert upstream.seen[-1].headers["authorization"] == f"Bearer {tokens.access_token}"
        assert tokens.access_token not in row.tokens


async def test_ready_names_vault_when_it_is_down(tmp_path: Path, backend: Backend) -> None:
    own = start_bao()
    settings = make_settings(tmp_path, backend, vault_url=own.url, vault_token=own.token)
    app = create_app(settings)
    try:
        async with serve_app(app) as client:
            assert (await client.get("/health/ready")).status_code == 200
            stop_bao(own)
            ready = await client.get("/health/ready")
            assert ready.status_code == 503
            assert ready.json()["checks"]["vault"] == "unreachable"
            assert "vault" in ready.json()["detail"]
    finally:
        stop_bao(own)


def test_an_unreachable_vault_stops_the_service_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    completed = subprocess.run(
        [str(BIN / "adaptor"), "serve", "--port", str(free_port())],
        env={
            **os.environ,
            "VAULT_URL": f"http://127.0.0.1:{port}",
            "VAULT_TOKEN": "root-token-not-shown",
            "DATA_DIR": str(tmp_path),
            "ADMIN_API_KEY": ADMIN_KEY,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert lines == [
        f"Error: VAULT_URL: Vault at http://127.0.0.1:{port} is unreachable (ConnectionError)"
    ]
    assert "root-token-not-shown" not in completed.stderr + completed.stdout
