"""Checks an integration must pass before it is saved, beyond its field types.

Every problem is collected with its location, so one 422 names all of them.
"""

from __future__ import annotations

from adaptor.domain import AuthType, IntegrationSpec
from adaptor.errors import Loc
from adaptor.mapping import MappingConfigError, MappingEngine
from adaptor.protocols.registry import AdapterRegistry


def validate_spec(
    spec: IntegrationSpec, engine: MappingEngine, adapters: AdapterRegistry
) -> list[tuple[Loc, str]]:
    """Every problem with `spec`: auth, the adapter's own checks for its type, mappings."""
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
    problems.extend(adapters.validate(spec))
    for name, endpoint in spec.endpoints.items():
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
