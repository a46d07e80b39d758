"""Which parts of an integration document are secrets, and how they are kept apart.

A stored document never holds a secret: each is replaced by the mask and the real values are
kept, encrypted, as a list of `[path, value]` pairs beside it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from adaptor.domain.integration import MASK, NON_SECRET_CREDENTIALS

Path = tuple[str, ...]


def secret_paths(document: dict[str, Any]) -> Iterator[Path]:
    credentials = (document.get("auth_config") or {}).get("credentials") or {}
    for name in credentials:
        if name not in NON_SECRET_CREDENTIALS:
            yield ("auth_config", "credentials", name)
    webhook = document.get("webhook")
    if isinstance(webhook, dict) and "secret" in webhook:
        yield ("webhook", "secret")


def _get(document: dict[str, Any], path: Path) -> Any:
    node: Any = document
    for part in path:
        node = node[part]
    return node


def _set(document: dict[str, Any], path: Path, value: Any) -> None:
    node: Any = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def split_secrets(document: dict[str, Any]) -> tuple[dict[str, Any], list[list[Any]]]:
    """(document with each secret masked, the secrets as `[path, value]` pairs)."""
    masked = copy.deepcopy(document)
    found: list[list[Any]] = []
    for path in list(secret_paths(document)):
        value = _get(document, path)
        if value is None:
            continue
        found.append([list(path), value])
        _set(masked, path, MASK)
    return masked, found


def merge_secrets(masked: dict[str, Any], secrets: list[list[Any]]) -> dict[str, Any]:
    """The full document, for execution only."""
    document = copy.deepcopy(masked)
    for path, value in secrets:
        try:
            _set(document, tuple(path), value)
        except (KeyError, TypeError):
            continue
    return document


def restore_masked(
    document: dict[str, Any], stored: list[list[Any]]
) -> tuple[dict[str, Any], list[Path]]:
    """Replace each masked secret by its stored value; returns the paths masked with no value."""
    known = {tuple(path): value for path, value in stored}
    missing: list[Path] = []
    for path in list(secret_paths(document)):
        if _get(document, path) == MASK:
            if path in known:
                _set(document, path, known[path])
            else:
                missing.append(path)
    return document, missing


def secret_values(secrets: list[list[Any]]) -> list[str]:
    """Every secret as text, for redaction of logs and traces."""
    return [str(value) for _, value in secrets if value not in (None, "")]
