"""Import: a document converted, validated like any integration, and stored (or not)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from adaptor.domain import IntegrationConfig, IntegrationSpec
from adaptor.errors import Loc, ValidationFailed
from adaptor.imports.documents import ImportProblems, load_document
from adaptor.imports.openapi import ImportOptions, convert_document
from adaptor.imports.references import DocumentResolver
from adaptor.imports.schemas import ImportRequest
from adaptor.integrations.service import IntegrationService


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    integration: IntegrationConfig
    stored: bool
    operations: int
    """Operations in the document (the endpoints are those selected)."""


class ImportService:
    def __init__(self, integrations: IntegrationService) -> None:
        self.integrations = integrations

    async def import_openapi(
        self, tenant_id: str, request: ImportRequest, *, path: Path | None = None
    ) -> ImportOutcome:
        """Import `request.document` (read from `path` by the CLI, whose sibling files its
        `$ref`s may reach). Raises ValidationFailed locating every problem: in the document
        under `body.document`, in the options under `body.<option>`.

        An integration whose auth needs credentials is stored disabled: the description names
        the auth but holds no secrets; a PATCH with the credentials and `enabled: true` turns
        it on (and is refused, naming each, until they are all there).
        """
        try:
            document = load_document(request.document)
            converted = convert_document(
                document,
                DocumentResolver(document, path=path),
                ImportOptions(request.name, request.base_url, request.operations),
            )
        except ImportProblems as exc:
            raise ValidationFailed.of(
                [(_located(loc), msg) for loc, msg in exc.problems],
                message="The document cannot be imported: "
                + "; ".join(f"{_dotted(loc)}: {msg}" for loc, msg in exc.problems[:20]),
            ) from None
        converted.spec["enabled"] = not converted.needs_credentials
        try:
            spec = IntegrationSpec.model_validate(converted.spec)
        except ValidationError as exc:
            raise ValidationFailed.of(
                [(("body", *err["loc"]), err["msg"]) for err in exc.errors()]
            ) from None
        if not request.dry_run:
            created = await self.integrations.create(tenant_id, spec)
            return ImportOutcome(created, stored=True, operations=converted.operations)
        self.integrations.validate(spec)
        preview = IntegrationConfig.model_validate(
            {
                **spec.model_dump(mode="json", exclude={"integration_id"}),
                "integration_id": str(uuid.uuid4()),
                "tenant_id": tenant_id,
            }
        )
        return ImportOutcome(preview, stored=False, operations=converted.operations)


def _located(loc: Loc) -> list[str | int]:
    if loc and loc[0] == "$options":
        return ["body", *loc[1:]]
    return ["body", "document", *loc]


def _dotted(loc: Loc) -> str:
    if loc and loc[0] == "$options":
        return ".".join(map(str, loc[1:]))
    return ".".join(map(str, loc)) or "(document)"
