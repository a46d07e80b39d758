"""The setup wizard: its steps as the API shows them, and the check of a tenant's answers.

Every problem is collected with its location (`body.credentials.api_key`,
`body.config_overrides.shop`), so one 422 names all of them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import regex

from adaptor.domain import ValidationRule
from adaptor.domain.marketplace import IntegrationTemplate, WizardField
from adaptor.errors import Loc

GENERIC_OVERRIDES = frozenset(
    {
        "base_url",
        "description",
        "timeout_ms",
        "headers",
        "rate_limit",
        "retry_config",
        "enabled",
        "metadata",
    }
)
"""Integration fields an install may set besides the wizard's own (`config_overrides`)."""

MAX_PATTERN_LENGTH = 500
PATTERN_TIMEOUT_S = 0.05
"""Longest a `pattern` rule may take on one value (patterns come from published templates)."""

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}$"
)
FORMATS = ("email", "uri", "hostname", "uuid")


@dataclass(slots=True)
class WizardAnswers:
    """The checked answers: credential values, config values, generic overrides."""

    credentials: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


def wizard_document(template: IntegrationTemplate) -> dict[str, Any]:
    """The contract's wizard shape: `{"steps": [{"title", "fields": [...]}]}`."""
    return {
        "steps": [
            {
                "title": step.title,
                "fields": [
                    {
                        "name": f.name,
                        "label": f.label,
                        "type": f.type,
                        "secret": f.secret,
                        "required": f.required,
                        "default": f.default,
                        "help_text": f.help_text,
                    }
                    for f in step.fields
                ],
            }
            for step in template.wizard
        ]
    }


def check_answers(
    template: IntegrationTemplate,
    credentials: Mapping[str, Any],
    config_overrides: Mapping[str, Any],
) -> tuple[WizardAnswers, list[tuple[Loc, str]]]:
    """Check a tenant's answers against the wizard and the template's validation rules."""
    problems: list[tuple[Loc, str]] = []
    answers = WizardAnswers()
    fields = {f.name: f for f in template.fields()}
    sections = (("credentials", credentials), ("config_overrides", config_overrides))
    for section, given in sections:
        target = "credentials" if section == "credentials" else "config"
        for name in given:
            known = fields.get(name)
            if known is not None and known.target == target:
                continue
            if section == "config_overrides" and name in GENERIC_OVERRIDES:
                answers.overrides[name] = given[name]
                continue
            expected = sorted(n for n, f in fields.items() if f.target == target)
            problems.append(
                (
                    (("body", section, name)),
                    f"is not a field of this connector (expected {expected})",
                )
            )
    for wizard_field in fields.values():
        section = "credentials" if wizard_field.target == "credentials" else "config_overrides"
        given = credentials if wizard_field.target == "credentials" else config_overrides
        loc: Loc = ("body", section, wizard_field.name)
        value = given.get(wizard_field.name)
        if value in (None, ""):
            value = wizard_field.default
        if value in (None, ""):
            if wizard_field.required:
                problems.append((loc, f"{wizard_field.label} is required"))
            continue
        problem = _type_problem(wizard_field, value)
        if problem is not None:
            problems.append((loc, problem))
            continue
        if wizard_field.target == "credentials":
            answers.credentials[wizard_field.name] = value
        else:
            answers.config[wizard_field.name] = value
    for rule in template.validation_rules:
        ruled = fields.get(rule.field)
        if ruled is None:
            continue
        values = answers.credentials if ruled.target == "credentials" else answers.config
        section = "credentials" if ruled.target == "credentials" else "config_overrides"
        if any(loc[-1] == rule.field for loc, _ in problems):
            continue  # already reported (missing or of the wrong type)
        if not rule_passes(rule, values.get(rule.field)):
            problems.append((("body", section, rule.field), rule.error_message))
    return answers, problems


def _type_problem(wizard_field: WizardField, value: Any) -> str | None:
    expected = wizard_field.type
    if expected == "boolean" and not isinstance(value, bool):
        return "must be true or false"
    if expected == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be a whole number"
    if expected == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return "must be a number"
    if expected == "string" and not isinstance(value, str):
        return "must be a string"
    return None


def rule_passes(rule: ValidationRule, value: Any) -> bool:
    """Whether `value` satisfies one `ValidationRule` (an absent value passes all but
    `required`)."""
    if rule.type == "required":
        return value not in (None, "", [], {})
    if value is None:
        return True
    if rule.type == "enum":
        return value in (rule.value or [])
    if rule.type == "range":
        bounds = rule.value or {}
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        low, high = bounds.get("min"), bounds.get("max")
        return (low is None or value >= low) and (high is None or value <= high)
    text = str(value)
    if rule.type == "pattern":
        try:
            return regex.fullmatch(str(rule.value), text, timeout=PATTERN_TIMEOUT_S) is not None
        except TimeoutError:
            return False
    return format_passes(str(rule.value), text)


def format_passes(name: str, text: str) -> bool:
    if name == "email":
        return _EMAIL.match(text) is not None
    if name == "hostname":
        return _HOSTNAME.match(text) is not None
    if name == "uuid":
        try:
            uuid.UUID(text)
        except ValueError:
            return False
        return True
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def rule_problems(rule: ValidationRule, fields: Mapping[str, WizardField]) -> list[str]:
    """What is wrong with a rule itself (for template validation)."""
    found: list[str] = []
    if rule.field not in fields:
        found.append(f"names {rule.field!r}, which is not a wizard field")
    if rule.type == "pattern":
        if not isinstance(rule.value, str) or len(rule.value) > MAX_PATTERN_LENGTH:
            found.append(
                f"pattern value must be a regular expression of at most "
                f"{MAX_PATTERN_LENGTH} characters"
            )
        else:
            try:
                re.compile(rule.value)
            except re.error as exc:
                found.append(f"pattern {rule.value!r} does not compile: {exc}")
    elif rule.type == "enum" and not (isinstance(rule.value, list) and rule.value):
        found.append("enum value must be a non-empty list")
    elif rule.type == "range" and not (
        isinstance(rule.value, dict) and set(rule.value) <= {"min", "max"} and rule.value
    ):
        found.append('range value must be {"min": ..., "max": ...}')
    elif rule.type == "format" and rule.value not in FORMATS:
        found.append(f"format value must be one of {list(FORMATS)}")
    return found
