"""`MarketplaceManager`: the catalogue, the wizard, one-click install, ratings and usage.

The catalogue is the package's template files (loaded and checked at start-up) plus what
admins published (kept per version in the database; the newest version is the one shown). An
install is an ordinary integration owned by the tenant, built from the template version it
installed; publishing a new version changes nothing installed until the tenant upgrades.

Popularity is `10 * installs + executions in the last 30 days` through installed integrations.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import structlog
from pydantic import ValidationError

from adaptor.connectors import connector_factory
from adaptor.domain import ExecutionOptions, IntegrationConfig, IntegrationSpec
from adaptor.domain.marketplace import (
    MarketplaceItem,
    MarketplaceItemSpec,
    MarketplaceItemSummary,
)
from adaptor.errors import Conflict, Loc, NotFound, ValidationFailed
from adaptor.events.outbox import MARKETPLACE_INSTALLED, OutboxWriter
from adaptor.executions.schemas import ConnectionTestResult
from adaptor.executions.service import ExecutionService
from adaptor.integrations.secrets import secret_values, split_secrets
from adaptor.integrations.service import IntegrationService
from adaptor.mapping import MappingEngine
from adaptor.marketplace.catalog import (
    TemplateError,
    as_item,
    build_document,
    builtin_template_files,
    load_file,
    template_problems,
)
from adaptor.marketplace.repository import MarketplaceRepository
from adaptor.marketplace.schemas import (
    Analytics,
    CatalogPage,
    CategoryCount,
    Install,
    InstallPage,
    InstallRequest,
    RatingResult,
    Window,
    Wizard,
)
from adaptor.marketplace.wizard import check_answers, wizard_document
from adaptor.pagination import decode_cursor, encode_cursor
from adaptor.protocols.registry import AdapterRegistry
from adaptor.storage.database import Database
from adaptor.storage.tables import MarketplaceInstallRow, MarketplaceItemRow

log = structlog.get_logger("adaptor.marketplace")

Sort = Literal["popularity", "rating", "name"]


class MarketplaceManager:
    """Integration marketplace management: template library, one-click setup, configuration
    wizard, test credentials and usage analytics (the specification's `MarketplaceManager`)."""

    def __init__(
        self,
        database: Database,
        integrations: IntegrationService,
        executions: ExecutionService,
        mapping: MappingEngine,
        adapters: AdapterRegistry,
        *,
        test_mode_enabled: bool = True,
        strict: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database = database
        self.integrations = integrations
        self.executions = executions
        self.mapping = mapping
        self.adapters = adapters
        self.test_mode_enabled = test_mode_enabled
        self.strict = strict
        """A broken built-in template stops start-up (development) instead of being skipped
        with an error log (production)."""
        self._clock = clock
        self.builtin: dict[str, MarketplaceItemSpec] = {}
        self._builtin_items: dict[str, MarketplaceItem] = {}
        """The built-in templates as catalogue items, built once (copied per read)."""

    # start-up ------------------------------------------------------------------------------

    def load_builtin(self, files: list[Path] | None = None) -> None:
        """Load and check the template files; `TemplateError` for a broken one when strict."""
        for path in files if files is not None else builtin_template_files():
            try:
                item = load_file(path, self.mapping, self.adapters)
            except TemplateError as exc:
                if self.strict:
                    raise
                log.error(
                    "marketplace.template_skipped",
                    file=path.name,
                    problems=[f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in exc.problems],
                )
                continue
            if item.item_id in self.builtin:
                problem: list[tuple[Loc, str]] = [
                    (("item_id",), f"{item.item_id!r} is used by another template")
                ]
                if self.strict:
                    raise TemplateError(str(path), problem)
                log.error("marketplace.template_skipped", file=path.name, problems=problem)
                continue
            self.builtin[item.item_id] = item
            self._builtin_items[item.item_id] = as_item(item)

    # catalogue -----------------------------------------------------------------------------

    async def items(self) -> list[MarketplaceItem]:
        """Every item at its newest version, with popularity and rating."""
        since = self._clock() - timedelta(days=30)
        async with self.database.session() as session:
            repo = MarketplaceRepository(session)
            published = await repo.latest_versions()
            installs = await repo.install_counts()
            executions = await repo.executions_since(since)
            ratings = await repo.ratings()
        found: dict[str, MarketplaceItem] = dict(self._builtin_items)
        for row in published:
            found[row.item_id] = _published(row)
        return [
            item.model_copy(
                update={
                    "popularity": 10 * installs.get(item_id, 0) + executions.get(item_id, 0),
                    "rating": ratings.get(item_id, (None, 0))[0],
                    "rating_count": ratings.get(item_id, (None, 0))[1],
                }
            )
            for item_id, item in found.items()
        ]

    async def get(self, item_id: str) -> MarketplaceItem:
        for item in await self.items():
            if item.item_id == item_id:
                return item
        raise NotFound(f"Marketplace item {item_id} does not exist")

    async def search(
        self,
        *,
        q: str | None = None,
        category: str | None = None,
        type: str | None = None,
        tag: str | None = None,
        sort: Sort = "popularity",
    ) -> CatalogPage:
        """Items matching a text search over name, description, provider and tags, and the
        category, type and tag filters, sorted."""
        words = (q or "").lower().split()
        chosen = []
        for item in await self.items():
            text = " ".join([item.name, item.description, item.provider, *item.tags]).lower()
            if words and not all(word in text for word in words):
                continue
            if category and item.category != category:
                continue
            if type and str(item.type) != type:
                continue
            if tag and tag.lower() not in (t.lower() for t in item.tags):
                continue
            chosen.append(item)
        if sort == "name":
            chosen.sort(key=lambda i: i.name.lower())
        elif sort == "rating":
            chosen.sort(key=lambda i: (-(i.rating or 0), -i.rating_count, i.name.lower()))
        else:
            chosen.sort(key=lambda i: (-i.popularity, i.name.lower()))
        return CatalogPage(items=[_summary(i) for i in chosen], total=len(chosen))

    async def categories(self) -> list[CategoryCount]:
        counts: dict[str, int] = {}
        for item in await self.items():
            counts[item.category] = counts.get(item.category, 0) + 1
        return [CategoryCount(category=c, count=n) for c, n in sorted(counts.items())]

    async def wizard(self, item_id: str) -> Wizard:
        item = await self.get(item_id)
        return Wizard.model_validate(wizard_document(item.template))

    # install -------------------------------------------------------------------------------

    def _spec(
        self, item: MarketplaceItem, body: InstallRequest
    ) -> tuple[IntegrationSpec, dict[str, Any]]:
        """The integration an install would create, checked like one (422 naming each
        problem), and the wizard's non-secret answers."""
        template = item.template
        credentials = dict(body.credentials)
        sandbox = False
        if body.test_mode:
            problems: list[tuple[Loc, str]] = []
            if not self.test_mode_enabled:
                problems.append((("body", "test_mode"), "test mode is off (ENABLE_TEST_MODE)"))
            elif template.test_credentials is None and template.sandbox_base_url is None:
                problems.append(
                    (("body", "test_mode"), f"{item.name} has no sandbox or test credentials")
                )
            if problems:
                raise ValidationFailed.of(problems)
            credentials = {**(template.test_credentials or {}), **credentials}
            sandbox = True
        hook = connector_factory(item.item_id)
        overrides = hook.normalise(dict(body.config_overrides))
        answers, problems = check_answers(template, credentials, overrides)
        if problems:
            raise ValidationFailed.of(problems)
        document = build_document(
            item, answers, name=body.name, sandbox=sandbox, version=item.version
        )
        try:
            spec = IntegrationSpec.model_validate(document)
        except ValidationError as exc:
            raise ValidationFailed.of(
                [
                    (("body", "config_overrides", *err["loc"]), err["msg"])
                    for err in exc.errors(include_url=False)
                ]
            ) from None
        return spec, answers.config

    async def install_integration(
        self, tenant_id: str, template_id: str, body: InstallRequest
    ) -> IntegrationConfig:
        """Install an integration from a template: 201 with the tenant's new integration."""
        item = await self.get(template_id)
        spec, config_answers = self._spec(item, body)
        created = await self.integrations.create(tenant_id, spec)
        row = MarketplaceInstallRow(
            install_id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            item_id=item.item_id,
            version=item.version,
            integration_id=created.integration_id,
            test_mode=body.test_mode,
            config=config_answers,
            created_at=self._clock(),
        )
        try:
            async with self.database.session() as session:
                await MarketplaceRepository(session).add_install(row)
                OutboxWriter.add(
                    session,
                    MARKETPLACE_INSTALLED,
                    created.integration_id,
                    tenant_id,
                    {
                        "install_id": row.install_id,
                        "item_id": item.item_id,
                        "version": item.version,
                        "integration_id": created.integration_id,
                        "test_mode": body.test_mode,
                    },
                )
        except BaseException:
            await self.integrations.delete(tenant_id, created.integration_id, None)
            raise
        log.info(
            "marketplace.installed",
            item_id=item.item_id,
            version=item.version,
            integration_id=created.integration_id,
            test_mode=body.test_mode,
        )
        return created

    async def test_connection(
        self, tenant_id: str, item_id: str, body: InstallRequest
    ) -> ConnectionTestResult:
        """Run the template's test endpoint with these answers, storing nothing."""
        item = await self.get(item_id)
        spec, _ = self._spec(item, body)
        problems = self.integrations.problems(spec)
        if problems:
            raise ValidationFailed.of([(("body", *loc), msg) for loc, msg in problems])
        document = spec.model_dump(mode="json")
        _, secrets = split_secrets(document)
        config = IntegrationConfig.model_validate(
            {**document, "integration_id": str(uuid.uuid4()), "tenant_id": tenant_id}
        )
        assert spec.test_endpoint is not None
        started = time.perf_counter()
        result = await self.executions.execute_unsaved(
            config,
            secret_values(secrets),
            spec.test_endpoint,
            {},
            ExecutionOptions(skip_cache=True),
        )
        return ConnectionTestResult(
            success=result.success,
            status_code=result.metadata.get("status_code"),
            latency_ms=round((time.perf_counter() - started) * 1000),
            error=result.error.message if result.error else None,
        )

    async def upgrade(self, tenant_id: str, integration_id: str) -> IntegrationConfig:
        """Rebuild an installed integration from its item's newest version, keeping the
        wizard answers and stored credentials (an explicit step: publishing never does it)."""
        async with self.database.session() as session:
            install = await MarketplaceRepository(session).install_for(tenant_id, integration_id)
        if install is None:
            raise NotFound(f"Integration {integration_id} was not installed from the marketplace")
        item = await self.get(install.item_id)
        loaded = await self.integrations.load(tenant_id, integration_id)
        credentials = dict(loaded.config.auth_config.credentials)
        fields = {f.name for f in item.template.fields() if f.target == "credentials"}
        body = InstallRequest(
            name=loaded.config.name,
            config_overrides=dict(install.config),
            credentials={k: v for k, v in credentials.items() if k in fields},
            test_mode=install.test_mode and self.test_mode_enabled,
        )
        spec, config_answers = self._spec(item, body)
        document = spec.model_dump(mode="json")
        document["integration_id"] = integration_id
        upgraded = await self.integrations.replace(
            tenant_id, integration_id, IntegrationSpec.model_validate(document), None
        )
        async with self.database.session() as session:
            row = await MarketplaceRepository(session).install_for(tenant_id, integration_id)
            if row is not None:
                row.version = item.version
                row.config = config_answers
        return upgraded

    async def installs(self, tenant_id: str, *, cursor: str | None, limit: int) -> InstallPage:
        latest = {item.item_id: item.version for item in await self.items()}
        async with self.database.session() as session:
            rows = await MarketplaceRepository(session).installs_of_tenant(
                tenant_id, after=decode_cursor(cursor), limit=limit + 1
            )
        more = len(rows) > limit
        rows = rows[:limit]
        return InstallPage(
            items=[
                Install(
                    install_id=row.install_id,
                    item_id=row.item_id,
                    version=row.version,
                    integration_id=row.integration_id,
                    test_mode=row.test_mode,
                    created_at=row.created_at,
                    latest_version=latest.get(row.item_id),
                )
                for row in rows
            ],
            next_cursor=encode_cursor(rows[-1].created_at, rows[-1].install_id)
            if more and rows
            else None,
        )

    # ratings and usage ---------------------------------------------------------------------

    async def rate(self, tenant_id: str, item_id: str, rating: int) -> RatingResult:
        """One rating per tenant per item: a new one replaces the old."""
        await self.get(item_id)
        async with self.database.session() as session:
            repo = MarketplaceRepository(session)
            await repo.rate(item_id, tenant_id, rating, self._clock())
            average, count = (await repo.ratings())[item_id]
        return RatingResult(item_id=item_id, rating=rating, average=average, count=count)

    async def analytics(self, item_id: str) -> Analytics:
        item = await self.get(item_id)
        now = self._clock()
        async with self.database.session() as session:
            repo = MarketplaceRepository(session)
            installs = await repo.installs_count(item_id)
            active = await repo.active_installs(item_id, now - timedelta(days=30))
            week = await repo.usage(item_id, now - timedelta(days=7))
            month = await repo.usage(item_id, now - timedelta(days=30))
            p50 = await repo.median_latency_ms(item_id, now - timedelta(days=30), month.executions)
        return Analytics(
            item_id=item_id,
            installs=installs,
            active_installs=active,
            last_7_days=Window(executions=week.executions, success_rate=week.success_rate),
            last_30_days=Window(executions=month.executions, success_rate=month.success_rate),
            p50_latency_ms=p50,
            popularity=item.popularity,
        )

    # publishing ----------------------------------------------------------------------------

    async def publish(self, spec: MarketplaceItemSpec, *, update: bool) -> MarketplaceItem:
        """Publish a new item (`update=False`, its slug must be free) or a new version of one
        (`update=True`); the template must pass the same checks as a template file."""
        problems = template_problems(spec, self.mapping, self.adapters)
        if problems:
            raise ValidationFailed.of([(("body", *loc), msg) for loc, msg in problems])
        async with self.database.session() as session:
            repo = MarketplaceRepository(session)
            current = {row.item_id: row.version for row in await repo.latest_versions()}
            exists = spec.item_id in current or spec.item_id in self.builtin
            if exists and not update:
                raise Conflict(
                    f"Marketplace item {spec.item_id} exists; PUT publishes a new version"
                )
            if not exists and update:
                raise NotFound(f"Marketplace item {spec.item_id} does not exist; POST creates it")
            builtin_version = 1 if spec.item_id in self.builtin else 0
            version = max(current.get(spec.item_id, 0), builtin_version) + 1
            now = self._clock()
            row = MarketplaceItemRow(
                item_id=spec.item_id,
                version=version,
                document=spec.model_dump(mode="json"),
                created_at=now,
            )
            await repo.add_version(row)
        log.info("marketplace.published", item_id=spec.item_id, version=version)
        return _published(row)


def _published(row: MarketplaceItemRow) -> MarketplaceItem:
    return MarketplaceItem.model_validate(
        {
            **row.document,
            "version": row.version,
            "source": "published",
            "created_at": row.created_at,
            "updated_at": row.created_at,
        }
    )


def _summary(item: MarketplaceItem) -> MarketplaceItemSummary:
    template = item.template
    return MarketplaceItemSummary(
        item_id=item.item_id,
        name=item.name,
        description=item.description,
        category=item.category,
        type=item.type,
        provider=item.provider,
        logo_url=item.logo_url,
        documentation_url=item.documentation_url,
        pricing=item.pricing,
        tags=item.tags,
        version=item.version,
        popularity=item.popularity,
        rating=item.rating,
        rating_count=item.rating_count,
        endpoints=len(template.endpoints),
        test_mode_available=template.test_credentials is not None
        or template.sandbox_base_url is not None,
    )
