"""Creating, reading, changing and deleting integrations, with secrets kept encrypted."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from adaptor.domain import IntegrationConfig, IntegrationSpec
from adaptor.errors import Conflict, Loc, NotFound, PreconditionFailed, ValidationFailed
from adaptor.events.outbox import (
    INTEGRATION_CREATED,
    INTEGRATION_DELETED,
    INTEGRATION_UPDATED,
    OutboxWriter,
)
from adaptor.integrations.repository import IntegrationRepository
from adaptor.integrations.schemas import IntegrationPage
from adaptor.integrations.secrets import merge_secrets, restore_masked, split_secrets
from adaptor.integrations.validation import validate_spec
from adaptor.mapping import MappingEngine
from adaptor.pagination import decode_cursor, encode_cursor
from adaptor.protocols.registry import AdapterRegistry, default_registry
from adaptor.security.crypto import EncryptionKeyError, SecretBox
from adaptor.storage.database import Database
from adaptor.storage.tables import IntegrationRow
from adaptor.vault import SecretSealer, VaultSecrets, is_reference

log = structlog.get_logger("adaptor.integrations")

ChangeListener = Callable[[str, str], Awaitable[None]]
"""Called with (tenant_id, integration_id) after a committed change."""


@dataclass(frozen=True, slots=True)
class LoadedIntegration:
    """An integration with its secrets, for execution only: never serialised to a caller."""

    config: IntegrationConfig
    secrets: list[str]
    secrets_error: str | None = None
    """Why the stored secrets could not be decrypted (then `secrets` is empty and the
    integration cannot authenticate): an execution answers `auth_failed` with it."""


class IntegrationService:
    def __init__(
        self,
        database: Database,
        secret_box: SecretBox,
        engine: MappingEngine,
        listeners: list[ChangeListener] | None = None,
        *,
        adapters: AdapterRegistry | None = None,
        vault: VaultSecrets | None = None,
        default_timeout_ms: int = 5000,
    ) -> None:
        self.database = database
        self.secret_box = secret_box
        self.sealer = SecretSealer(secret_box, vault)
        self.engine = engine
        self.adapters = adapters or default_registry()
        """Which integration types can run, and each adapter's save-time checks."""
        self.listeners: list[ChangeListener] = listeners or []
        self.default_timeout_ms = default_timeout_ms
        """`timeout_ms` of an integration saved without one (`DEFAULT_TIMEOUT_MS`)."""

    # reads ---------------------------------------------------------------------------------

    async def get(self, tenant_id: str, integration_id: str) -> IntegrationConfig:
        async with self.database.session() as session:
            row = await IntegrationRepository(session).get(tenant_id, integration_id)
        if row is None:
            raise _not_found(integration_id)
        return _config(row)

    async def load(self, tenant_id: str, integration_id: str) -> LoadedIntegration:
        """The full configuration with decrypted secrets."""
        async with self.database.session() as session:
            row = await IntegrationRepository(session).get(tenant_id, integration_id)
        if row is None:
            raise _not_found(integration_id)
        return await self._loaded(row)

    async def load_anywhere(self, integration_id: str) -> LoadedIntegration | None:
        """The full configuration with decrypted secrets, whatever its tenant (None if there
        is none): for inbound webhooks, which the sender's signature authenticates."""
        async with self.database.session() as session:
            row = await IntegrationRepository(session).get_anywhere(integration_id)
        return None if row is None else await self._loaded(row)

    async def _loaded(self, row: IntegrationRow) -> LoadedIntegration:
        integration_id = row.integration_id
        secrets_error: str | None = None
        try:
            secrets = await self._secrets(row)
        except EncryptionKeyError:
            secrets, secrets_error = [], _undecryptable(integration_id)
        try:
            config = _config(row, merge_secrets(_document(row), secrets), strict=True)
        except ValidationError as exc:
            raise Conflict(
                f"Integration {integration_id} has a stored configuration that no longer "
                f"validates ({_summary(exc)}); correct it with PUT or PATCH, or delete it"
            ) from None
        return LoadedIntegration(
            config=config, secrets=[str(v) for _, v in secrets if v], secrets_error=secrets_error
        )

    async def page(
        self, tenant_id: str, *, filters: dict[str, Any], cursor: str | None, limit: int
    ) -> IntegrationPage:
        async with self.database.session() as session:
            rows = await IntegrationRepository(session).page(
                tenant_id, filters=filters, after=decode_cursor(cursor), limit=limit + 1
            )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows else None
        items: list[IntegrationConfig] = []
        for row in rows:
            try:
                items.append(_config(row))
            except ValidationError:  # logged by _config; read it alone, or delete it
                continue
        return IntegrationPage(
            items=items,
            next_cursor=encode_cursor(last.created_at, last.integration_id)
            if more and last
            else None,
        )

    # writes --------------------------------------------------------------------------------

    async def create(self, tenant_id: str, spec: IntegrationSpec) -> IntegrationConfig:
        self.validate(spec)
        integration_id = spec.integration_id or str(uuid.uuid4())
        document = self._document_of(spec)
        masked, secrets = split_secrets(document)
        sealed = await self._seal(tenant_id, integration_id, secrets)
        now = datetime.now(UTC)
        row = IntegrationRow(
            integration_id=integration_id,
            tenant_id=tenant_id,
            name=spec.name,
            type=str(spec.type),
            category=spec.category,
            enabled=spec.enabled,
            version=1,
            config=masked,
            secrets=sealed,
            created_at=now,
            updated_at=now,
        )
        async with self.database.session() as session:
            repo = IntegrationRepository(session)
            if await repo.exists_anywhere(integration_id):
                raise Conflict(f"An integration with id {integration_id} already exists")
            await repo.add(row)
            # Read back before the commit: what cannot be read back is not stored.
            created = _config(row, strict=True)
            _changed(session, INTEGRATION_CREATED, tenant_id, integration_id, vars(row))
        await self._notify(tenant_id, integration_id)
        return created

    async def replace(
        self, tenant_id: str, integration_id: str, spec: IntegrationSpec, if_match: str | None
    ) -> IntegrationConfig:
        if spec.integration_id not in (None, integration_id):
            raise ValidationFailed.of(
                [(("body", "integration_id"), "does not match the integration in the path")]
            )
        document = self._document_of(spec)
        return await self._write(tenant_id, integration_id, if_match, lambda _: document)

    async def patch(
        self, tenant_id: str, integration_id: str, patch: dict[str, Any], if_match: str | None
    ) -> IntegrationConfig:
        for forbidden in ("integration_id", "tenant_id", "version", "created_at", "updated_at"):
            if forbidden in patch:
                raise ValidationFailed.of([(("body", forbidden), "cannot be changed")])
        return await self._write(
            tenant_id, integration_id, if_match, lambda current: merge_patch(current, patch)
        )

    async def delete(self, tenant_id: str, integration_id: str, if_match: str | None) -> None:
        async with self.database.session() as session:
            repo = IntegrationRepository(session)
            row = await repo.get(tenant_id, integration_id)
            if row is None:
                raise _not_found(integration_id)
            _check_etag(row.version, if_match)
            if not await repo.delete_if_version(tenant_id, integration_id, row.version):
                raise PreconditionFailed("The integration changed meanwhile; read it again")
            _changed(session, INTEGRATION_DELETED, tenant_id, integration_id, vars(row))
        await self._notify(tenant_id, integration_id)

    async def rotate_secrets(self) -> int:
        """Re-encrypt every stored secret under the newest key; returns how many rows."""
        count = 0
        async with self.database.session() as session:
            for row in await IntegrationRepository(session).all_with_secrets():
                assert row.secrets is not None
                if is_reference(row.secrets):
                    continue  # kept in Vault, which encrypts with its own keys
                try:
                    row.secrets = self.secret_box.rotate(row.secrets)
                except EncryptionKeyError:
                    raise EncryptionKeyError(
                        f"{_undecryptable(row.integration_id)} (tenant {row.tenant_id}); "
                        "nothing was re-encrypted: add the key it was stored with to "
                        "ENCRYPTION_KEY"
                    ) from None
                count += 1
        return count

    async def undecryptable_count(self) -> int:
        """How many stored integrations have secrets that no configured key opens (checked
        once at start-up: one decryption per row holding secrets)."""
        async with self.database.session() as session:
            tokens = await IntegrationRepository(session).secret_tokens()
        return sum(
            1
            for token in tokens
            if not is_reference(token)  # kept in Vault, which has its own keys
            and not self.secret_box.can_decrypt(token)
        )

    # internals -----------------------------------------------------------------------------

    def _document_of(self, spec: IntegrationSpec) -> dict[str, Any]:
        """The stored document of a created or replaced integration: a `timeout_ms` the caller
        left out is `DEFAULT_TIMEOUT_MS`."""
        document = spec.model_dump(mode="json", exclude={"integration_id"})
        if "timeout_ms" not in spec.model_fields_set:
            document["timeout_ms"] = self.default_timeout_ms
        return document

    async def _write(
        self,
        tenant_id: str,
        integration_id: str,
        if_match: str | None,
        change: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> IntegrationConfig:
        async with self.database.session() as session:
            repo = IntegrationRepository(session)
            row = await repo.get(tenant_id, integration_id)
            if row is None:
                raise _not_found(integration_id)
            _check_etag(row.version, if_match)
            try:
                stored = await self._secrets(row)
            except EncryptionKeyError:  # a write that sends every secret again repairs it
                stored = []
            document, missing = restore_masked(change(_document(row)), stored)
            problems: list[tuple[Loc, str]] = [
                (("body", *path), "is masked but no secret is stored for it; send the value")
                for path in missing
            ]
            if problems:
                raise ValidationFailed.of(problems)
            spec = _parse_spec(document)
            self.validate(spec)
            full = spec.model_dump(mode="json", exclude={"integration_id"})
            masked, secrets = split_secrets(full)
            now = datetime.now(UTC)
            values = {
                "name": spec.name,
                "type": str(spec.type),
                "category": spec.category,
                "enabled": spec.enabled,
                "version": row.version + 1,
                "config": masked,
                "secrets": await self._seal(tenant_id, integration_id, secrets),
                "updated_at": now,
            }
            if not await repo.update_if_version(tenant_id, integration_id, row.version, values):
                raise PreconditionFailed("The integration changed meanwhile; read it again")
            _changed(session, INTEGRATION_UPDATED, tenant_id, integration_id, values)
            created_at = row.created_at
        await self._notify(tenant_id, integration_id)
        return IntegrationConfig.model_validate(
            {
                **masked,
                "integration_id": integration_id,
                "tenant_id": tenant_id,
                "version": values["version"],
                "created_at": created_at,
                "updated_at": now,
            }
        )

    def problems(self, spec: IntegrationSpec) -> list[tuple[Loc, str]]:
        """Everything that would keep `spec` from being saved (empty when it can be)."""
        return validate_spec(spec, self.engine, self.adapters)

    def validate(self, spec: IntegrationSpec) -> None:
        """Every save-time check (auth, the type's adapter, mappings): `ValidationFailed`
        locating each problem under `body`."""
        problems = self.problems(spec)
        if problems:
            raise ValidationFailed.of([(("body", *loc), msg) for loc, msg in problems])

    async def _seal(
        self, tenant_id: str, integration_id: str, secrets: list[list[Any]]
    ) -> str | None:
        if not secrets:
            return None
        return await self.sealer.seal(
            secrets, tenant_id=tenant_id, integration_id=integration_id, kind="credentials"
        )

    async def _secrets(self, row: IntegrationRow) -> list[list[Any]]:
        if not row.secrets:
            return []
        value = await self.sealer.unseal(row.secrets)
        return value if isinstance(value, list) else []

    async def _notify(self, tenant_id: str, integration_id: str) -> None:
        for listener in self.listeners:
            await listener(tenant_id, integration_id)


def _changed(
    session: AsyncSession, event_type: str, tenant_id: str, integration_id: str, row: Any
) -> None:
    """The change's event, in its transaction: what changed, never the configuration."""
    data: dict[str, Any] = {"integration_id": integration_id}
    data.update({name: row[name] for name in _EVENT_FIELDS if name in row})
    OutboxWriter.add(session, event_type, integration_id, tenant_id, data)


_EVENT_FIELDS = ("name", "type", "category", "enabled", "version")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def etag(version: int) -> str:
    return f'"{version}"'


def _check_etag(version: int, if_match: str | None) -> None:
    if if_match is None:
        return
    # A bare version (`If-Match: 1`) is read as the entity tag it abbreviates ("1").
    accepted = {_quoted(tag.strip().removeprefix("W/")) for tag in if_match.split(",")}
    if "*" not in accepted and etag(version) not in accepted:
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current version {etag(version)}"
        )


def _quoted(tag: str) -> str:
    return tag if tag == "*" or tag.startswith('"') else f'"{tag}"'


def _parse_spec(document: dict[str, Any]) -> IntegrationSpec:
    try:
        return IntegrationSpec.model_validate(document)
    except ValidationError as exc:
        raise ValidationFailed.of(
            [
                (("body", *err["loc"]), err["msg"].removeprefix("Value error, "))
                for err in exc.errors(include_url=False)
            ]
        ) from None


def _document(row: IntegrationRow) -> dict[str, Any]:
    return dict(row.config)


def _config(
    row: IntegrationRow, document: dict[str, Any] | None = None, *, strict: bool = False
) -> IntegrationConfig:
    """The row as an `IntegrationConfig`. A stored document that no longer validates (saved
    before a stricter check existed) is logged and read without its offending fields, which
    `stored_problems` names, so one bad row never breaks a read or the tenant's list; with
    `strict` the `ValidationError` is raised instead."""
    values = {
        **(row.config if document is None else document),
        "integration_id": row.integration_id,
        "tenant_id": row.tenant_id,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
    try:
        return IntegrationConfig.model_validate(values)
    except ValidationError as exc:
        if strict:
            raise
        first = exc
    log.warning(
        "integrations.stored_config_invalid",
        integration_id=row.integration_id,
        tenant_id=row.tenant_id,
        problems=[".".join(map(str, e["loc"])) for e in first.errors(include_url=False)],
    )
    problems = _problems(first)
    values = {**values, "name": row.name, "type": row.type, "category": row.category}
    for _ in range(_MAX_SALVAGE_ROUNDS):
        try:
            salvaged = IntegrationConfig.model_validate({**values, "stored_problems": problems})
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                if not _drop(values, tuple(error["loc"])):
                    raise first from None
                problems.append(_problem(error))
            continue
        return salvaged
    raise first


_MAX_SALVAGE_ROUNDS = 10


def _problems(exc: ValidationError) -> list[dict[str, Any]]:
    return [_problem(error) for error in exc.errors(include_url=False)]


def _problem(error: Any) -> dict[str, Any]:
    return {"loc": list(error["loc"]), "msg": str(error["msg"]).removeprefix("Value error, ")}


def _summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in _problems(exc))


def _drop(document: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    """Remove the value at `loc` (a path into nested dicts and lists) from a copy-on-write
    document; False when there is nothing there to remove."""
    if not loc:
        return False
    target: Any = document
    for part in loc[:-1]:
        if isinstance(target, dict) and part in target:
            target[part] = copy.copy(target[part])
            target = target[part]
        elif isinstance(target, list) and isinstance(part, int) and part < len(target):
            target[part] = copy.copy(target[part])
            target = target[part]
        else:
            return False
    last = loc[-1]
    if isinstance(target, dict) and last in target:
        del target[last]
        return True
    if isinstance(target, list) and isinstance(last, int) and last < len(target):
        del target[last]
        return True
    return False


def _undecryptable(integration_id: str) -> str:
    return (
        f"The stored secrets of integration {integration_id} cannot be decrypted with any "
        "configured ENCRYPTION_KEY (the key they were stored with is missing: was it rotated "
        "or changed?)"
    )


def _not_found(integration_id: str) -> NotFound:
    return NotFound(f"Integration {integration_id} does not exist")
