"""Checks an integration must pass before it is saved, beyond its field types.

Every problem is collected with its location, so one 422 names all of them.
"""

from __future__ import annotations

import jmespath
from jmespath.exceptions import JMESPathError

from adaptor.auth_handlers import CustomHandlerRegistry
from adaptor.auth_handlers.jwt_bearer import jwt_key_problem
from adaptor.auth_handlers.oauth2 import CLIENT_AUTH_METHODS
from adaptor.domain import (
    HTTP_INTEGRATION_TYPES,
    MASK,
    AuthConfig,
    AuthType,
    IntegrationSpec,
    IntegrationType,
    url_problem,
)
from adaptor.errors import Loc
from adaptor.mapping import MappingConfigError, MappingEngine
from adaptor.protocols.registry import AdapterRegistry

METADATA_URL_FIELDS = ("endpoint_url",)
"""`metadata` entries that hold a URL (S3-compatible endpoints, ...), checked like every URL."""


def validate_spec(
    spec: IntegrationSpec, engine: MappingEngine, adapters: AdapterRegistry
) -> list[tuple[Loc, str]]:
    """Every problem with `spec`: auth, the adapter's own checks for its type, mappings."""
    problems: list[tuple[Loc, str]] = []
    auth = spec.auth_config
    # A disabled integration never calls out, so its credentials may come later (an import
    # stores the auth its description names, and the tenant enables it with the secrets).
    for name in auth.missing_credentials() if spec.enabled else ():
        first = name.split(" or ")[0]
        problems.append(
            (("auth_config", "credentials", first), f"{name} is required for auth type {auth.type}")
        )
    if auth.type is AuthType.OAUTH2:
        if auth.oauth2_flow is None:
            problems.append((("auth_config", "oauth2_flow"), "is required for auth type oauth2"))
        if not auth.token_url:
            problems.append((("auth_config", "token_url"), "is required for auth type oauth2"))
        if auth.oauth2_flow == "authorization_code" and not auth.authorization_url:
            problems.append(
                (
                    ("auth_config", "authorization_url"),
                    "is required for the authorization_code flow",
                )
            )
    if auth.type is AuthType.CUSTOM and not auth.custom_handler:
        problems.append((("auth_config", "custom_handler"), "is required for auth type custom"))
    problems.extend(auth_problems(spec))
    if spec.custom_adapter is not None and spec.type is not IntegrationType.CUSTOM:
        problems.append((("custom_adapter",), "is only for type custom"))
    problems.extend(adapters.validate(spec))
    for key in METADATA_URL_FIELDS:
        value = spec.metadata.get(key)
        if value is None:
            continue
        problem = url_problem(value) if isinstance(value, str) else "must be a URL string"
        if problem:
            problems.append((("metadata", key), problem))
    for name, endpoint in spec.endpoints.items():
        if spec.type in HTTP_INTEGRATION_TYPES and endpoint.path.lower().startswith(
            ("http://", "https://")
        ):
            problem = url_problem(endpoint.path.replace("{", "").replace("}", ""))
            if problem:
                problems.append((("endpoints", name, "path"), problem))
        try:
            engine.compile_endpoint(endpoint)
        except MappingConfigError as exc:
            problems.extend((("endpoints", name, *loc), msg) for loc, msg in exc.problems)
        pagination = endpoint.pagination
        for attribute in ("cursor_path", "has_more_path"):
            source = getattr(pagination, attribute, None)
            if source is None:
                continue
            try:
                engine.compile_expression(source)
            except MappingConfigError as exc:
                problems.extend(
                    (("endpoints", name, "pagination", attribute), msg) for _, msg in exc.problems
                )
    return problems


def auth_problems(spec: IntegrationSpec) -> list[tuple[Loc, str]]:
    """What `jwt`, `custom` and `oauth2` need beyond their field types: a key that can sign, a
    registered handler, a known client authentication method, a JMESPath `expired_when`."""
    auth = spec.auth_config
    problems: list[tuple[Loc, str]] = []
    if auth.type is AuthType.JWT and not auth.missing_credentials():
        problems.extend(_key_problems(auth))
    if auth.type is AuthType.CUSTOM and auth.custom_handler:
        known = CustomHandlerRegistry().names()
        if auth.custom_handler not in known:
            problems.append(
                (
                    ("auth_config", "custom_handler"),
                    f"{auth.custom_handler!r} is not a registered handler "
                    f"(known: {', '.join(known)})",
                )
            )
    if auth.type is AuthType.OAUTH2:
        if auth.oauth2_flow == "jwt_bearer" and not auth.missing_credentials():
            problems.extend(_key_problems(auth, default="RS256"))
        options = spec.metadata.get("oauth2")
        if options is not None and not isinstance(options, dict):
            problems.append((("metadata", "oauth2"), "must be an object"))
        elif isinstance(options, dict):
            method = options.get("client_auth_method")
            if method is not None and method not in CLIENT_AUTH_METHODS:
                problems.append(
                    (
                        ("metadata", "oauth2", "client_auth_method"),
                        f"must be one of {', '.join(CLIENT_AUTH_METHODS)}",
                    )
                )
            expired_when = options.get("expired_when")
            if expired_when is not None:
                try:
                    jmespath.compile(str(expired_when))
                except JMESPathError as exc:
                    problems.append(
                        (
                            ("metadata", "oauth2", "expired_when"),
                            f"is not a JMESPath expression: {exc}",
                        )
                    )
            for name in ("refresh_margin_s", "refresh_fraction"):
                value = options.get(name)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float) or value < 0
                ):
                    problems.append(
                        (("metadata", "oauth2", name), "must be a number of at least 0")
                    )
    return problems


def _key_problems(auth: AuthConfig, default: str | None = None) -> list[tuple[Loc, str]]:
    credentials = dict(auth.credentials)
    if default is not None and not credentials.get("algorithm"):
        credentials["algorithm"] = default
    if any(value == MASK for value in credentials.values()):
        return []  # checked when the secret was first saved
    problem = jwt_key_problem(auth.model_copy(update={"credentials": credentials}))
    if problem is None:
        return []
    field, message = problem
    return [(("auth_config", "credentials", field), message)]
