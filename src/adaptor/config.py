"""Settings from the environment, with the specification's variable names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_EXPECTS = {
    "int_parsing": "a whole number",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "greater_than_equal": "a number of at least {ge}",
    "less_than_equal": "a number of at most {le}",
    "literal_error": "one of {expected}",
}


MIN_ADMIN_KEY_LENGTH = 32
"""Production refuses a shorter ADMIN_API_KEY."""


def default_data_dir() -> Path:
    """`.adaptor` in the project folder when running from a checkout (`./dev`, an editable
    install), else the user's data directory (`$XDG_DATA_HOME/adaptor-service`, by default
    `~/.local/share/adaptor-service`): never relative to the working directory."""
    project = Path(__file__).resolve().parents[2]
    if (project / "pyproject.toml").is_file() and (project / "src" / "adaptor").is_dir():
        return project / ".adaptor"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "adaptor-service"


class ConfigError(Exception):
    """A bad environment variable: the message is one line naming it and what it expects."""


class Settings(BaseSettings):
    """Every knob of the service. Unset database/cache URLs select the embedded defaults."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    service_name: str = Field(default="adaptor-service", alias="SERVICE_NAME")
    environment: Literal["development", "production"] = Field(
        default="development", alias="ENVIRONMENT"
    )
    http_host: str = Field(default="127.0.0.1", alias="HTTP_HOST")
    http_port: int = Field(default=8004, ge=1, le=65535, alias="HTTP_PORT")
    postgres_uri: str | None = Field(default=None, alias="POSTGRES_URI")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    data_dir: Path = Field(default_factory=lambda: default_data_dir(), alias="DATA_DIR")
    encryption_key: str | None = Field(default=None, alias="ENCRYPTION_KEY", repr=False)
    vault_url: str | None = Field(default=None, alias="VAULT_URL")
    vault_token: str | None = Field(default=None, alias="VAULT_TOKEN", repr=False)
    vault_mount: str = Field(default="secret", alias="VAULT_MOUNT")
    public_base_url: str | None = Field(
        default=None,
        alias="PUBLIC_BASE_URL",
        description="Where browsers reach this service (OAuth callbacks); default "
        "http://127.0.0.1:HTTP_PORT.",
    )
    admin_api_key: str | None = Field(default=None, alias="ADMIN_API_KEY", repr=False)
    max_concurrent_integrations: int = Field(
        default=50, ge=1, le=10_000, alias="MAX_CONCURRENT_INTEGRATIONS"
    )
    default_timeout_ms: int = Field(default=5000, ge=100, le=60_000, alias="DEFAULT_TIMEOUT_MS")
    default_execution_budget_ms: int = Field(
        default=15_000, ge=100, le=60_000, alias="DEFAULT_EXECUTION_BUDGET_MS"
    )
    connection_pool_size: int = Field(default=20, ge=1, le=1000, alias="CONNECTION_POOL_SIZE")
    enable_marketplace: bool = Field(default=True, alias="ENABLE_MARKETPLACE")
    enable_test_mode: bool = Field(default=True, alias="ENABLE_TEST_MODE")
    enable_response_caching: bool = Field(default=True, alias="ENABLE_RESPONSE_CACHING")
    allow_private_networks: bool = Field(default=False, alias="ALLOW_PRIVATE_NETWORKS")
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=104_857_600, alias="MAX_REQUEST_BODY_BYTES"
    )
    max_webhook_bytes: int = Field(
        default=1_048_576, ge=1024, le=104_857_600, alias="MAX_WEBHOOK_BYTES"
    )
    file_roots: str = Field(default="", alias="FILE_ROOTS")
    """Colon-separated directories `file://` integrations may use (none by default)."""
    max_file_bytes: int = Field(default=52_428_800, ge=1, alias="MAX_FILE_BYTES")
    max_import_bytes: int = Field(
        default=16_777_216, ge=1024, le=268_435_456, alias="MAX_IMPORT_BYTES"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", alias="LOG_LEVEL"
    )
    events_url: str | None = Field(default=None, alias="EVENTS_URL")
    events_retention_hours: int = Field(default=168, ge=1, le=8760, alias="EVENTS_RETENTION_HOURS")
    shutdown_grace_seconds: float = Field(
        default=20.0, ge=0, le=600, alias="SHUTDOWN_GRACE_SECONDS"
    )
    shutdown_delay_seconds: float = Field(default=2.0, ge=0, le=600, alias="SHUTDOWN_DELAY_SECONDS")
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )

    @field_validator("postgres_uri")
    @classmethod
    def _postgres_form(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
            raise ValueError("expects postgresql://user@host:5432/db")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_form(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expects redis://host:6379/0")
        return value

    @field_validator("events_url")
    @classmethod
    def _events_form(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        from adaptor.events.sinks import parse_events_url

        parse_events_url(value)  # raises EventsUrlError (a ValueError) naming the forms
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Resolved once, so that every command, from any folder, uses the same data.
        return value.expanduser().resolve()

    @field_validator("admin_api_key")
    @classmethod
    def _admin_key_strength(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if info.data.get("environment") == "production" and len(value) < MIN_ADMIN_KEY_LENGTH:
            raise ValueError(
                f"at least {MIN_ADMIN_KEY_LENGTH} characters in production (it has "
                f"{len(value)}; `adaptor generate-key` prints a suitable random value)"
            )
        return value

    @field_validator("environment", "log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("public_base_url")
    @classmethod
    def _public_url_form(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("expects http(s)://host[:port][/prefix]")
        return value.rstrip("/")

    @property
    def callback_base_url(self) -> str:
        """The base URL OAuth providers redirect browsers back to."""
        return self.public_base_url or f"http://127.0.0.1:{self.http_port}"

    @property
    def file_root_list(self) -> tuple[str, ...]:
        """FILE_ROOTS as absolute directories."""
        return tuple(str(Path(root).resolve()) for root in self.file_roots.split(":") if root)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def database_url(self) -> str:
        """SQLAlchemy async URL: asyncpg for PostgreSQL, aiosqlite for the embedded file."""
        if self.postgres_uri is None:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'adaptor.db').resolve()}"
        _scheme, rest = self.postgres_uri.split("://", 1)
        return f"postgresql+asyncpg://{rest}"


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation failure into one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        variable = _alias_of(field)
        template = _EXPECTS.get(first["type"])
        expected = template.format(**(first.get("ctx") or {})) if template else first["msg"]
        expected = expected.removeprefix("Value error, ")
        raise ConfigError(f"{variable}: expects {expected.removeprefix('expects ')}") from None


def _alias_of(name: str) -> str:
    for field_name, info in Settings.model_fields.items():
        if name in (field_name, info.alias):
            return info.alias or field_name.upper()
    return name.upper()
