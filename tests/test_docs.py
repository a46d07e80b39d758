"""What a user reads stays true: the README's configuration table lists every setting once with
its default, and no page points outside the repository or at a file that is not there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adaptor.config import Settings
from tests.prism import ROOT

README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]


def _configuration_rows() -> list[tuple[str, str]]:
    """(variables cell, default cell) of each row of the README's configuration table."""
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 3:
            rows.append((cells[0], cells[1]))
    return rows


def _shown(default: object) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


@pytest.mark.parametrize(
    ("variable", "default"),
    [(info.alias, info.default) for info in Settings.model_fields.values()],
)
def test_every_setting_is_in_the_configuration_table_once(variable: str, default: object) -> None:
    rows = [(names, shown) for names, shown in _configuration_rows() if f"`{variable}`" in names]
    assert len(rows) == 1, f"{variable} is in {len(rows)} rows of the README's Configuration"
    _names, shown = rows[0]
    if default in (None, ""):
        assert "unset" in shown, f"{variable}: default cell {shown!r} should say unset"
    elif isinstance(default, (bool, int, float, str)):
        assert f"`{_shown(default)}`" in shown, f"{variable}: default cell {shown!r}"


def test_the_configuration_table_names_only_settings() -> None:
    known = {info.alias for info in Settings.model_fields.values()}
    named = {
        name for names, _ in _configuration_rows() for name in re.findall(r"`([A-Z_]+)`", names)
    }
    assert sorted(named - known) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_links_stay_inside_the_repository_and_exist(page: Path) -> None:
    text = page.read_text()
    assert "../shared" not in text
    assert "/work/" not in text
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}"
