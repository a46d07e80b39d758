"""Templates as data: loading the package's template files, checking them, and turning a
template plus wizard answers into an integration document.

A template is checked by the same models and the same validation as a tenant's own
integration (`IntegrationSpec`, `validate_spec`), on a document built with sample answers,
plus the template rules: every wizard field is used and every `{{placeholder}}` has a field,
each credential field is a credential of the auth type and is secret when the type keeps it
secret, the auth type's required credentials are asked for, every endpoint mapping compiles,
the test endpoint exists, validation rules are well formed and name wizard fields, and each
endpoint's sample request and response pass its mappings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from adaptor.connectors import connector_factory
from adaptor.domain import AuthType, IntegrationSpec
from adaptor.domain.integration import NON_SECRET_CREDENTIALS
from adaptor.domain.marketplace import MarketplaceItem, MarketplaceItemSpec
from adaptor.errors import Loc
from adaptor.integrations.validation import validate_spec
from adaptor.mapping import MappingConfigError, MappingEngine, MappingError
from adaptor.marketplace.wizard import WizardAnswers, rule_problems
from adaptor.protocols.registry import AdapterRegistry

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

CREDENTIALS_BY_AUTH: dict[AuthType, frozenset[str]] = {
    AuthType.API_KEY: frozenset({"api_key"}),
    AuthType.BASIC_AUTH: frozenset({"username", "password"}),
    AuthType.BEARER_TOKEN: frozenset({"token"}),
    AuthType.OAUTH2: frozenset({"client_id", "client_secret", "refresh_token", "private_key"}),
    AuthType.JWT: frozenset({"private_key", "secret", "algorithm", "claims", "ttl_seconds"}),
}
"""The credentials each auth type reads (the contract's "Configuration shapes")."""

_SAMPLE_BY_TYPE: dict[str, Any] = {"string": "sample", "integer": 1, "number": 1, "boolean": True}


class TemplateError(Exception):
    """A template that fails validation; `problems` are located inside the template."""

    def __init__(self, source: str, problems: list[tuple[Loc, str]]) -> None:
        self.source = source
        self.problems = problems
        listed = "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems)
        super().__init__(f"{source}: {listed}")


def substitute(value: Any, config: Mapping[str, Any]) -> Any:
    """`value` with every `{{name}}` in its strings replaced by the config answer (a string
    that is only a placeholder takes the answer's own type; an unanswered optional field is
    null, or empty inside a longer string)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None:
            return config.get(whole.group(1))  # keeps a number a number; unanswered: null
        return _PLACEHOLDER.sub(lambda m: str(config.get(m.group(1), "")), value)
    if isinstance(value, dict):
        return {k: substitute(v, config) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, config) for v in value]
    return value


def placeholders(value: Any) -> Iterator[tuple[Loc, str]]:
    """Every `{{name}}` in `value`'s strings, with where it is."""
    if isinstance(value, str):
        for match in _PLACEHOLDER.finditer(value):
            yield (), match.group(1)
    elif isinstance(value, dict):
        for key, child in value.items():
            for loc, name in placeholders(child):
                yield (key, *loc), name
    elif isinstance(value, list):
        for index, child in enumerate(value):
            for loc, name in placeholders(child):
                yield (index, *loc), name


def build_document(
    item: MarketplaceItemSpec,
    answers: WizardAnswers,
    *,
    name: str | None = None,
    sandbox: bool = False,
    version: int = 1,
) -> dict[str, Any]:
    """The integration document a template and the wizard's answers make (not yet checked)."""
    template = item.template
    document = substitute(copy.deepcopy(template.base_config), answers.config)
    document.setdefault("type", str(item.type))
    document.setdefault("category", item.category)
    document["name"] = name or document.get("name") or item.name
    document.setdefault("description", item.description)
    auth = document.setdefault("auth_config", {"type": "none"})
    auth["credentials"] = {**auth.get("credentials", {}), **answers.credentials}
    document["endpoints"] = {
        endpoint.name: {
            **endpoint.endpoint_config(),
            "path": substitute(endpoint.path, answers.config),
        }
        for endpoint in template.endpoints
    }
    if sandbox and template.sandbox_base_url:
        document["base_url"] = substitute(template.sandbox_base_url, answers.config)
    for key, value in answers.overrides.items():
        if key in ("metadata", "headers") and isinstance(value, dict):
            document[key] = {**document.get(key, {}), **value}
        else:
            document[key] = value
    metadata = document.setdefault("metadata", {})
    metadata["marketplace"] = {"item_id": item.item_id, "version": version, "test_mode": sandbox}
    return connector_factory(item.item_id).prepare(document, answers.config)


def sample_answers(item: MarketplaceItemSpec) -> WizardAnswers:
    """Answers good enough to build the template for validation: defaults, else samples."""
    answers = WizardAnswers()
    for field in item.template.fields():
        value = field.default if field.default is not None else _SAMPLE_BY_TYPE[field.type]
        if field.target == "credentials":
            answers.credentials[field.name] = value
        else:
            answers.config[field.name] = value
    examples = connector_factory(item.item_id).sample_config()
    answers.config.update({k: v for k, v in examples.items() if k in answers.config})
    answers.credentials.update({k: v for k, v in examples.items() if k in answers.credentials})
    return answers


def template_problems(
    item: MarketplaceItemSpec,
    engine: MappingEngine,
    adapters: AdapterRegistry,
) -> list[tuple[Loc, str]]:
    """Everything wrong with a template: integration validation plus the template rules."""
    template = item.template
    problems: list[tuple[Loc, str]] = []
    fields = {f.name: f for f in template.fields()}
    seen: set[str] = set()
    for step_index, step in enumerate(template.wizard):
        for field_index, field in enumerate(step.fields):
            if field.name in seen:
                problems.append(
                    (
                        ("template", "wizard", step_index, "fields", field_index, "name"),
                        f"{field.name!r} appears twice in the wizard",
                    )
                )
            seen.add(field.name)

    names = [e.name for e in template.endpoints]
    for index, name in enumerate(names):
        if names.index(name) != index:
            problems.append((("template", "endpoints", index, "name"), f"{name!r} is repeated"))

    used: set[str] = set()
    sources: list[tuple[Loc, Any]] = [(("template", "base_config"), template.base_config)]
    sources += [
        (("template", "endpoints", i, "path"), e.path) for i, e in enumerate(template.endpoints)
    ]
    if template.sandbox_base_url:
        sources.append((("template", "sandbox_base_url"), template.sandbox_base_url))
    for base, value in sources:
        for where, name in placeholders(value):
            used.add(name)
            known = fields.get(name)
            if known is None or known.target != "config":
                problems.append(
                    ((*base, *where), f"{{{{{name}}}}} is not a config field of the wizard")
                )

    auth = template.base_config.get("auth_config") or {}
    try:
        auth_type = AuthType(auth.get("type", "none"))
    except ValueError:
        auth_type = AuthType.NONE  # reported by the integration validation below
    allowed = CREDENTIALS_BY_AUTH.get(auth_type, frozenset())
    for step_index, step in enumerate(template.wizard):
        for field_index, field in enumerate(step.fields):
            loc: Loc = ("template", "wizard", step_index, "fields", field_index)
            if field.target == "config" and field.name not in used:
                problems.append(((*loc, "name"), f"config field {field.name!r} is never used"))
            if field.target == "credentials":
                if auth_type is not AuthType.CUSTOM and field.name not in allowed:
                    problems.append(
                        (
                            (*loc, "name"),
                            f"{field.name!r} is not a credential of auth type {auth_type}",
                        )
                    )
                elif field.name not in NON_SECRET_CREDENTIALS and not field.secret:
                    problems.append(((*loc, "secret"), f"{field.name!r} is stored as a secret"))

    for index, rule in enumerate(template.validation_rules):
        problems.extend(
            (("template", "validation_rules", index), msg) for msg in rule_problems(rule, fields)
        )

    if template.test_credentials:
        for key in template.test_credentials:
            if key not in fields or fields[key].target != "credentials":
                problems.append(
                    (("template", "test_credentials", key), "is not a credential field")
                )
    if template.sandbox_base_url and not template.sandbox_base_url.startswith(
        ("http://", "https://")
    ):
        problems.append((("template", "sandbox_base_url"), "must be an http(s) URL"))

    test_endpoint = template.base_config.get("test_endpoint")
    if not test_endpoint:
        problems.append((("template", "base_config", "test_endpoint"), "is required"))
    elif test_endpoint not in names:
        problems.append(
            (("template", "base_config", "test_endpoint"), f"{test_endpoint!r} is not an endpoint")
        )

    document = build_document(item, sample_answers(item))
    if test_endpoint not in names:
        document.pop("test_endpoint", None)  # reported above; check everything else
    try:
        spec = IntegrationSpec.model_validate(document)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            problems.append((_template_loc(tuple(error["loc"]), names), error["msg"]))
        return problems
    for loc, msg in validate_spec(spec, engine, adapters):
        problems.append((_template_loc(tuple(loc), names), msg))
    problems.extend(sample_problems(item, spec, engine))
    return problems


def sample_problems(
    item: MarketplaceItemSpec, spec: IntegrationSpec, engine: MappingEngine
) -> list[tuple[Loc, str]]:
    """Each endpoint's `sample_request` must pass its input schema and request mapping, and
    its `sample_response` must map to a success: the samples a person reads are true."""
    problems: list[tuple[Loc, str]] = []
    for index, endpoint in enumerate(item.template.endpoints):
        if endpoint.sample_request is None and endpoint.sample_response is None:
            continue
        try:
            compiled = engine.compile_endpoint(spec.endpoints[endpoint.name])
        except MappingConfigError:
            continue  # reported with the endpoint's mappings
        base: Loc = ("template", "endpoints", index)
        if endpoint.sample_request is not None:
            for loc, msg in compiled.validate_input(endpoint.sample_request):
                problems.append(((*base, "sample_request", *loc), msg))
            try:
                compiled.map_request(endpoint.sample_request)
            except MappingError as exc:
                problems.extend(
                    ((*base, "sample_request"), f"{'.'.join(map(str, loc))}: {msg}")
                    for loc, msg in exc.problems
                )
        if endpoint.sample_response is not None:
            try:
                mapped = compiled.map_response(endpoint.sample_response)
            except MappingError as exc:
                problems.extend(
                    ((*base, "sample_response"), f"{'.'.join(map(str, loc))}: {msg}")
                    for loc, msg in exc.problems
                )
                continue
            if not mapped.success:
                problems.append(
                    ((*base, "sample_response"), f"maps to a failure: {mapped.error_message}")
                )
    return problems


def _template_loc(loc: tuple[str | int, ...], names: list[str]) -> Loc:
    """An integration document's location, as a location in the template."""
    if len(loc) >= 2 and loc[0] == "endpoints" and loc[1] in names:
        return ("template", "endpoints", names.index(str(loc[1])), *loc[2:])
    return ("template", "base_config", *loc)


def parse_item(raw: Mapping[str, Any], source: str) -> MarketplaceItemSpec:
    """A template document as a `MarketplaceItemSpec`; `TemplateError` naming every problem."""
    try:
        return MarketplaceItemSpec.model_validate(raw)
    except ValidationError as exc:
        raise TemplateError(
            source, [(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        ) from None


def load_file(
    path: Path,
    engine: MappingEngine,
    adapters: AdapterRegistry,
) -> MarketplaceItemSpec:
    """Read and fully check one template file (what `adaptor marketplace validate` runs)."""
    try:
        raw = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise TemplateError(str(path), [((), f"is not valid JSON: {exc}")]) from None
    if not isinstance(raw, dict):
        raise TemplateError(str(path), [((), "must be a JSON object")])
    item = parse_item(raw, str(path))
    problems = template_problems(item, engine, adapters)
    if problems:
        raise TemplateError(str(path), problems)
    return item


def builtin_template_files() -> list[Path]:
    """The template files shipped in the package, by name."""
    folder = resources.files("adaptor.marketplace") / "templates"
    return sorted(Path(str(entry)) for entry in folder.iterdir() if str(entry).endswith(".json"))


def as_item(spec: MarketplaceItemSpec, **extra: Any) -> MarketplaceItem:
    return MarketplaceItem.model_validate({**spec.model_dump(mode="json"), **extra})
