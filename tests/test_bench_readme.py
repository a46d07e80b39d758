"""`bench/README.md` states the figures of the benchmark's bodies as the data gives them."""

from __future__ import annotations

import re

from bench.scenarios import expected_mapped_data, expected_summary
from bench.upstream import body_facts

from tests.prism import ROOT


def _readme() -> str:
    # The page wraps lines; compare on single spaces.
    return " ".join((ROOT / "bench" / "README.md").read_text().split())


def test_the_readme_states_the_bodies_sizes_and_the_positive_balance_count() -> None:
    facts = body_facts()
    text = _readme()
    assert f"a {facts['small_bytes']}-byte customer object" in text
    large = f"{facts['large_bytes']:,}".replace(",", " ")
    assert f"a {large}-byte Stripe list object with {facts['customers']} realistic" in text
    stated = re.findall(r"(\d+) of them have a positive balance", text)
    assert stated == [str(facts["positive_balance"])]


def test_the_positive_balance_count_is_what_execute_mapped_answers() -> None:
    count = body_facts()["positive_balance"]
    assert len(expected_mapped_data()) == count
    assert expected_summary() == f"{count} customers with a balance"
    assert f"so `execute_mapped` answers {count} items" in _readme()
