"""`./dev`, the entry point a new user runs first."""

from __future__ import annotations

import subprocess

from tests.prism import ROOT


def test_help_exits_0_and_prints_only_the_usage() -> None:
    for flag in ("--help", "-h", "help"):
        result = subprocess.run(
            [str(ROOT / "dev"), flag], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert lines[0].startswith("One entry point")
        assert all(line.startswith("  ./dev ") for line in lines[1:])
        assert "set -" not in result.stdout


def test_an_unknown_command_is_an_error() -> None:
    result = subprocess.run(
        [str(ROOT / "dev"), "nope"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "unknown command 'nope'" in result.stderr
