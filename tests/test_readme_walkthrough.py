"""The README's Stripe walk-through, run as written against the fixture the repository ships
(`examples/openapi/stripe.json` served by Prism): a user needs nothing outside the clone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Tenant
from tests.prism import ROOT, run_prism

EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def stripe_mock() -> Iterator[str]:
    with run_prism(EXAMPLES / "openapi" / "stripe.json") as base_url:
        yield base_url


def test_the_readme_needs_nothing_outside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
    assert "examples/openapi/stripe.json" in readme
    for path in ("examples/openapi/stripe.json", "examples/stripe-mock.json"):
        assert (ROOT / path).is_file()


async def test_the_walkthrough_runs_against_the_shipped_fixture(
    app_client: httpx.AsyncClient, tenant: Tenant, stripe_mock: str
) -> None:
    document = json.loads((EXAMPLES / "stripe-mock.json").read_text())
    assert document["base_url"] == "http://127.0.0.1:4010"  # what the README starts Prism on
    document["base_url"] = stripe_mock
    created = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert created.status_code == 201, created.text
    integration_id = created.json()["integration_id"]
    listed = await app_client.post(
        f"/api/v2/execute/{integration_id}/list_customers",
        json={"input_data": {"variables": {"limit": 3}}},
        headers=tenant.headers,
    )
    assert listed.json()["success"] is True, listed.text
    made = await app_client.post(
        f"/api/v2/execute/{integration_id}/create_customer",
        json={
            "input_data": {
                "user_data": {"email": "jenny@example.com", "name": "Jenny Rosen"},
                "variables": {"plan": "pro"},
            }
        },
        headers=tenant.headers,
    )
    assert made.json()["success"] is True, made.text
    assert "Created customer" in made.json()["metadata"]["summary"]


def test_shipped_fixture_is_the_trimmed_official_description() -> None:
    shipped = json.loads((EXAMPLES / "openapi" / "stripe.json").read_text())
    assert shipped["x-source"]["repo"] == "stripe/openapi"
    assert "/v1/customers" in shipped["paths"]
    assert Path(EXAMPLES / "openapi" / "README.md").is_file()
