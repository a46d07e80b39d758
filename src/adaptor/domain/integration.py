"""Integration configuration: what a tenant stores to describe one external system."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adaptor.domain.urls import HttpUrlStr, UrlStr, url_problem

MASK = "********"
"""What every secret reads as. A write that sends it back keeps the stored value."""


class StrictModel(BaseModel):
    """Base for input models: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class IntegrationType(StrEnum):
    REST_API = "rest_api"
    GRAPHQL = "graphql"
    WEBHOOK = "webhook"
    DATABASE = "database"
    FILE_SYSTEM = "file_system"
    MESSAGE_QUEUE = "message_queue"
    CUSTOM = "custom"


HTTP_INTEGRATION_TYPES = frozenset(
    {IntegrationType.REST_API, IntegrationType.GRAPHQL, IntegrationType.WEBHOOK}
)
"""Types whose `base_url` is an http(s) URL; the others use their own schemes (postgresql://,
file:///, amqp://, ...)."""


class AuthType(StrEnum):
    NONE = "none"
    API_KEY = "api_key"
    BASIC_AUTH = "basic_auth"
    BEARER_TOKEN = "bearer_token"
    OAUTH2 = "oauth2"
    JWT = "jwt"
    CUSTOM = "custom"


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"

    @property
    def idempotent(self) -> bool:
        """Whether repeating the request is safe by HTTP semantics (RFC 9110 §9.2.2)."""
        return self not in (HttpMethod.POST, HttpMethod.PATCH)


# Credential keys that are configuration rather than secrets; every other key is secret.
NON_SECRET_CREDENTIALS = frozenset(
    {"username", "client_id", "claims", "algorithm", "ttl_seconds", "access_key_id"}
)

# Credentials each auth type needs before an integration can be saved.
_REQUIRED_CREDENTIALS: dict[AuthType, tuple[tuple[str, ...], ...]] = {
    AuthType.API_KEY: (("api_key",),),
    AuthType.BASIC_AUTH: (("username",), ("password",)),
    AuthType.BEARER_TOKEN: (("token",),),
    AuthType.OAUTH2: (("client_id",), ("client_secret",)),
    AuthType.JWT: (("private_key", "secret"),),
}


RetryErrorKind = Literal["timeout", "connection_error"]
_DEFAULT_RETRY_ERRORS: tuple[RetryErrorKind, ...] = ("timeout", "connection_error")


class RetryConfig(StrictModel):
    max_retries: int = Field(default=3, ge=0, le=10, strict=True)
    backoff_strategy: Literal["exponential", "linear", "fixed"] = "exponential"
    initial_delay_ms: int = Field(default=1000, ge=0, le=60_000, strict=True)
    max_delay_ms: int = Field(default=60_000, ge=0, le=600_000, strict=True)
    retry_on_status: list[Annotated[int, Field(ge=100, le=599, strict=True)]] = Field(
        default_factory=lambda: [408, 429, 500, 502, 503, 504]
    )
    retry_on_errors: list[RetryErrorKind] = Field(
        default_factory=lambda: list(_DEFAULT_RETRY_ERRORS)
    )

    @model_validator(mode="after")
    def _delays_ordered(self) -> RetryConfig:
        if self.max_delay_ms < self.initial_delay_ms:
            raise ValueError("max_delay_ms must be at least initial_delay_ms")
        return self


class RateLimitConfig(StrictModel):
    requests_per_minute: int | None = Field(default=None, ge=1, strict=True)
    requests_per_hour: int | None = Field(default=None, ge=1, strict=True)
    concurrent_requests: int | None = Field(default=None, ge=1, strict=True)
    burst_size: int | None = Field(default=None, ge=1, strict=True)


class CircuitBreakerConfig(StrictModel):
    """When an integration's circuit opens and how it recovers (shared by every replica)."""

    failure_threshold: int = Field(default=5, ge=1, le=1000, strict=True)
    recovery_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    half_open_max_probes: int = Field(default=1, ge=1, le=100, strict=True)


class CacheConfig(StrictModel):
    enabled: StrictBool = True
    ttl_seconds: int = Field(default=300, ge=0, le=86400, strict=True)
    cache_key_fields: list[str] = Field(default_factory=list)
    invalidate_on: list[str] = Field(default_factory=list)


class TransformRule(StrictModel):
    field: str = Field(min_length=1, description="Dot path of the value to transform.")
    transform: str = Field(min_length=1, description="Transform name, e.g. `uppercase`.")
    params: dict[str, Any] | None = None
    condition: str | None = Field(
        default=None, description="JMESPath; the rule applies only where it is truthy."
    )


class RequestMapping(StrictModel):
    """Targets (path/query/header names or body dot paths) → JMESPath over the input document."""

    path_params: dict[str, str] = Field(default_factory=dict)
    query_params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, str] = Field(default_factory=dict)
    transformations: list[TransformRule] = Field(default_factory=list)
    required: list[str] = Field(
        default_factory=list,
        description="Targets (e.g. `path_params.id`, `body.email`) that must map to a value.",
    )


class ResponseMapping(StrictModel):
    success_path: str | None = Field(default=None, description="JMESPath to a success flag.")
    data_path: str | None = Field(default=None, description="JMESPath to the main data.")
    error_path: str | None = Field(default=None, description="JMESPath to an error message.")
    field_mappings: dict[str, str] = Field(default_factory=dict)
    transformations: list[TransformRule] = Field(default_factory=list)
    default_values: dict[str, Any] = Field(default_factory=dict)


class PaginationConfig(StrictModel):
    """How one execution follows an endpoint's pages; items from `data_path` are concatenated.

    `cursor`: the next cursor is at `cursor_path` (JMESPath into the body) and goes into the
    query parameter or body field `cursor_param`, or is itself the next URL (`cursor_in: url`,
    e.g. Salesforce's `nextRecordsUrl`). `link_header`: the `Link: <...>; rel="next"` URL.
    `offset` / `page`: `offset_param` / `page_param` advanced per page, with `page_size` sent
    in `page_size_param`. A falsy `has_more_path`, a repeated cursor, an empty page or
    `max_pages` stops.
    """

    type: Literal["cursor", "link_header", "offset", "page"]
    max_pages: int = Field(default=10, ge=1, le=100)
    cursor_path: str | None = Field(default=None, description="JMESPath to the next cursor.")
    cursor_param: str | None = Field(
        default=None, description="Query parameter (or body dot path) the cursor goes into."
    )
    cursor_in: Literal["query", "body", "url"] = "query"
    has_more_path: str | None = Field(
        default=None, description="JMESPath to a flag; a falsy value means the last page."
    )
    offset_param: str | None = None
    page_param: str | None = None
    start_page: int = Field(default=1, ge=0)
    page_size: int | None = Field(default=None, ge=1, le=10_000)
    page_size_param: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> PaginationConfig:
        missing: list[str] = []
        if self.type == "cursor":
            if not self.cursor_path:
                missing.append("cursor_path")
            if self.cursor_in != "url" and not self.cursor_param:
                missing.append("cursor_param")
        elif self.type == "offset" and not self.offset_param:
            missing.append("offset_param")
        elif self.type == "page" and not self.page_param:
            missing.append("page_param")
        if self.page_size is not None and not self.page_size_param:
            missing.append("page_size_param")
        if missing:
            raise ValueError(f"pagination type {self.type} needs {', '.join(missing)}")
        return self


class EndpointConfig(StrictModel):
    name: str = Field(
        default="",
        max_length=255,
        description="The endpoint's key in `endpoints`: filled in from it, and refused if sent "
        "with another value.",
        json_schema_extra={"readOnly": True},
    )
    path: str = Field(default="", max_length=2048, description="URL path with `{placeholders}`.")
    method: HttpMethod = HttpMethod.GET
    description: str | None = None
    request_mapping: RequestMapping = Field(default_factory=RequestMapping)
    response_mapping: ResponseMapping = Field(default_factory=ResponseMapping)
    validation_schema: dict[str, Any] | None = None
    cache_config: CacheConfig | None = None
    mock_response: Any | None = None
    query: str | None = Field(
        default=None, description="GraphQL document or SQL with named parameters."
    )
    operation_name: str | None = Field(
        default=None,
        max_length=255,
        description="GraphQL: the operation of `query` to run when it holds several.",
    )
    summary_template: str | None = Field(
        default=None,
        description="Sandboxed Jinja template for `metadata.summary` (sees `data`, `input`).",
    )
    fallback_response: Any | None = Field(
        default=None, description="Data served while the integration's circuit is open."
    )
    retry_non_idempotent: StrictBool = Field(
        default=False, description="Allow retries of POST/PATCH (the upstream must dedupe)."
    )
    timeout_ms: int | None = Field(default=None, ge=100, le=60000, strict=True)
    max_rows: int | None = Field(
        default=None, ge=1, le=100_000, description="Database: rows answered at most (1000)."
    )
    format: Literal["auto", "csv", "json", "ndjson", "text", "binary"] | None = Field(
        default=None, description="File system: how a file is parsed and written (auto)."
    )
    pagination: PaginationConfig | None = Field(
        default=None, description="Follow the upstream's pages within one execution."
    )
    idempotency_key_header: str | None = Field(
        default=None,
        description="Header sent on every POST with a key derived from the execution's "
        "request id (the same on retries), e.g. Stripe's `Idempotency-Key`.",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _method_upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class WebhookConfig(StrictModel):
    signature_scheme: Literal["hmac_sha256", "stripe", "github", "shopify", "standard"]
    secret: str = Field(
        min_length=1, description="The signing secret; a `whsec_<base64>` key for `standard`."
    )
    tolerance_seconds: int = Field(default=300, ge=1, le=86400, strict=True)
    event_id_path: str = "id"
    signature_header: str | None = Field(
        default=None, description="Header carrying the signature for `hmac_sha256`."
    )

    @field_validator("secret")
    @classmethod
    def _standard_key(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("signature_scheme") == "standard" and value != MASK:
            key = value.removeprefix("whsec_")
            try:
                decoded = base64.b64decode(key + "=" * (-len(key) % 4), validate=True)
            except binascii.Error:
                decoded = b""
            if not value.startswith("whsec_") or not decoded:
                raise ValueError("must be a `whsec_` key followed by base64 for scheme standard")
        return value


class AuthConfig(StrictModel):
    type: AuthType = AuthType.NONE
    credentials: dict[str, Any] = Field(default_factory=dict)
    api_key_header: str | None = None
    api_key_param: str | None = None
    oauth2_flow: (
        Literal["authorization_code", "client_credentials", "refresh_token", "jwt_bearer"] | None
    ) = None
    token_url: HttpUrlStr | None = None
    authorization_url: HttpUrlStr | None = None
    scopes: list[str] = Field(default_factory=list)
    custom_handler: str | None = None

    def missing_credentials(self) -> list[str]:
        """Credential names this auth type needs and does not have (for located errors)."""
        missing: list[str] = []
        required = _REQUIRED_CREDENTIALS.get(self.type, ())
        if self.type is AuthType.OAUTH2 and self.oauth2_flow == "jwt_bearer":
            required = (("client_id",), ("private_key",))  # the assertion replaces the secret
        for alternatives in required:
            if not any(self.credentials.get(name) not in (None, "") for name in alternatives):
                missing.append(" or ".join(alternatives))
        return missing


class IntegrationSpec(StrictModel):
    """What a caller sends to create or replace an integration (tenant comes from the header)."""

    integration_id: str | None = Field(default=None, description="UUID; generated if omitted.")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=4000)
    type: IntegrationType
    category: str = Field(min_length=1, max_length=64)
    base_url: UrlStr | None = Field(
        default=None,
        description="Absolute URL without credentials: http(s) for rest_api, graphql and webhook; "
        "the protocol's own scheme for the other types (postgresql://, file:///, amqp://, ...).",
    )
    auth_config: AuthConfig = Field(default_factory=AuthConfig)
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_ms: int = Field(default=5000, ge=100, le=60000, strict=True)
    retry_config: RetryConfig = Field(default_factory=RetryConfig)
    rate_limit: RateLimitConfig | None = None
    circuit_breaker: CircuitBreakerConfig = Field(default_factory=CircuitBreakerConfig)
    ssl_verify: StrictBool = True
    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    enabled: StrictBool = True
    test_endpoint: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    webhook: WebhookConfig | None = None
    custom_adapter: str | None = Field(
        default=None,
        max_length=255,
        description="For type `custom`: the adapter's name, an entry point in the "
        "`adaptor.integrations` group.",
    )

    @field_validator("integration_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("must be a UUID") from None

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if len(value) > 2048:
            raise ValueError("must be at most 2048 characters")
        if info.data.get("type") in HTTP_INTEGRATION_TYPES:
            problem = url_problem(value)
            if problem:
                raise ValueError(problem)
        stripped = value.rstrip("/")
        # The stored form must validate again on every read: keep the slash it would need.
        return stripped if url_problem(stripped, schemes=None) is None else value

    @model_validator(mode="after")
    def _consistent(self) -> IntegrationSpec:
        for key, endpoint in self.endpoints.items():
            if not endpoint.name:
                endpoint.name = key
            elif endpoint.name != key:
                raise ValueError(
                    f"endpoints.{key}.name is {endpoint.name!r} but must equal its key {key!r}"
                )
        if self.test_endpoint is not None and self.test_endpoint not in self.endpoints:
            raise ValueError(f"test_endpoint {self.test_endpoint!r} is not one of the endpoints")
        return self


class OAuthTokenInfo(BaseModel):
    """What a read shows of an OAuth2 connection's tokens: never the tokens themselves."""

    expires_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)
    has_refresh_token: bool = False
    version: int = 0


class IntegrationConfig(IntegrationSpec):
    """A stored integration as read back: secrets masked, with its version for If-Match."""

    model_config = ConfigDict(extra="forbid")

    integration_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    tenant_id: str
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    auth_status: Literal["ok", "needs_authorization", "needs_reauthorization"] | None = Field(
        default=None,
        description="For oauth2 integrations (single reads): whether the connection can be "
        "used or a person must authorize it (again).",
    )
    oauth2_token: OAuthTokenInfo | None = Field(
        default=None, description="For connected oauth2 integrations: expiry and scopes."
    )
    stored_problems: list[dict[str, Any]] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Only on a stored configuration that no longer validates (saved before a "
        "stricter check): each `{loc, msg}` left out of this read. Correct it with PUT or PATCH, "
        "or delete the integration; it cannot execute meanwhile.",
    )


class ValidationRule(StrictModel):
    field: str
    type: Literal["required", "format", "range", "enum", "pattern"]
    value: Any = None
    error_message: str


class TestCase(StrictModel):
    __test__ = False  # not a pytest class

    name: str
    description: str | None = None
    endpoint: str
    input_data: dict[str, Any] = Field(default_factory=dict)
    expected_output: dict[str, Any] = Field(default_factory=dict)
    timeout_ms: int = Field(default=5000, ge=100, le=60000)
