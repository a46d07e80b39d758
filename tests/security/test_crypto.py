from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from adaptor.security.crypto import EncryptionKeyError, SecretBox, local_key_file


def test_round_trip_keeps_the_document() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    token = box.encrypt([["auth_config", "credentials", "api_key"], "sk_123"])
    assert "sk_123" not in token
    assert box.decrypt(token) == [["auth_config", "credentials", "api_key"], "sk_123"]


def test_older_keys_still_decrypt_and_rotation_moves_to_newest() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox([old]).encrypt({"a": 1})
    both = SecretBox.from_setting(f"{new},{old}")
    assert both.decrypt(token) == {"a": 1}
    rotated = both.rotate(token)
    assert SecretBox([new]).decrypt(rotated) == {"a": 1}
    with pytest.raises(EncryptionKeyError):
        SecretBox([old]).decrypt(rotated)


def test_malformed_key_is_named_without_showing_it() -> None:
    with pytest.raises(EncryptionKeyError, match="key #2") as info:
        SecretBox.from_setting(f"{Fernet.generate_key().decode()},not-a-key-value")
    assert "not-a-key-value" not in str(info.value)


def test_wrong_key_gives_a_clear_error() -> None:
    token = SecretBox([Fernet.generate_key().decode()]).encrypt("x")
    with pytest.raises(EncryptionKeyError, match="cannot be decrypted"):
        SecretBox([Fernet.generate_key().decode()]).decrypt(token)


def test_local_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    key, created = local_key_file(tmp_path)
    again, created_again = local_key_file(tmp_path)
    assert created
    assert not created_again
    assert key == again
    assert (tmp_path / "encryption.key").stat().st_mode & 0o077 == 0
