"""What a vendor hook is: the few things a connector needs that its template cannot say.

Most connectors are data only (their template); they get the base `Connector`, which changes
nothing. A vendor with a real need overrides one method:

- `normalise` tidies a wizard answer before the template's rules check it (a shop name
  typed without its domain);
- `prepare` adjusts the integration document built from the template and the answers;
- `base_url_from_token` reads the API's base URL from an OAuth2 token response (Salesforce's
  `instance_url`);
- `upstream_quota` reads the upstream's remaining quota from a successful answer, where the
  vendor reports it in a way the generic rate-limit headers do not cover (Shopify's GraphQL
  query cost, HubSpot's own headers), so the limiter can pause calls before a 429.

Hooks import nothing from the web layer, storage or settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

__all__ = ["Connector", "Quota", "TokenResponse"]


class TokenResponse(Protocol):
    """An OAuth2 token endpoint's JSON answer, as a mapping (RFC 6749 §5.1 plus vendor keys)."""

    def get(self, key: str, default: Any = None, /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Quota:
    """How many calls the upstream still allows, and in how many seconds that resets."""

    remaining: int
    reset_s: float


class Connector:
    """A vendor hook; the base changes nothing (a connector that is data only)."""

    item_id: ClassVar[str] = ""
    reads_quota: ClassVar[bool] = False
    """Whether `upstream_quota` reads anything (the pipeline asks only those that do)."""

    def normalise(self, config: dict[str, Any]) -> dict[str, Any]:
        """The wizard's config answers, tidied before validation."""
        return config

    def sample_config(self) -> dict[str, Any]:
        """Config answers that pass the template's rules, for checking the template."""
        return {}

    def prepare(self, document: dict[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
        """The integration document built from the template, adjusted for the vendor."""
        return document

    def base_url_from_token(
        self, token: Mapping[str, Any], token_url: str | None = None
    ) -> str | None:
        """The API base URL a token response (from the endpoint at `token_url`) names, or None
        when it names none."""
        return None

    def upstream_quota(self, body: Any, headers: Mapping[str, str]) -> Quota | None:
        """The upstream's remaining quota as its answer reports it, or None."""
        return None
