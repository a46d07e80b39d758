"""The `adaptor` command: serve, migrate, manage API keys, rotate the encryption key."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from adaptor.config import ConfigError, Settings, load_settings
from adaptor.security.crypto import EncryptionKeyError

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _run(factory: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings = _settings()
    try:
        return asyncio.run(factory(settings))
    except (EncryptionKeyError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="adaptor-service")
def main() -> None:
    """Adaptor Service: integrations with external systems for the conversational platform.

    Configuration comes from environment variables (see the README); with POSTGRES_URI and
    REDIS_URL unset the service runs on an embedded SQLite file and an in-process cache.
    """


@main.command()
@click.option("--host", default=None, help="Interface to bind (default HTTP_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default HTTP_PORT, 8004).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP service."""
    import uvicorn

    from adaptor.observability.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    bind_host = host or settings.http_host
    bind_port = port or settings.http_port
    from adaptor.app import create_app
    from adaptor.services import check_encryption_setting

    try:
        check_encryption_setting(settings)
    except EncryptionKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Adaptor Service on http://{bind_host}:{bind_port}/docs", err=True)
    try:
        uvicorn.run(
            create_app(settings) if workers == 1 else "adaptor.main:app",
            host=bind_host,
            port=bind_port,
            workers=workers,
            log_level=settings.log_level,
            access_log=False,
            loop="uvloop",
            http="httptools",
            factory=False,
        )
    except (EncryptionKeyError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def migrate() -> None:
    """Bring the database schema to the newest revision."""

    async def run(settings: Settings) -> None:
        from adaptor.storage.database import Database

        database = Database(settings.database_url)
        try:
            await database.migrate()
        finally:
            await database.close()

    _run(run)
    click.echo("database schema is up to date")


@main.group("api-keys")
def api_keys() -> None:
    """Create, list and revoke caller API keys."""


@api_keys.command("create")
@click.option("--tenant", "tenant_id", default=None, help="Tenant the key acts for.")
@click.option("--name", default="cli", show_default=True, help="A label for the key.")
@click.option("--admin", is_flag=True, help="Create an admin key instead of a tenant key.")
def create_key(tenant_id: str | None, name: str, admin: bool) -> None:
    """Create a key and print it once."""
    if admin == (tenant_id is not None):
        raise click.UsageError("give either --tenant TENANT or --admin")

    async def run(settings: Settings) -> str:
        from adaptor.keys.service import ApiKeyService
        from adaptor.storage.database import Database

        database = Database(settings.database_url)
        try:
            await database.migrate()
            created = await ApiKeyService(database).create(
                tenant_id=tenant_id, name=name, role="admin" if admin else "tenant"
            )
            return f"{created.key_id}\t{created.api_key}"
        finally:
            await database.close()

    click.echo(_run(run))


@api_keys.command("list")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's keys.")
def list_keys(tenant_id: str | None) -> None:
    """List keys (never their secrets)."""

    async def run(settings: Settings) -> list[str]:
        from adaptor.keys.service import ApiKeyService
        from adaptor.storage.database import Database

        database = Database(settings.database_url)
        lines: list[str] = []
        try:
            service = ApiKeyService(database)
            cursor: str | None = None
            while True:
                page = await service.page(tenant_id=tenant_id, cursor=cursor, limit=500)
                for key in page.items:
                    state = "revoked" if key.revoked_at else "active"
                    tenant = key.tenant_id or "-"
                    lines.append(
                        f"{key.key_id}\t{key.role}\t{tenant}\t{key.name}\t{key.key_prefix}…\t{state}"
                    )
                if page.next_cursor is None:
                    return lines
                cursor = page.next_cursor
        finally:
            await database.close()

    for line in _run(run):
        click.echo(line)


@api_keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a key by its id."""

    async def run(settings: Settings) -> None:
        from adaptor.errors import NotFound
        from adaptor.keys.service import ApiKeyService
        from adaptor.storage.database import Database

        database = Database(settings.database_url)
        try:
            await ApiKeyService(database).revoke(key_id)
        except NotFound as exc:
            raise click.ClickException(exc.message) from None
        finally:
            await database.close()

    _run(run)
    click.echo(f"revoked {key_id}")


@main.group("import")
def import_group() -> None:
    """Create integrations from API descriptions."""


@import_group.command("openapi")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", "tenant_id", required=True, help="Tenant the integration belongs to.")
@click.option("--name", default=None, help="Integration name (default: info.title).")
@click.option("--base-url", default=None, help="Base URL (default: servers[0]).")
@click.option(
    "--operation",
    "operations",
    multiple=True,
    help="Import only this operationId (repeatable; default: every operation).",
)
@click.option("--dry-run", is_flag=True, help="Convert and validate; store nothing.")
def import_openapi(
    file: Path,
    tenant_id: str,
    name: str | None,
    base_url: str | None,
    operations: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Import an OpenAPI 3.0/3.1 description (JSON or YAML) as one integration.

    `$ref`s may point into the document and to files in its folder (a multi-file layout);
    never to URLs. Prints one line per endpoint, then the integration id.
    """
    import time

    from adaptor.errors import ValidationFailed
    from adaptor.imports.schemas import ImportRequest
    from adaptor.imports.service import ImportOutcome, ImportService

    async def run(settings: Settings) -> ImportOutcome:
        from adaptor.integrations.service import IntegrationService
        from adaptor.mapping import MappingEngine
        from adaptor.services import secret_box_for
        from adaptor.storage.database import Database

        database = Database(settings.database_url)
        try:
            if not settings.production:
                await database.migrate()
            service = IntegrationService(database, secret_box_for(settings), MappingEngine())
            request = ImportRequest(
                format="openapi",
                document=file.read_text(encoding="utf-8"),
                name=name,
                base_url=base_url,
                operations=list(operations) or None,
                dry_run=dry_run,
            )
            outcome = await ImportService(service).import_openapi(tenant_id, request, path=file)
        finally:
            await database.close()
        if outcome.stored and settings.redis_url:
            await _announce_change(settings.redis_url, tenant_id, outcome.integration)
        return outcome

    started = time.perf_counter()
    try:
        outcome = _run(run)
    except ValidationFailed as exc:
        for error in exc.errors:
            loc = [str(part) for part in error["loc"]]
            where = ".".join(loc[2:] if loc[:2] == ["body", "document"] else loc[1:])
            click.echo(f"{file}: {where or '(document)'}: {error['msg']}", err=True)
        raise click.ClickException(
            f"{file} was not imported ({len(exc.errors)} problem(s))"
        ) from None
    config = outcome.integration
    for endpoint in config.endpoints.values():
        click.echo(f"{endpoint.name}\t{endpoint.method}\t{endpoint.path}")
    elapsed = time.perf_counter() - started
    summary = f"{len(config.endpoints)} endpoint(s) from {outcome.operations} operation(s)"
    if not outcome.stored:
        click.echo(f"dry run: {summary}, nothing stored ({elapsed:.1f} s)", err=True)
        return
    state = "enabled" if config.enabled else "disabled until its credentials are set"
    click.echo(
        f"imported {config.name!r} as integration {config.integration_id}: {summary}, {state}",
        err=True,
    )
    click.echo(config.integration_id)


async def _announce_change(redis_url: str, tenant_id: str, integration: Any) -> None:
    """Tell running replicas (their tool lists) about an integration created from the shell."""
    import orjson

    from adaptor.executions.runtime import CHANGES_CHANNEL
    from adaptor.storage.kv_redis import RedisStore

    store = RedisStore.from_url(redis_url)
    try:
        notice = {"t": tenant_id, "i": integration.integration_id}
        await store.publish(CHANGES_CHANNEL, orjson.dumps(notice))
    except Exception as exc:  # the replicas' 30 s refresh covers a missed notice
        click.echo(f"warning: the change notice was not sent ({type(exc).__name__})", err=True)
    finally:
        await store.close()


@main.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every stored secret with the newest ENCRYPTION_KEY.

    Put the new key first in ENCRYPTION_KEY (comma-separated, newest first), keep the old ones
    after it, run this, then drop the old keys.
    """

    async def run(settings: Settings) -> int:
        from adaptor.integrations.service import IntegrationService
        from adaptor.mapping import MappingEngine
        from adaptor.services import secret_box_for
        from adaptor.storage.database import Database

        database = Database(settings.database_url)
        try:
            service = IntegrationService(database, secret_box_for(settings), MappingEngine())
            return await service.rotate_secrets()
        finally:
            await database.close()

    count = _run(run)
    click.echo(f"re-encrypted the secrets of {count} integration(s)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
