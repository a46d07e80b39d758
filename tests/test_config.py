from __future__ import annotations

from pathlib import Path

import pytest

from adaptor.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("POSTGRES_URI", "REDIS_URL", "HTTP_PORT", "ENVIRONMENT", "ENABLE_MARKETPLACE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_stack() -> None:
    settings = load_settings()
    assert settings.http_port == 8004
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.redis_url is None
    assert settings.allow_private_networks is False


def test_postgres_uri_in_the_spec_form_selects_asyncpg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_URI", "postgresql://user@db.internal:5432/adaptor_db")
    assert load_settings().database_url == "postgresql+asyncpg://user@db.internal:5432/adaptor_db"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HTTP_PORT", "eighty", "HTTP_PORT: expects a whole number"),
        ("HTTP_PORT", "70000", "HTTP_PORT: expects a number of at most 65535"),
        ("ENABLE_MARKETPLACE", "maybe", "ENABLE_MARKETPLACE: expects true or false"),
        ("POSTGRES_URI", "mysql://x", "POSTGRES_URI: expects postgresql://user@host:5432/db"),
        ("REDIS_URL", "http://x", "REDIS_URL: expects redis://host:6379/0"),
        ("ENVIRONMENT", "staging", "ENVIRONMENT: expects one of 'development' or 'production'"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == expected
    assert "\n" not in str(info.value)


def test_file_roots_and_the_file_size_cap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FILE_ROOTS", raising=False)
    monkeypatch.delenv("MAX_FILE_BYTES", raising=False)
    assert load_settings().file_root_list == ()
    assert load_settings().max_file_bytes == 52_428_800
    monkeypatch.setenv("FILE_ROOTS", f"{tmp_path}/a:{tmp_path}/b/../c:")
    monkeypatch.setenv("MAX_FILE_BYTES", "1024")
    settings = load_settings()
    assert settings.file_root_list == (f"{tmp_path}/a", f"{tmp_path}/c")
    assert settings.max_file_bytes == 1024
    monkeypatch.setenv("MAX_FILE_BYTES", "0")
    with pytest.raises(ConfigError, match="MAX_FILE_BYTES: expects a number of at least 1"):
        load_settings()
