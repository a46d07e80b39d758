"""Creating, reading, changing and deleting integrations, with secrets kept encrypted."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from adaptor.domain import IntegrationConfig, IntegrationSpec
from adaptor.errors import Conflict, Loc, NotFound, PreconditionFailed, ValidationFailed
from adaptor.integrations.repository import IntegrationRepository
from adaptor.integrations.schemas import IntegrationPage
from adaptor.integrations.secrets import merge_secrets, restore_masked, split_secrets
from adaptor.integrations.validation import validate_spec
from adaptor.mapping import MappingEngine
from adaptor.pagination import decode_cursor, encode_cursor
from adaptor.security.crypto import SecretBox
from adaptor.storage.database import Database
from adaptor.storage.tables import IntegrationRow
from adaptor.vault import SecretSealer, VaultSecrets, is_reference

ChangeListener = Callable[[str, str], Awaitable[None]]
"""Called with (tenant_id, integration_id) after a committed change."""


@dataclass(frozen=True, slots=True)
class LoadedIntegration:
    """An integration with its secrets, for execution only: never serialised to a caller."""

    config: IntegrationConfig
    secrets: list[str]


class IntegrationService:
    def __init__(
        self,
        database: Database,
        secret_box: SecretBox,
        engine: MappingEngine,
        listeners: list[ChangeListener] | None = None,
        vault: VaultSecrets | None = None,
    ) -> None:
        self.database = database
        self.secret_box = secret_box
        self.sealer = SecretSealer(secret_box, vault)
        self.engine = engine
        self.listeners: list[ChangeListener] = listeners or []

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
        secrets = await self._secrets(row)
        config = _config(row, merge_secrets(_document(row), secrets))
        return LoadedIntegration(config=config, secrets=[str(v) for _, v in secrets if v])

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
        return IntegrationPage(
            items=[_config(row) for row in rows],
            next_cursor=encode_cursor(last.created_at, last.integration_id)
            if more and last
            else None,
        )

    # writes --------------------------------------------------------------------------------

    async def create(self, tenant_id: str, spec: IntegrationSpec) -> IntegrationConfig:
        self._validate(spec)
        integration_id = spec.integration_id or str(uuid.uuid4())
        document = spec.model_dump(mode="json", exclude={"integration_id"})
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
        await self._notify(tenant_id, integration_id)
        return _config(row)

    async def replace(
        self, tenant_id: str, integration_id: str, spec: IntegrationSpec, if_match: str | None
    ) -> IntegrationConfig:
        if spec.integration_id not in (None, integration_id):
            raise ValidationFailed.of(
                [(("body", "integration_id"), "does not match the integration in the path")]
            )
        document = spec.model_dump(mode="json", exclude={"integration_id"})
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
        await self._notify(tenant_id, integration_id)

    async def rotate_secrets(self) -> int:
        """Re-encrypt every stored secret under the newest key; returns how many rows."""
        count = 0
        async with self.database.session() as session:
            for row in await IntegrationRepository(session).all_with_secrets():
                assert row.secrets is not None
                if is_reference(row.secrets):
                    continue  # kept in Vault, which encrypts with its own keys
                row.secrets = self.secret_box.rotate(row.secrets)
                count += 1
        return count

    # internals -----------------------------------------------------------------------------

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
            stored = await self._secrets(row)
            document, missing = restore_masked(change(_document(row)), stored)
            problems: list[tuple[Loc, str]] = [
                (("body", *path), "is masked but no secret is stored for it; send the value")
                for path in missing
            ]
            if problems:
                raise ValidationFailed.of(problems)
            spec = _parse_spec(document)
            self._validate(spec)
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

    def _validate(self, spec: IntegrationSpec) -> None:
        problems = validate_spec(spec, self.engine)
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
    accepted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in accepted and etag(version) not in accepted:
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current version {etag(version)}"
        )


def _parse_spec(document: dict[str, Any]) -> IntegrationSpec:
    try:
        return IntegrationSpec.model_validate(document)
    except ValidationError as exc:
        raise ValidationFailed.of(
            [(("body", *err["loc"]), err["msg"]) for err in exc.errors(include_url=False)]
        ) from None


def _document(row: IntegrationRow) -> dict[str, Any]:
    return dict(row.config)


def _config(row: IntegrationRow, document: dict[str, Any] | None = None) -> IntegrationConfig:
    return IntegrationConfig.model_validate(
        {
            **(row.config if document is None else document),
            "integration_id": row.integration_id,
            "tenant_id": row.tenant_id,
            "version": row.version,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }
    )


def _not_found(integration_id: str) -> NotFound:
    return NotFound(f"Integration {integration_id} does not exist")
