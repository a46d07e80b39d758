"""Vault's KV v2 engine through `hvac`, and the one place that decides where secrets live.

With `VAULT_URL` and `VAULT_TOKEN` set, each integration's credentials are written to
`<mount>/data/adaptor/<tenant>/<integration>/credentials` and its OAuth tokens to
`.../oauth`; the database keeps only a reference, `vault:<path>@<version>`, naming the exact
KV version written, so a reader never sees a newer write that lost a compare-and-set in the
database. Without Vault, `SecretSealer` encrypts with the service's `SecretBox` as before.
hvac is synchronous: every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hvac
import requests

from adaptor.protocols.errors import safe_url
from adaptor.security.crypto import SecretBox

__all__ = ["REFERENCE_PREFIX", "SecretSealer", "VaultSecrets", "VaultUnavailable", "is_reference"]

REFERENCE_PREFIX = "vault:"


class VaultUnavailable(Exception):
    """Vault could not be reached, refused the token, or lost a secret; one line, no secret."""


def is_reference(stored: str) -> bool:
    return stored.startswith(REFERENCE_PREFIX)


class VaultSecrets:
    """One KV v2 mount (default `secret`) under a path prefix (default `adaptor`)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        mount: str = "secret",
        prefix: str = "adaptor",
        timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.mount = mount
        self.prefix = prefix.strip("/")
        self._client = hvac.Client(url=url, token=token, timeout=timeout_s)

    def __repr__(self) -> str:
        return f"VaultSecrets(url={safe_url(self.url)!r}, mount={self.mount!r})"

    def check(self) -> None:
        """Raise `VaultUnavailable` unless Vault answers and accepts the token."""
        try:
            authenticated = bool(self._client.is_authenticated())
        except (requests.RequestException, hvac.exceptions.VaultError) as exc:
            raise VaultUnavailable(
                f"VAULT_URL: Vault at {safe_url(self.url)} is unreachable ({type(exc).__name__})"
            ) from None
        if not authenticated:
            raise VaultUnavailable(f"VAULT_TOKEN: Vault at {safe_url(self.url)} refused the token")

    async def ping(self) -> bool:
        try:
            await asyncio.to_thread(self.check)
        except VaultUnavailable:
            return False
        return True

    def path(self, tenant_id: str, integration_id: str, kind: str) -> str:
        return f"{self.prefix}/{tenant_id}/{integration_id}/{kind}"

    async def write(self, path: str, document: Any) -> str:
        """Store `document` as a new version at `path`; its reference."""
        try:
            answer = await asyncio.to_thread(
                self._client.secrets.kv.v2.create_or_update_secret,
                path=path,
                secret={"document": document},
                mount_point=self.mount,
            )
        except (requests.RequestException, hvac.exceptions.VaultError) as exc:
            raise VaultUnavailable(
                f"writing a secret to Vault at {safe_url(self.url)} failed ({type(exc).__name__})"
            ) from None
        return f"{REFERENCE_PREFIX}{path}@{answer['data']['version']}"

    async def destroy(self, path: str) -> None:
        """Remove every version at `path` (the integration was deleted)."""
        try:
            await asyncio.to_thread(
                self._client.secrets.kv.v2.delete_metadata_and_all_versions,
                path=path,
                mount_point=self.mount,
            )
        except (requests.RequestException, hvac.exceptions.VaultError) as exc:
            raise VaultUnavailable(
                f"deleting a secret in Vault at {safe_url(self.url)} failed ({type(exc).__name__})"
            ) from None

    async def read(self, reference: str) -> Any:
        """The document a reference names."""
        path, _, version = reference.removeprefix(REFERENCE_PREFIX).rpartition("@")
        try:
            answer = await asyncio.to_thread(
                self._client.secrets.kv.v2.read_secret_version,
                path=path,
                version=int(version),
                mount_point=self.mount,
                raise_on_deleted_version=True,
            )
        except (requests.RequestException, hvac.exceptions.VaultError, ValueError) as exc:
            raise VaultUnavailable(
                f"reading a secret from Vault at {safe_url(self.url)} failed ({type(exc).__name__})"
            ) from None
        return answer["data"]["data"]["document"]


class SecretSealer:
    """Where secrets go: Vault when configured, else encrypted with the `SecretBox`."""

    def __init__(self, secret_box: SecretBox, vault: VaultSecrets | None = None) -> None:
        self.secret_box = secret_box
        self.vault = vault

    async def seal(self, document: Any, *, tenant_id: str, integration_id: str, kind: str) -> str:
        """What the database stores for `document`: a Vault reference or the ciphertext."""
        if self.vault is None:
            return self.secret_box.encrypt(document)
        return await self.vault.write(self.vault.path(tenant_id, integration_id, kind), document)

    async def unseal(self, stored: str) -> Any:
        if is_reference(stored):
            if self.vault is None:
                raise VaultUnavailable("a secret is stored in Vault but VAULT_URL is not set")
            return await self.vault.read(stored)
        return self.secret_box.decrypt(stored)
