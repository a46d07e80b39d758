"""Import tests: the vendors' descriptions in `tests/fixtures/openapi` (`OPENAPI_FIXTURES`), and
what each import measured, shown after the run."""

from __future__ import annotations

import pytest

MEASURED: dict[str, str] = {}
"""Per document: size, operations, endpoints and wall time of the import."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASURED:
        terminalreporter.section("imports: measured")
        for name, line in MEASURED.items():
            terminalreporter.write_line(f"{name}: {line}")
