"""What a first-run trial found at the HTTP edge: diagnosable 500s, one access line per
request, JSON logs on one stream, usable docs, and messages that say what is wrong."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from adaptor.app import UNAUTHENTICATED_PATHS, create_app
from adaptor.observability.logging import configure_logging
from adaptor.services import Services
from tests.conftest import Backend, Tenant, make_settings, serve_app
from tests.integrations.payloads import rest_integration


@pytest.fixture
def json_logs() -> Iterator[None]:
    configure_logging("info")
    yield
    structlog.reset_defaults()
    logging.basicConfig(handlers=[logging.NullHandler()], force=True)


def log_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_a_500_logs_its_traceback_redacted_with_the_request_id(
    json_logs: None,
    app_client: httpx.AsyncClient,
    services: Services,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("called with Bearer abc.def-SECRET and adk_leaked_key_123456")

    monkeypatch.setattr(services.integrations, "page", broken)
    capsys.readouterr()
    response = await app_client.get(
        "/api/v2/integrations", headers={**tenant.headers, "X-Request-ID": "r-diag"}
    )
    assert response.status_code == 500
    out = capsys.readouterr().out
    assert "abc.def-SECRET" not in out
    assert "adk_leaked_key_123456" not in out
    lines = log_lines(out)  # every line is JSON
    defect = next(line for line in lines if line["event"] == "app.unhandled_error")
    assert defect["request_id"] == "r-diag"
    assert defect["error_type"] == "RuntimeError"
    assert "Traceback" in defect["exception"]
    assert "called with Bearer [redacted]" in defect["error"]
    access = next(line for line in lines if line["event"] == "http.request")
    assert access["route"] == "/api/v2/integrations"
    assert access["status"] == 500
    assert access["request_id"] == "r-diag"
    assert access["tenant_id"] == tenant.tenant_id
    assert access["level"] == "info"
    assert access["duration_ms"] >= 0


async def test_the_direct_execute_route_has_its_access_line_too(
    json_logs: None,
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    capsys: pytest.CaptureFixture[str],
) -> None:
    created = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    integration_id = created.json()["integration_id"]
    capsys.readouterr()
    await app_client.post(
        f"/api/v2/execute/{integration_id}/get_customer",
        json={"input_data": {"variables": {"customer_id": "1"}}, "options": {"mock_response": {}}},
        headers=tenant.headers,
    )
    access = [
        line for line in log_lines(capsys.readouterr().out) if line["event"] == "http.request"
    ]
    assert access[0]["route"] == "/api/v2/execute/{integration_id}/{endpoint_name}"
    assert access[0]["status"] == 200
    assert access[0]["tenant_id"] == tenant.tenant_id
    assert integration_id not in json.dumps(access)


async def test_no_access_line_below_log_level_info(
    json_logs: None,
    app_client: httpx.AsyncClient,
    tenant: Tenant,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("warning")
    capsys.readouterr()
    response = await app_client.get("/api/v2/integrations", headers=tenant.headers)
    assert response.status_code == 200
    assert not [
        line for line in log_lines(capsys.readouterr().out) if line["event"] == "http.request"
    ]


def test_standard_library_loggers_write_json_on_the_same_stream(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.getLogger("uvicorn.error").warning("Started server process [%d]", 42)
    structlog.get_logger("adaptor.test").info("test.event", token="abc")
    lines = log_lines(capsys.readouterr().out)
    assert lines[0]["event"] == "Started server process [42]"
    assert lines[0]["logger"] == "uvicorn.error"
    assert lines[1] == {**lines[1], "event": "test.event", "token": "[redacted]"}


async def test_the_generated_admin_key_banner_is_on_stderr_apart_from_the_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, Backend("embedded", None, None), admin_api_key=None)
    async with serve_app(create_app(settings)):
        pass
    captured = capsys.readouterr()
    assert "Admin API key (shown once" in captured.err
    assert "Admin API key" not in captured.out


async def test_docs_work_offline_and_the_root_redirects_to_them(
    app_client: httpx.AsyncClient,
) -> None:
    root = await app_client.get("/", follow_redirects=False)
    assert root.status_code in (302, 307)
    assert root.headers["location"] == "/docs"
    page = await app_client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    script = await app_client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    css = await app_client.get("/docs/assets/swagger-ui.css")
    assert css.status_code == 200


async def test_openapi_declares_the_bearer_scheme_and_the_tenant_header(
    app_client: httpx.AsyncClient,
) -> None:
    spec = (await app_client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        **spec["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/v2/") and not path.startswith(UNAUTHENTICATED_PATHS):
                assert operation["security"] == [{"bearerAuth": []}], (method, path)
            else:  # no API key: the inbound webhook (signed) and the OAuth callback (state)
                assert "security" not in operation, (method, path)
    listing = spec["paths"]["/api/v2/integrations"]["get"]
    assert "X-Tenant-ID" in {p["name"] for p in listing["parameters"] if p["in"] == "header"}
    base_url = spec["components"]["schemas"]["IntegrationSpec"]["properties"]["base_url"]
    assert {"format": "iri"}.items() <= base_url["anyOf"][0].items()


async def test_a_405_allows_every_method_of_the_path(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post("/api/v2/integrations/some-id", headers=tenant.headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, PUT, PATCH, DELETE"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "is missing: send the body as JSON with Content-Type: application/json"),
        ({"Content-Type": "text/plain"}, "must be application/json (got text/plain)"),
    ],
)
async def test_a_body_without_json_content_type_says_so(
    app_client: httpx.AsyncClient, tenant: Tenant, headers: dict[str, str], expected: str
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        content=json.dumps(rest_integration()).encode(),
        headers={**tenant.headers, **headers},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0] == {"loc": ["header", "Content-Type"], "msg": expected}
    assert "Content-Type" in response.json()["detail"]


async def test_malformed_json_is_located_at_body_with_its_offset(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        content=b'{"name": "x", "type": }',
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["loc"] == ["body"]
    assert error["msg"].startswith("is not valid JSON at character 22")


async def test_messages_carry_no_value_error_prefix(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await app_client.post(
        "/api/v2/integrations",
        json=rest_integration(base_url="http://"),
        headers=tenant.headers,
    )
    assert response.status_code == 422
    assert "Value error" not in response.text
    document = rest_integration()
    document["retry_config"] = {"initial_delay_ms": 5000, "max_delay_ms": 10}
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422
    assert "Value error" not in response.text


async def test_a_bare_if_match_version_is_accepted(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await app_client.post(
        "/api/v2/integrations", json=rest_integration(), headers=tenant.headers
    )
    url = f"/api/v2/integrations/{created.json()['integration_id']}"
    changed = await app_client.patch(
        url, json={"description": "x"}, headers={**tenant.headers, "If-Match": "1"}
    )
    assert changed.status_code == 200, changed.text
    stale = await app_client.patch(
        url, json={"description": "y"}, headers={**tenant.headers, "If-Match": "1"}
    )
    assert stale.status_code == 412


async def test_an_http_method_is_accepted_in_any_case(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = rest_integration()
    document["endpoints"]["get_customer"]["method"] = "get"
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 201, response.text
    assert response.json()["endpoints"]["get_customer"]["method"] == "GET"


async def test_an_invalid_mapping_expression_hints_at_literals(
    app_client: httpx.AsyncClient, tenant: Tenant
) -> None:
    document = rest_integration()
    document["endpoints"]["get_customer"]["request_mapping"]["headers"] = {"X-Plan": "Pro plan"}
    response = await app_client.post("/api/v2/integrations", json=document, headers=tenant.headers)
    assert response.status_code == 422
    assert '`"text"`' in response.json()["errors"][0]["msg"]
