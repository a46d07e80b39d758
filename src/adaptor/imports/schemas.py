"""The import request on the wire."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from adaptor.domain.integration import StrictModel


class ImportRequest(StrictModel):
    """Body of `POST /api/v2/integrations/import`."""

    format: Literal["openapi"] = Field(description="The description's format.")
    document: dict[str, Any] | str = Field(
        description="The OpenAPI 3.0 or 3.1 document: a JSON object, or its JSON or YAML text. "
        "It must be self-contained: `$ref`s to other files or URLs are refused."
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=255, description="Default: `info.title`."
    )
    base_url: str | None = Field(
        default=None, max_length=2048, description="Default: `servers[0]` with its defaults."
    )
    operations: list[str] | None = Field(
        default=None, description="Only these operationIds (or endpoint names); default all."
    )
    dry_run: bool = Field(default=False, description="Convert and validate, store nothing.")
