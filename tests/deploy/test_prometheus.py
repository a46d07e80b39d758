"""The shipped Prometheus rules: valid (`promtool check rules`) and each alert shown to fire on
a failing series and stay quiet on a healthy one (`promtool test rules`).

promtool comes from the Debian package `prometheus` (`.ci/run` installs it when missing); these
tests install nothing and fail when it is absent.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed (Debian package `prometheus`; .ci/run installs it)")
    return subprocess.run(
        [binary, *args], cwd=RULES, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_are_valid() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_every_alert_fires_on_a_failing_series_and_not_on_a_healthy_one() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_is_tested_both_ways_and_has_a_runbook() -> None:
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    alerts = {
        rule["alert"]: rule
        for group in rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    seed = {
        "AdaptorIntegrationFailureRateHigh",
        "AdaptorResponseTimeHigh",
        "AdaptorCircuitBreakerOpen",
        "AdaptorUpstreamAuthenticationFailures",
    }
    assert seed <= set(alerts)
    cases = yaml.safe_load((RULES / "alerts.test.yml").read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == set(alerts)
    assert quiet == set(alerts)
    runbooks = (Path(__file__).parents[2] / "docs" / "operations.md").read_text().lower()
    for name, rule in alerts.items():
        assert "for" in rule
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor == name.lower()
        assert f"### {name.lower()}" in runbooks, f"docs/operations.md has no runbook for {name}"


def test_a_wrong_threshold_is_caught(tmp_path: Path) -> None:
    """The unit tests have teeth: a rule that no longer fires on the failing series fails."""
    for name in ("alerts.yml", "alerts.test.yml"):
        shutil.copy(RULES / name, tmp_path / name)
    rules = tmp_path / "alerts.yml"
    rules.write_text(rules.read_text().replace(") > 0.10", ") > 0.30"))
    binary = shutil.which("promtool")
    assert binary is not None
    tested = subprocess.run(
        [binary, "test", "rules", "alerts.test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert tested.returncode != 0
    assert "AdaptorIntegrationFailureRateHigh" in tested.stdout + tested.stderr
