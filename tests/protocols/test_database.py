"""Database integrations through the HTTP API, against the machine's PostgreSQL and MariaDB."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiomysql
import asyncpg
import pytest

from tests.conftest import fresh_database
from tests.ports import free_port
from tests.protocols.data_app import create, data_service, execute, refused

HOSTILE = "x'); DROP TABLE customers; --"

POSTGRES_SETUP = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE);
INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com'
    FROM generate_series(1, 25) g;
CREATE TABLE kinds (
    n numeric(12, 4), ts timestamptz, plain_ts timestamp, d date, t time, iv interval,
    b bytea, j jsonb, u uuid, arr int[], flag boolean, f double precision, inet_v inet
);
INSERT INTO kinds VALUES (
    12345.6789, '2026-03-04 05:06:07.5+02', '2026-03-04 05:06:07', '2026-03-04', '05:06:07',
    '1 day 02:03:04.5', '\\x00ff10', '{"a": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    '{1,2,3}', true, 1.5, '192.0.2.1'
);
"""

MARIADB_SETUP = [
    "CREATE TABLE customers (id int PRIMARY KEY, name varchar(64) NOT NULL, "
    "email varchar(128) UNIQUE)",
    "INSERT INTO customers SELECT seq, CONCAT('customer ', seq), CONCAT('c', seq, '@example.com')"
    " FROM seq_1_to_25",
    "CREATE TABLE kinds (n decimal(12,4), ts datetime(3), d date, t time, b varbinary(8), "
    "flag tinyint(1), f double, s set('a','b','c'))",
    "INSERT INTO kinds VALUES (12345.6789, '2026-03-04 05:06:07.500', '2026-03-04', '26:03:04', "
    "X'00ff10', 1, 1.5, 'a,c')",
]


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL, with the tables the tests read."""
    with fresh_database("adaptor_dbint") as uri:

        async def setup() -> None:
            conn = await asyncpg.connect(uri)
            try:
                await conn.execute(POSTGRES_SETUP)
            finally:
                await conn.close()

        asyncio.run(setup())
        yield uri.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture(scope="module")
def mariadb_db() -> Iterator[str]:
    """A database of its own on the machine's MariaDB (root, no password), dropped after."""
    name = f"adaptor_dbint_{uuid.uuid4().hex[:10]}"

    async def run(statements: list[str], db: str | None = None) -> None:
        try:
            conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root", db=db)
        except Exception as exc:
            pytest.fail(f"MariaDB at 127.0.0.1:3306 is unreachable: {exc}")
        try:
            async with conn.cursor() as cursor:
                for statement in statements:
                    await cursor.execute(statement)
            await conn.commit()
        finally:
            conn.close()

    # A user of its own with a password: credentials go in auth_config, never in base_url.
    user, password = name[-16:], f"Pw-{uuid.uuid4().hex}"
    hosts = ("localhost", "127.0.0.1")
    asyncio.run(run([f"CREATE DATABASE `{name}`"]))
    asyncio.run(run(MARIADB_SETUP, name))
    asyncio.run(
        run(
            [f"CREATE USER '{user}'@'{h}' IDENTIFIED BY '{password}'" for h in hosts]
            + [f"GRANT ALL ON `{name}`.* TO '{user}'@'{h}'" for h in hosts]
        )
    )
    try:
        yield f"mysql://{user}:{password}@127.0.0.1:3306/{name}"
    finally:
        asyncio.run(
            run(
                [f"DROP USER IF EXISTS '{user}'@'{h}'" for h in hosts]
                + [f"DROP DATABASE IF EXISTS `{name}`"]
            )
        )


def database(base_url: str, **overrides: Any) -> dict[str, Any]:
    """The test integration; a user name and password in `base_url` (the fixtures' URLs) move
    to `basic_auth` unless `auth_config` is given (a URL must not hold credentials)."""
    parts = urlsplit(base_url)
    if "@" in parts.netloc:
        base_url = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
        if parts.username and "auth_config" not in overrides:
            overrides["auth_config"] = {
                "type": "basic_auth",
                "credentials": {
                    "username": unquote(parts.username),
                    # PostgreSQL here trusts loopback: a password is required, never checked.
                    "password": unquote(parts.password or "") or "trusted-loopback",
                },
            }
    document: dict[str, Any] = {
        "name": "Shop database",
        "type": "database",
        "category": "database",
        "base_url": base_url,
        "timeout_ms": 3000,
        "retry_config": {"max_retries": 0},
        "endpoints": {
            "find_customer": {
                "method": "GET",
                "query": "SELECT id, name FROM customers WHERE name = :name OR id = :id",
                "request_mapping": {"body": {"name": "name", "id": "id"}},
            },
            "list_customers": {
                "method": "GET",
                "query": "SELECT id, email FROM customers WHERE id <= :last ORDER BY id",
                "request_mapping": {"body": {"last": "last"}},
                "max_rows": 3,
            },
            "kinds": {"method": "GET", "query": "SELECT * FROM kinds"},
            "sneaky_write": {
                "method": "GET",
                "query": "DELETE FROM customers WHERE id = :id",
                "request_mapping": {"body": {"id": "id"}},
            },
            "add_customer": {
                "method": "POST",
                "query": "INSERT INTO customers (id, name, email) VALUES (:id, :name, :email) "
                "RETURNING id, name",
                "request_mapping": {"body": {"id": "id", "name": "name", "email": "email"}},
            },
            "rename": {
                "method": "PUT",
                "query": "UPDATE customers SET name = :name WHERE id > 20 AND id <= :last",
                "request_mapping": {"body": {"name": "name", "last": "last"}},
            },
            "slow": {"method": "GET", "query": "SELECT pg_sleep(10)", "timeout_ms": 1000},
        },
    }
    document.update(overrides)
    return document


def mariadb_document(base_url: str, **overrides: Any) -> dict[str, Any]:
    document = database(base_url, **overrides)
    endpoints = document["endpoints"]
    endpoints["slow"]["query"] = "SELECT SLEEP(10)"
    endpoints["add_customer"]["query"] = (
        "INSERT INTO customers (id, name, email) VALUES (:id, :name, :email) RETURNING id, name"
    )
    return document


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Any]:
    async with data_service(tmp_path) as pair:
        yield pair


# both databases ---------------------------------------------------------------------------


@pytest.fixture(params=["postgresql", "mariadb"])
def target(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_db")
        return "postgresql", database(url)
    url = request.getfixturevalue("mariadb_db")
    return "mariadb", mariadb_document(url)


async def test_hostile_values_are_bound_never_interpolated(
    service: Any, target: tuple[str, dict[str, Any]]
) -> None:
    client, tenant = service
    _, document = target
    integration_id = await create(client, tenant, document)
    hostile = await execute(client, tenant, integration_id, "find_customer", {"name": HOSTILE})
    assert hostile["success"] is True, hostile
    assert hostile["data"] == []
    quoted = await execute(
        client, tenant, integration_id, "find_customer", {"name": "x' OR '1'='1", "id": 2}
    )
    assert quoted["data"] == [{"id": 2, "name": "customer 2"}]
    still = await execute(client, tenant, integration_id, "list_customers", {"last": 100})
    assert still["success"] is True, still  # the table is still there


async def test_max_rows_truncates_and_says_so(
    service: Any, target: tuple[str, dict[str, Any]]
) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, target[1])
    result = await execute(client, tenant, integration_id, "list_customers", {"last": 10})
    assert result["data"] == [
        {"id": 1, "email": "c1@example.com"},
        {"id": 2, "email": "c2@example.com"},
        {"id": 3, "email": "c3@example.com"},
    ]
    assert result["metadata"]["truncated"] is True
    exact = await execute(client, tenant, integration_id, "list_customers", {"last": 3})
    assert len(exact["data"]) == 3
    assert "truncated" not in exact["metadata"]


async def test_get_runs_read_only(service: Any, target: tuple[str, dict[str, Any]]) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, target[1])
    result = await execute(client, tenant, integration_id, "sneaky_write", {"id": 1})
    assert result["success"] is False
    assert result["error"]["code"] == "upstream_error"
    assert "read" in result["error"]["message"].lower()
    kept = await execute(client, tenant, integration_id, "find_customer", {"id": 1})
    assert kept["data"] == [{"id": 1, "name": "customer 1"}]


async def test_writes_answer_rows_affected_and_returning(
    service: Any, target: tuple[str, dict[str, Any]]
) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, target[1])
    new_id = 1000 + uuid.uuid4().int % 100_000
    added = await execute(
        client,
        tenant,
        integration_id,
        "add_customer",
        {"id": new_id, "name": HOSTILE, "email": f"{new_id}@example.com"},
    )
    assert added["success"] is True, added
    assert added["data"] == {"rows_affected": 1, "rows": [{"id": new_id, "name": HOSTILE}]}
    renamed = await execute(
        client, tenant, integration_id, "rename", {"name": "renamed", "last": 22}
    )
    assert renamed["data"] == {"rows_affected": 2}


async def test_constraint_errors_carry_the_database_message_without_values(
    service: Any, target: tuple[str, dict[str, Any]]
) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, target[1])
    duplicate = await execute(
        client,
        tenant,
        integration_id,
        "add_customer",
        {"id": 1, "name": "Dup", "email": "secret-address-42@example.com"},
    )
    assert duplicate["success"] is False
    assert duplicate["error"]["code"] == "upstream_error"
    message = duplicate["error"]["message"]
    assert "duplicate" in message.lower()
    assert "secret-address-42" not in str(duplicate)


async def test_statement_timeout_cancels_on_the_server(
    service: Any, target: tuple[str, dict[str, Any]]
) -> None:
    client, tenant = service
    kind, document = target
    integration_id = await create(client, tenant, document)
    started = time.monotonic()
    result = await execute(client, tenant, integration_id, "slow")
    assert result["success"] is False
    assert result["error"]["code"] == "timeout"
    assert time.monotonic() - started < 4
    await asyncio.sleep(0.3)
    assert await _running_sleeps(kind, document["base_url"]) == 0


async def _running_sleeps(kind: str, base_url: str) -> int:
    if kind == "postgresql":
        conn = await asyncpg.connect(base_url)
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%' "
                "AND state = 'active'"
            )
            return count
        finally:
            await conn.close()
    conn = await aiomysql.connect(host="127.0.0.1", port=3306, user="root")
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                "WHERE INFO LIKE '%SELECT SLEEP(10)%' AND INFO NOT LIKE '%PROCESSLIST%'"
            )
            (count,) = await cursor.fetchone()
            return int(count)
    finally:
        conn.close()


# conversions --------------------------------------------------------------------------------


async def test_postgres_values_are_json_safe(service: Any, postgres_db: str) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, database(postgres_db))
    result = await execute(client, tenant, integration_id, "kinds")
    assert result["data"] == [
        {
            "n": "12345.6789",
            "ts": "2026-03-04T03:06:07.500000Z",
            "plain_ts": "2026-03-04T05:06:07Z",
            "d": "2026-03-04",
            "t": "05:06:07",
            "iv": "P1DT2H3M4.5S",
            "b": base64.b64encode(b"\x00\xff\x10").decode(),
            "j": {"a": [1, 2]},
            "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "arr": [1, 2, 3],
            "flag": True,
            "f": 1.5,
            "inet_v": "192.0.2.1",
        }
    ]


async def test_mariadb_values_are_json_safe(service: Any, mariadb_db: str) -> None:
    client, tenant = service
    integration_id = await create(client, tenant, mariadb_document(mariadb_db))
    result = await execute(client, tenant, integration_id, "kinds")
    assert result["data"] == [
        {
            "n": "12345.6789",
            "ts": "2026-03-04T05:06:07.500000Z",
            "d": "2026-03-04",
            "t": "P1DT2H3M4S",
            "b": base64.b64encode(b"\x00\xff\x10").decode(),
            "flag": 1,
            "f": 1.5,
            "s": "a,c",
        }
    ]


# connections and credentials ----------------------------------------------------------------


async def test_bad_credentials_are_auth_failed(service: Any, mariadb_db: str) -> None:
    client, tenant = service
    document = mariadb_document(
        mariadb_db.replace("root@", ""),
        auth_config={
            "type": "basic_auth",
            "credentials": {"username": "nobody_here", "password": "Wrong-Pass-123"},
        },
    )
    integration_id = await create(client, tenant, document)
    result = await execute(client, tenant, integration_id, "find_customer", {"id": 1})
    assert result["success"] is False
    assert result["error"]["code"] == "auth_failed"
    assert "Wrong-Pass-123" not in str(result)


async def test_unknown_postgres_role_is_auth_failed(service: Any, postgres_db: str) -> None:
    client, tenant = service
    url = postgres_db.replace("postgres@", "")
    document = database(
        url,
        auth_config={
            "type": "basic_auth",
            "credentials": {"username": f"ghost_{uuid.uuid4().hex[:6]}", "password": "pw-1234"},
        },
    )
    integration_id = await create(client, tenant, document)
    result = await execute(client, tenant, integration_id, "find_customer", {"id": 1})
    assert result["error"]["code"] == "auth_failed", result


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_refused_connection_is_a_network_error(service: Any, scheme: str) -> None:
    client, tenant = service
    port = free_port()
    document = database(f"{scheme}://root@127.0.0.1:{port}/none")
    integration_id = await create(client, tenant, document)
    started = time.monotonic()
    result = await execute(client, tenant, integration_id, "find_customer", {"id": 1})
    assert result["error"]["code"] == "network_error"
    assert time.monotonic() - started < 3


async def test_database_hosts_pass_the_destination_guard(tmp_path: Path, postgres_db: str) -> None:
    async with data_service(tmp_path, allow_private_networks=False) as (client, tenant):
        integration_id = await create(client, tenant, database(postgres_db))
        result = await execute(client, tenant, integration_id, "find_customer", {"id": 1})
    assert result["error"]["code"] == "blocked_destination"
    assert "loopback" in result["error"]["message"]


# save-time checks ---------------------------------------------------------------------------


async def test_statements_are_checked_at_save(service: Any) -> None:
    client, tenant = service
    document = database(
        "postgresql://db.example.com/shop",
        endpoints={
            "unmapped": {
                "query": "SELECT * FROM customers WHERE id = :id AND name = :nmae",
                "request_mapping": {"body": {"id": "id", "name": "name"}},
            },
            "two": {"query": "SELECT 1; DROP TABLE customers"},
            "typo": {"query": "SELEC id FROM customers"},
            "missing": {"method": "GET"},
        },
    )
    problems = await refused(client, tenant, document)
    assert "nmae" in problems["body.endpoints.unmapped.query"]
    assert "exactly one" in problems["body.endpoints.two.query"]
    assert "body.endpoints.typo.query" in problems
    assert "required" in problems["body.endpoints.missing.query"]


async def test_base_url_and_auth_are_checked_at_save(service: Any) -> None:
    client, tenant = service
    problems = await refused(
        client,
        tenant,
        database(
            "oracle://db.example.com/shop",
            auth_config={"type": "bearer_token", "credentials": {"token": "t-123456"}},
        ),
    )
    assert "oracle" in problems["body.base_url"]
    assert "basic_auth" in problems["body.auth_config.type"]
    in_url = {
        **database("postgresql://db.example.com/shop"),
        "base_url": "postgresql://u:hunter22@db.example.com/shop",
    }
    with_password = await refused(client, tenant, in_url)
    assert "password" in with_password["body.base_url"]


async def test_credentials_are_masked_on_read(service: Any, postgres_db: str) -> None:
    client, tenant = service
    document = database(
        postgres_db,
        auth_config={
            "type": "basic_auth",
            "credentials": {"username": "postgres", "password": "Masked-Pass-99"},
        },
    )
    integration_id = await create(client, tenant, document)
    read = await client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert read.json()["auth_config"]["credentials"]["password"] == "********"
    assert "Masked-Pass-99" not in read.text
    result = await execute(client, tenant, integration_id, "find_customer", {"id": 3})
    assert result["data"] == [{"id": 3, "name": "customer 3"}]


async def test_the_integration_timeout_is_the_session_statement_timeout(
    service: Any, postgres_db: str
) -> None:
    client, tenant = service
    document = database(postgres_db, timeout_ms=1000)
    document["endpoints"]["slow"].pop("timeout_ms")
    integration_id = await create(client, tenant, document)
    started = time.monotonic()
    result = await execute(client, tenant, integration_id, "slow")
    assert result["error"]["code"] == "timeout"
    assert "cancelled" in result["error"]["message"]
    assert time.monotonic() - started < 3
    await asyncio.sleep(0.3)
    assert await _running_sleeps("postgresql", postgres_db) == 0


async def test_the_pool_closes_when_the_integration_changes_or_is_deleted(
    tmp_path: Path, postgres_db: str
) -> None:
    async def open_connections() -> int:
        conn = await asyncpg.connect(postgres_db)
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'adaptor-service'"
            )
            return count
        finally:
            await conn.close()

    async with data_service(tmp_path, retire_grace_s=0) as (client, tenant):
        integration_id = await create(client, tenant, database(postgres_db))
        await execute(client, tenant, integration_id, "find_customer", {"id": 1})
        assert await open_connections() == 1
        changed = await client.patch(
            f"/api/v2/integrations/{integration_id}",
            json={"description": "renamed"},
            headers={**tenant.headers, "If-Match": '"1"'},
        )
        assert changed.status_code == 200, changed.text
        await asyncio.sleep(0.5)
        assert await open_connections() == 0
        again = await execute(client, tenant, integration_id, "find_customer", {"id": 1})
        assert again["data"] == [{"id": 1, "name": "customer 1"}]  # a new pool, lazily
        deleted = await client.delete(
            f"/api/v2/integrations/{integration_id}",
            headers={**tenant.headers, "If-Match": '"2"'},
        )
        assert deleted.status_code == 204
        await asyncio.sleep(0.5)
        assert await open_connections() == 0


async def test_values_never_appear_in_database_errors(service: Any, postgres_db: str) -> None:
    client, tenant = service
    document = database(
        postgres_db,
        endpoints={
            "cast": {
                "method": "GET",
                "query": "SELECT CAST(CAST(:v AS text) AS integer) AS n",
                "request_mapping": {"body": {"v": "v"}},
            },
            "by_id": {
                "method": "GET",
                "query": "SELECT id FROM customers WHERE id = :id",
                "request_mapping": {"body": {"id": "id"}},
            },
        },
    )
    integration_id = await create(client, tenant, document)
    cast = await execute(client, tenant, integration_id, "cast", {"v": "secret-abc-9"})
    assert cast["error"]["code"] == "upstream_error", cast
    assert "integer" in cast["error"]["message"]
    assert "secret-abc-9" not in str(cast)
    wrong_type = await execute(client, tenant, integration_id, "by_id", {"id": "secret-def-8"})
    assert wrong_type["error"]["code"] == "mapping_error", wrong_type
    assert "secret-def-8" not in str(wrong_type)


async def test_the_debug_trace_shows_the_statement_without_its_values(
    service: Any, postgres_db: str
) -> None:
    client, tenant = service
    parts = urlsplit(postgres_db)
    document = database(
        urlunsplit((parts.scheme, parts.hostname or "", parts.path, "", "")).replace(
            f"//{parts.hostname}", f"//{parts.hostname}:{parts.port or 5432}"
        ),
        auth_config={
            "type": "basic_auth",
            "credentials": {"username": parts.username, "password": "trust-" + uuid.uuid4().hex},
        },
    )
    integration_id = await create(client, tenant, document)
    marker = f"needle-{uuid.uuid4().hex[:8]}"

    result = await execute(
        client,
        tenant,
        integration_id,
        "find_customer",
        {"name": marker, "id": 2},
        options={"debug_mode": True},
    )

    assert result["success"] is True, result
    call = next(stage for stage in result["metadata"]["trace"] if stage["stage"] == "call")
    [attempt] = call["input"]["attempts"]
    assert attempt == {
        "operation": "sql",
        "dialect": "postgres",
        "database": parts.path.lstrip("/"),
        "statement": "SELECT id, name FROM customers WHERE name = :name OR id = :id",
        "read_only": True,
        "rows": 1,
    }
    assert marker not in str(call)

    failed = await execute(
        client,
        tenant,
        integration_id,
        "add_customer",
        {"id": 1, "name": marker, "email": f"{marker}@example.com"},
        options={"debug_mode": True},
    )
    assert failed["success"] is False
    call = next(stage for stage in failed["metadata"]["trace"] if stage["stage"] == "call")
    [attempt] = call["input"]["attempts"]
    assert attempt["operation"] == "sql"
    assert attempt["read_only"] is False
    assert "rows" not in attempt
    assert "duplicate key" in attempt["error"]
    assert marker not in str(call)
    assert document["auth_config"]["credentials"]["password"] not in str(failed)
