"""Salesforce: the REST API lives on the org's own host, named by the token response."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from adaptor.connectors.base import Connector, TokenResponse

SALESFORCE_HOSTS = (".salesforce.com", ".force.com", ".salesforce.mil", ".cloudforce.com")
"""Domains an `instance_url` may be on; anything else is refused."""


class SalesforceConnector(Connector):
    """`instance_url` from the OAuth2 token response (web-server and JWT bearer flows both
    return it) becomes the integration's base URL; it must be an https URL on Salesforce's
    domains, so a tampered token response cannot redirect the org's credentials elsewhere."""

    item_id = "salesforce"

    def __init__(self, allowed_hosts: Iterable[str] = SALESFORCE_HOSTS) -> None:
        self.allowed_hosts = tuple(allowed_hosts)

    def base_url_from_token(self, token: TokenResponse) -> str | None:
        instance_url = token.get("instance_url")
        if not isinstance(instance_url, str):
            return None
        parts = urlsplit(instance_url)
        host = (parts.hostname or "").lower()
        exact = host in self.allowed_hosts  # a host listed as itself (a test server)
        under = any(s.startswith(".") and host.endswith(s) for s in self.allowed_hosts)
        if not (exact or under) or (parts.scheme != "https" and not exact):
            return None
        if parts.path.strip("/") or parts.query:
            return None
        return f"{parts.scheme}://{parts.netloc}"
