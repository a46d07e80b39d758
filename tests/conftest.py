"""Shared fixtures: real backends (PostgreSQL, Redis) and the embedded ones, and the app.

PostgreSQL and Redis are the machine's: `POSTGRES_URI` / `REDIS_URL` (default the local
services). A test that needs one fails, never skips, when it is unreachable. Each test session
gets a database of its own on the PostgreSQL server, dropped at the end.
"""

from __future__ import annotations

import ipaddress
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohappyeyeballs
import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet
from fastapi import FastAPI

from adaptor.app import create_app
from adaptor.config import Settings
from adaptor.services import Services

POSTGRES_URI = os.environ.get("POSTGRES_URI") or "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
ADMIN_KEY = "adk_test_admin_key_0123456789abcdefghijklmnop"
ENCRYPTION_KEY = Fernet.generate_key().decode()
"""One key for the whole session: rows of every test share the PostgreSQL database."""


def _server_and_db(uri: str) -> tuple[str, str]:
    base, _, db = uri.rpartition("/")
    return base, db


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address the client tried to connect to; anything but loopback fails the test."""
    attempted: list[str] = []
    original = aiohappyeyeballs.start_connection

    async def loopback_only(addr_infos: Any, *args: Any, **kwargs: Any) -> Any:
        for info in addr_infos:
            host = info[4][0]
            attempted.append(host)
            assert ipaddress.ip_address(host).is_loopback, f"tried to connect to {host}"
        return await original(addr_infos, *args, **kwargs)

    monkeypatch.setattr(aiohappyeyeballs, "start_connection", loopback_only)
    return attempted


@contextmanager
def fresh_database(prefix: str = "adaptor_test") -> Iterator[str]:
    """A database of its own on the real PostgreSQL server, dropped afterwards."""
    import asyncio

    base, admin_db = _server_and_db(POSTGRES_URI.replace("postgresql+asyncpg://", "postgresql://"))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        try:
            conn = await asyncpg.connect(f"{base}/{admin_db}")
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.fail(f"PostgreSQL at {base} is unreachable: {exc}")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A fresh database for this test session (every test's rows carry their own tenant)."""
    with fresh_database() as uri:
        yield uri


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} is unreachable: {exc}")
    finally:
        client.close()
    return REDIS_URL


@dataclass
class Backend:
    name: str
    postgres_uri: str | None
    redis_url: str | None


@pytest.fixture(params=["embedded", "real"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Both stacks: SQLite + in-process store, and PostgreSQL + Redis."""
    if request.param == "embedded":
        return Backend("embedded", None, None)
    return Backend(
        "real", request.getfixturevalue("postgres_uri"), request.getfixturevalue("redis_url")
    )


def make_settings(tmp_path: Path, backend: Backend, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "development",
        "postgres_uri": backend.postgres_uri,
        "redis_url": backend.redis_url,
        "data_dir": tmp_path / "data",
        "encryption_key": ENCRYPTION_KEY,
        "admin_api_key": ADMIN_KEY,
        "allow_private_networks": True,
        "enable_response_caching": True,
        "max_request_body_bytes": 65536,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, backend: Backend) -> Settings:
    return make_settings(tmp_path, backend)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app started (lifespan and all) and a client talking to it in process."""
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://adaptor.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_app(app) as client:
        yield client


@pytest.fixture
def services(app: FastAPI, app_client: httpx.AsyncClient) -> Services:
    """The running app's services (the lifespan has built them)."""
    built: Services = app.state.services
    return built


@dataclass
class Tenant:
    tenant_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "X-Tenant-ID": self.tenant_id}


ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def new_tenant(client: httpx.AsyncClient) -> Tenant:
    tenant_id = f"t-{uuid.uuid4().hex[:12]}"
    response = await client.post(
        "/api/v2/admin/api-keys",
        json={"tenant_id": tenant_id, "name": "test"},
        headers=ADMIN_HEADERS,
    )
    assert response.status_code == 201, response.text
    return Tenant(tenant_id, response.json()["api_key"])


@pytest.fixture
async def tenant(app_client: httpx.AsyncClient) -> Tenant:
    return await new_tenant(app_client)


@pytest.fixture
async def other_tenant(app_client: httpx.AsyncClient) -> Tenant:
    return await new_tenant(app_client)
