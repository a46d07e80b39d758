"""Credentials and OAuth tokens in HashiCorp Vault (or OpenBao) instead of the database."""

from adaptor.vault.store import SecretSealer, VaultSecrets, VaultUnavailable, is_reference

__all__ = ["SecretSealer", "VaultSecrets", "VaultUnavailable", "is_reference"]
