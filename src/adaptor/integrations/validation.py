"""Checks an integration must pass before it is saved, beyond its field types.

Every problem is collected with its location, so one 422 names all of them.
"""

from __future__ import annotations

from adaptor.domain import (
    HTTP_INTEGRATION_TYPES,
    AuthType,
    IntegrationSpec,
    IntegrationType,
    url_problem,
)
from adaptor.errors import Loc
from adaptor.mapping import MappingConfigError, MappingEngine

HTTP_TYPES = HTTP_INTEGRATION_TYPES
METADATA_URL_FIELDS = ("endpoint_url",)
"""`metadata` entries that hold a URL (S3-compatible endpoints, ...), checked like every URL."""


def validate_spec(spec: IntegrationSpec, engine: MappingEngine) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    auth = spec.auth_config
    for name in auth.missing_credentials():
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
    if spec.type in HTTP_TYPES and spec.base_url is None:
        relative = [
            n for n, e in spec.endpoints.items() if not e.path.startswith(("http://", "https://"))
        ]
        if relative:
            problems.append(
                (("base_url",), f"is required for type {spec.type} with relative endpoint paths")
            )
    for key in METADATA_URL_FIELDS:
        value = spec.metadata.get(key)
        if value is None:
            continue
        problem = url_problem(value) if isinstance(value, str) else "must be a URL string"
        if problem:
            problems.append((("metadata", key), problem))
    for name, endpoint in spec.endpoints.items():
        if spec.type in HTTP_TYPES and endpoint.path.lower().startswith(("http://", "https://")):
            problem = url_problem(endpoint.path.replace("{", "").replace("}", ""))
            if problem:
                problems.append((("endpoints", name, "path"), problem))
        if spec.type is IntegrationType.GRAPHQL and not endpoint.query:
            problems.append((("endpoints", name, "query"), "a GraphQL endpoint needs its document"))
        try:
            engine.compile_endpoint(endpoint)
        except MappingConfigError as exc:
            problems.extend((("endpoints", name, *loc), msg) for loc, msg in exc.problems)
    return problems
