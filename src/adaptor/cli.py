"""The `adaptor` command: serve, migrate, manage API keys, rotate the encryption key, check
marketplace templates, import OpenAPI descriptions."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from adaptor.config import ConfigError, Settings, load_settings
from adaptor.security.crypto import EncryptionKeyError
from adaptor.storage.database import DatabaseUnavailable, SchemaMissing

if TYPE_CHECKING:
    from adaptor.storage.database import Database

T = TypeVar("T")

_ONE_LINE_ERRORS = (EncryptionKeyError, ConfigError, DatabaseUnavailable, SchemaMissing)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _run(factory: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    settings = _settings()
    try:
        return asyncio.run(factory(settings))
    except _ONE_LINE_ERRORS as exc:
        raise click.ClickException(str(exc)) from None


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[Database]:
    """The configured database, reachable and (in development) migrated, as `serve` does; in
    production an unmigrated schema is one line saying to run `adaptor migrate`."""
    from sqlalchemy.exc import DBAPIError

    from adaptor.storage.database import Database

    database = Database(settings.database_url)
    try:
        await database.check()
        if not settings.production:
            await database.migrate()
        yield database
    except DBAPIError as exc:
        text = str(exc)
        if "no such table" in text or ("relation" in text and "does not exist" in text):
            raise SchemaMissing(
                "the database schema is missing or out of date: run `adaptor migrate` first"
            ) from None
        raise
    finally:
        await database.close()


def _data_dir_note(settings: Settings) -> str:
    return f"data in {settings.data_dir}"


def _check_port_free(host: str, port: int) -> None:
    """Fail now, in one line, when the port is taken (rather than after the banner)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use (is another `adaptor serve` "
                    "running?): stop it, or choose another port with HTTP_PORT or --port"
                ) from None
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None


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
    if workers < 1:
        raise click.UsageError("--workers must be at least 1")
    if workers > 1 and not settings.redis_url:
        raise click.ClickException(
            f"--workers {workers} needs REDIS_URL: with the in-process store each worker would "
            "keep its own rate limits, circuit breakers and response cache; set REDIS_URL, or "
            "run one worker"
        )
    from adaptor.app import create_app
    from adaptor.observability.logging import UVICORN_LOG_CONFIG
    from adaptor.services import check_encryption_setting, vault_for
    from adaptor.storage.database import Database
    from adaptor.vault import VaultUnavailable

    async def reachable() -> None:
        database = Database(settings.database_url)
        try:
            await database.check()
        finally:
            await database.close()

    try:
        check_encryption_setting(settings)
        vault_for(settings)
        asyncio.run(reachable())
    except (*_ONE_LINE_ERRORS, VaultUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    _check_port_free(bind_host, bind_port)
    click.echo(
        f"Adaptor Service on http://{bind_host}:{bind_port}/docs ({_data_dir_note(settings)})",
        err=True,
    )
    options: dict[str, Any] = {
        "host": bind_host,
        "port": bind_port,
        "log_level": settings.log_level,
        "log_config": UVICORN_LOG_CONFIG,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "factory": False,
        "timeout_graceful_shutdown": settings.shutdown_grace_seconds,
    }
    try:
        if workers == 1:
            from adaptor.drain import DrainingServer

            app = create_app(settings)
            server = DrainingServer(
                uvicorn.Config(app, **options), app=app, delay_s=settings.shutdown_delay_seconds
            )
            server.run()
        else:
            uvicorn.run("adaptor.main:app", workers=workers, **options)
    except _ONE_LINE_ERRORS as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
def migrate() -> None:
    """Bring the database schema to the newest revision."""

    async def run(settings: Settings) -> None:
        from adaptor.storage.database import Database

        database = Database(settings.database_url)
        try:
            await database.check()
            await database.migrate()
        finally:
            await database.close()

    from adaptor.storage.database import describe

    settings = _settings()
    _run(run)
    click.echo(f"the database schema of {describe(settings.database_url)} is up to date")


@main.group("api-keys")
def api_keys() -> None:
    """Create, list and revoke caller API keys."""


@api_keys.command("create")
@click.option("--tenant", "tenant_id", default=None, help="Tenant the key acts for.")
@click.option("--name", default="cli", show_default=True, help="A label for the key.")
@click.option("--admin", is_flag=True, help="Create an admin key instead of a tenant key.")
@click.option(
    "--expires-at",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="When the key stops working (UTC), e.g. 2027-01-31.",
)
def create_key(tenant_id: str | None, name: str, admin: bool, expires_at: datetime | None) -> None:
    """Create a key and print it once (tab-separated: key id, key)."""
    if admin == (tenant_id is not None):
        raise click.UsageError("give either --tenant TENANT or --admin")
    expiry = expires_at.replace(tzinfo=UTC) if expires_at is not None else None
    if expiry is not None and expiry <= datetime.now(UTC):
        raise click.UsageError("--expires-at must be in the future")

    async def run(settings: Settings) -> str:
        from adaptor.keys.service import ApiKeyService

        async with _database(settings) as database:
            created = await ApiKeyService(database, production=settings.production).create(
                tenant_id=tenant_id,
                name=name,
                role="admin" if admin else "tenant",
                expires_at=expiry,
            )
            return f"{created.key_id}\t{created.api_key}"

    click.echo(_run(run))


@api_keys.command("list")
@click.option("--tenant", "tenant_id", default=None, help="Only this tenant's keys.")
def list_keys(tenant_id: str | None) -> None:
    """List keys (never their secrets)."""

    async def run(settings: Settings) -> list[str]:
        from adaptor.keys.service import ApiKeyService

        lines: list[str] = []
        now = datetime.now(UTC)
        async with _database(settings) as database:
            service = ApiKeyService(database)
            cursor: str | None = None
            while True:
                page = await service.page(tenant_id=tenant_id, cursor=cursor, limit=500)
                for key in page.items:
                    if key.revoked_at:
                        state = "revoked"
                    elif key.expires_at is not None and key.expires_at <= now:
                        state = "expired"
                    else:
                        state = "active"
                    tenant = key.tenant_id or "-"
                    expires = key.expires_at.isoformat() if key.expires_at else "never"
                    lines.append(
                        f"{key.key_id}\t{key.role}\t{tenant}\t{key.name}\t{key.key_prefix}…"
                        f"\t{state}\texpires {expires}"
                    )
                if page.next_cursor is None:
                    return lines
                cursor = page.next_cursor

    for line in _run(run):
        click.echo(line)


@api_keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a key by its id."""

    async def run(settings: Settings) -> None:
        from adaptor.errors import NotFound
        from adaptor.keys.service import ApiKeyService

        async with _database(settings) as database:
            try:
                await ApiKeyService(database).revoke(key_id)
            except NotFound as exc:
                raise click.ClickException(exc.message) from None

    from adaptor.keys.service import ApiKeyService

    _run(run)
    click.echo(
        f"revoked {key_id}; running replicas refuse it within "
        f"{ApiKeyService.CACHE_SECONDS:g} s (their key cache's lifetime)"
    )


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

        async with _database(settings) as database:
            service = IntegrationService(
                database,
                secret_box_for(settings),
                MappingEngine(),
                default_timeout_ms=settings.default_timeout_ms,
            )
            request = ImportRequest(
                format="openapi",
                document=file.read_text(encoding="utf-8"),
                name=name,
                base_url=base_url,
                operations=list(operations) or None,
                dry_run=dry_run,
            )
            outcome = await ImportService(service).import_openapi(tenant_id, request, path=file)
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


@main.group("marketplace")
def marketplace() -> None:
    """List the shipped connector templates, show one, check a template file."""


def _template_checker() -> tuple[Any, Any]:
    from adaptor.mapping import MappingEngine
    from adaptor.protocols.registry import default_registry

    return MappingEngine(), default_registry()


def _builtin_templates() -> list[Any]:
    from adaptor.marketplace.catalog import builtin_template_files, load_file

    engine, adapters = _template_checker()
    return [load_file(path, engine, adapters) for path in builtin_template_files()]


@marketplace.command("list")
def marketplace_list() -> None:
    """Every shipped template: slug, category, type, endpoints, name."""
    for item in sorted(_builtin_templates(), key=lambda i: (i.category, i.item_id)):
        endpoints = len(item.template.endpoints)
        click.echo(f"{item.item_id}\t{item.category}\t{item.type}\t{endpoints}\t{item.name}")


@marketplace.command("show")
@click.argument("item_id")
def marketplace_show(item_id: str) -> None:
    """A shipped template's wizard fields and endpoints."""
    item = next((i for i in _builtin_templates() if i.item_id == item_id), None)
    if item is None:
        raise click.ClickException(f"no shipped template is called {item_id!r}")
    click.echo(f"{item.name} ({item.item_id}, {item.category}, {item.type}) by {item.provider}")
    click.echo(item.description)
    for step in item.template.wizard:
        click.echo(f"{step.title}:")
        for field in step.fields:
            flags = ", ".join(
                flag for flag, on in (("secret", field.secret), ("required", field.required)) if on
            )
            click.echo(f"  {field.name}\t{field.label}" + (f" ({flags})" if flags else ""))
    click.echo("Endpoints:")
    for endpoint in item.template.endpoints:
        click.echo(f"  {endpoint.name}\t{endpoint.method} {endpoint.path}")


@marketplace.command("validate")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def marketplace_validate(path: Path) -> None:
    """Check a template file as publishing would; each problem is printed with where it is."""
    from adaptor.marketplace.catalog import TemplateError, load_file

    engine, adapters = _template_checker()
    try:
        item = load_file(path, engine, adapters)
    except TemplateError as exc:
        for loc, message in exc.problems:
            click.echo(f"{path}: {'.'.join(map(str, loc)) or '(document)'}: {message}", err=True)
        raise click.ClickException(f"{len(exc.problems)} problem(s) in {path}") from None
    endpoints = len(item.template.endpoints)
    click.echo(f"{path}: {item.item_id} is valid ({endpoints} endpoints)")


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

    Put the new key first in ENCRYPTION_KEY (comma-separated, newest first), keep the key in
    use after it, run this, then drop the old key. In development, the key file in DATA_DIR
    (used when ENCRYPTION_KEY is unset) is updated to the new key, so the service still opens
    the secrets when started without the variable. Make a key with `adaptor generate-key`.
    """
    from adaptor.security.crypto import LOCAL_KEY_FILE, SecretBox, fingerprint, replace_local_key

    settings = _settings()
    key_file = settings.data_dir / LOCAL_KEY_FILE
    if not settings.encryption_key:
        raise click.ClickException(
            "ENCRYPTION_KEY is not set: give the new key first and the one in use after it "
            f"(ENCRYPTION_KEY=NEW,CURRENT; in development the current key is in {key_file}; "
            "make a new one with `adaptor generate-key`)"
        )
    try:
        box = SecretBox.from_setting(settings.encryption_key)
    except EncryptionKeyError as exc:
        raise click.ClickException(str(exc)) from None
    keys = [part.strip() for part in settings.encryption_key.split(",") if part.strip()]

    async def run(settings: Settings) -> int:
        from adaptor.integrations.service import IntegrationService
        from adaptor.mapping import MappingEngine
        from adaptor.oauth.service import rotate_token_secrets

        async with _database(settings) as database:
            count = await IntegrationService(database, box, MappingEngine()).rotate_secrets()
            tokens = await rotate_token_secrets(database, box)
            if tokens:
                click.echo(f"re-encrypted the OAuth tokens of {tokens} integration(s)")
            return count

    click.echo(
        "keys (newest first): "
        + ", ".join(box.fingerprints)
        + f"; encrypting with {box.fingerprints[0]}"
    )
    count = _run(run)
    click.echo(f"re-encrypted the secrets of {count} integration(s) with key {box.fingerprints[0]}")
    if not settings.production and key_file.exists():
        current = key_file.read_text().strip()
        if current != keys[0]:
            replace_local_key(settings.data_dir, keys[0])
            click.echo(
                f"the development key file {key_file} held key {fingerprint(current)}; it now "
                f"holds {box.fingerprints[0]}, so the service opens the secrets with or without "
                "ENCRYPTION_KEY"
            )
    elif len(keys) > 1:
        click.echo(
            "start every replica with ENCRYPTION_KEY holding the new key first; the older keys "
            "can then be dropped"
        )


@main.command("generate-key")
def generate_key() -> None:
    """Print a new Fernet key for ENCRYPTION_KEY (url-safe base64, 32 bytes)."""
    from adaptor.security.crypto import SecretBox

    click.echo(SecretBox.generate_key())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
