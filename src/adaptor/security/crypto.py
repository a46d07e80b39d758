"""Encryption of stored secrets with rotatable keys (Fernet: AES-128-CBC + HMAC-SHA256).

`ENCRYPTION_KEY` holds one or more Fernet keys separated by commas, newest first. Every key
decrypts; only the newest encrypts. `adaptor rotate-key` re-encrypts each stored secret with the
newest key, after which older keys can be dropped from the variable.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class EncryptionKeyError(Exception):
    """The configured key material is missing or malformed (the key itself is never shown)."""


class SecretBox:
    """Encrypts and decrypts JSON documents of secrets."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise EncryptionKeyError("ENCRYPTION_KEY: expects at least one Fernet key")
        fernets: list[Fernet] = []
        for index, key in enumerate(keys):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                raise EncryptionKeyError(
                    f"ENCRYPTION_KEY: key #{index + 1} is not a url-safe base64 32-byte Fernet key"
                ) from None
        self._multi = MultiFernet(fernets)
        self._fernets = fernets
        self.fingerprints = [fingerprint(key) for key in keys]
        """Short digests naming each key, newest first, for messages (never the key)."""

    @classmethod
    def from_setting(cls, value: str) -> SecretBox:
        return cls([part for part in value.split(",") if part.strip()])

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, document: object) -> str:
        return self._multi.encrypt(orjson.dumps(document)).decode()

    def decrypt(self, token: str) -> object:
        try:
            return orjson.loads(self._multi.decrypt(token.encode()))
        except InvalidToken:
            raise EncryptionKeyError(
                "a stored secret cannot be decrypted with any configured ENCRYPTION_KEY"
            ) from None

    def can_decrypt(self, token: str) -> bool:
        """Whether any configured key opens `token` (no JSON parsing)."""
        try:
            self._multi.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """Re-encrypt under the newest key (no-op in effect if already so)."""
        try:
            return self._multi.rotate(token.encode()).decode()
        except InvalidToken:
            raise EncryptionKeyError(
                "a stored secret cannot be decrypted with any configured ENCRYPTION_KEY"
            ) from None


def fingerprint(key: str) -> str:
    """The first 8 hex digits of the key's SHA-256: names a key in messages, reveals nothing."""
    return hashlib.sha256(key.strip().encode()).hexdigest()[:8]


LOCAL_KEY_FILE = "encryption.key"


def replace_local_key(data_dir: Path, key: str) -> Path:
    """Write `key` as the development key file, atomically and readable only by its owner."""
    path = data_dir / LOCAL_KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key.strip() + "\n")
    os.replace(temporary, path)
    return path


def local_key_file(data_dir: Path) -> tuple[str, bool]:
    """The development key kept in the data folder: (key, whether it was just created)."""
    path = data_dir / LOCAL_KEY_FILE
    if path.exists():
        return path.read_text().strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    key = SecretBox.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, True
