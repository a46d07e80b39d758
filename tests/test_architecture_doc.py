"""docs/architecture.md stays current: every seed name is mapped, every path it names exists,
and every package and module of the service is described."""

from __future__ import annotations

import re

import pytest

from tests.prism import ROOT

DOC = (ROOT / "docs" / "architecture.md").read_text()
SRC = ROOT / "src" / "adaptor"

SEED_NAMES = [
    "FieldMapper",
    "TransformationRule",
    "JMESPathTransformer",
    "TransformationService",
    "ValidationService",
    "TestingService",
    "AuthService",
    "AsyncHTTPClient",
    "ExecutionRepository",
    "CacheService",
    "MetricsCollector",
    "MappingEngine",
    "ExecutionService",
    "RESTIntegration",
    "RetryManager",
    "CircuitBreaker",
    "BaseAuthHandler",
    "MarketplaceManager",
]


@pytest.mark.parametrize("name", SEED_NAMES)
def test_every_seed_name_has_a_row(name: str) -> None:
    assert re.search(rf"^\| [^|]*`{name}`", DOC, re.MULTILINE), name


def test_every_module_the_page_names_exists() -> None:
    """A path under one of our packages (`executions/trace.py`) must exist; the seed's own
    paths (`services/…`, `core/…`) are quoted as names only."""
    ours = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_]+\.py)`", DOC))
    missing = [path for path in named if path.split("/")[0] in ours and not (SRC / path).exists()]
    assert sorted(missing) == []


def test_every_package_is_in_the_folder_table() -> None:
    for package in sorted(p.name for p in SRC.iterdir() if p.is_dir() and any(p.glob("*.py"))):
        assert f"| `{package}/`" in DOC, package


def test_every_module_is_in_the_module_table() -> None:
    modules = sorted(
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if path.name != "__init__.py" and "migrations" not in path.parts
    )
    missing = [
        module
        for module in modules
        if not re.search(rf"^\| [^|]*`{re.escape(module)}`", DOC, re.MULTILINE)
    ]
    assert missing == []
