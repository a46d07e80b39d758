"""Loading the template files at start-up: a broken one stops development, is skipped (with an
error log) in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog

from adaptor.mapping import MappingEngine
from adaptor.marketplace.catalog import TemplateError, builtin_template_files
from adaptor.marketplace.service import MarketplaceManager
from adaptor.protocols.registry import default_registry


def manager(*, strict: bool) -> MarketplaceManager:
    unused: Any = None  # loading reads files only: no database, integrations or executions
    return MarketplaceManager(
        unused, unused, unused, MappingEngine(), default_registry(), strict=strict
    )


def files(tmp_path: Path) -> list[Path]:
    good = next(p for p in builtin_template_files() if p.name == "asana.json")
    document = orjson.loads(good.read_bytes())
    document["item_id"] = "asana-broken"
    document["template"]["endpoints"][0]["response_mapping"]["data_path"] = "data["
    broken = tmp_path / "asana-broken.json"
    broken.write_bytes(orjson.dumps(document))
    return [good, broken]


def test_a_broken_template_stops_loading_in_development(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"template\.endpoints\.0\.response_mapping"):
        manager(strict=True).load_builtin(files(tmp_path))


def test_a_broken_template_is_skipped_with_an_error_log_in_production(tmp_path: Path) -> None:
    loaded = manager(strict=False)
    with structlog.testing.capture_logs() as logs:
        loaded.load_builtin(files(tmp_path))
    assert list(loaded.builtin) == ["asana"]
    [entry] = [e for e in logs if e["event"] == "marketplace.template_skipped"]
    assert entry["log_level"] == "error"
    assert entry["file"] == "asana-broken.json"
    assert "template.endpoints.0.response_mapping.data_path" in entry["problems"][0]


def test_samples_must_pass_the_endpoints_own_mappings(tmp_path: Path) -> None:
    from adaptor.marketplace.catalog import load_file

    source = next(p for p in builtin_template_files() if p.name == "stripe.json")
    document = orjson.loads(source.read_bytes())
    names = [e["name"] for e in document["template"]["endpoints"]]
    intent = names.index("create_payment_intent")
    document["template"]["endpoints"][intent]["sample_request"] = {"currency": "usd"}
    customers = names.index("list_customers")
    document["template"]["endpoints"][customers]["sample_response"] = {"data": {"id": 1}, "x": 2}
    document["template"]["endpoints"][customers]["response_mapping"]["error_path"] = "x"
    broken = tmp_path / "stripe.json"
    broken.write_bytes(orjson.dumps(document))
    with pytest.raises(TemplateError) as caught:
        load_file(broken, MappingEngine(), default_registry())
    assert caught.value.problems == [
        (("template", "endpoints", customers, "sample_response"), "maps to a failure: 2"),
        (
            ("template", "endpoints", intent, "sample_request"),
            "body.amount: is required; nothing found at 'amount'",
        ),
    ]
