"""Salesforce: the REST API lives on the org's own host, named by the token response."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adaptor.connectors.base import Connector

SALESFORCE_HOSTS = (".salesforce.com", ".force.com", ".salesforce.mil", ".cloudforce.com")
"""Domains an `instance_url` may be on; anything else is refused."""


class SalesforceConnector(Connector):
    """`instance_url` from the OAuth2 token response (web-server and JWT bearer flows both
    return it) becomes the integration's base URL; it must be an https URL on Salesforce's
    domains, or the origin of the token endpoint that answered (a My Domain login host, or a
    test server), so a tampered token response cannot redirect the org's credentials
    elsewhere."""

    item_id = "salesforce"

    def __init__(self, allowed_hosts: Iterable[str] = SALESFORCE_HOSTS) -> None:
        self.allowed_hosts = tuple(allowed_hosts)

    def base_url_from_token(
        self, token: Mapping[str, Any], token_url: str | None = None
    ) -> str | None:
        instance_url = token.get("instance_url")
        if not isinstance(instance_url, str):
            return None
        parts = urlsplit(instance_url)
        host = (parts.hostname or "").lower()
        issuer = urlsplit(token_url) if token_url else None
        same_origin = issuer is not None and (issuer.scheme, issuer.netloc.lower()) == (
            parts.scheme,
            parts.netloc.lower(),
        )
        exact = host in self.allowed_hosts or same_origin  # a host named as itself
        under = any(s.startswith(".") and host.endswith(s) for s in self.allowed_hosts)
        if not (exact or under) or (parts.scheme != "https" and not exact):
            return None
        if parts.path.strip("/") or parts.query:
            return None
        return f"{parts.scheme}://{parts.netloc}"


class SalesforceJWTConnector(SalesforceConnector):
    """The JWT bearer variant: the same `instance_url` rule; its template is checked with a
    throwaway RSA key, since a private key is what the assertion is signed with."""

    item_id = "salesforce-jwt"

    def sample_config(self) -> dict[str, Any]:
        return {"private_key": _sample_private_key()}


@functools.cache
def _sample_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
