"""Every vendor document in the shared fixtures imports with `dry_run`, whole and untrimmed,
with one endpoint per operation; the Swagger 2.0 ones are refused with a located 422; the
multi-file SendGrid layout imports through the CLI, its `$ref`s reaching sibling files."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from click.testing import CliRunner

from adaptor.cli import main
from adaptor.executions.runtime import CHANGES_CHANNEL
from adaptor.imports import DocumentResolver, ImportOptions, convert_document, load_document
from adaptor.storage.kv_redis import RedisStore
from tests.conftest import ENCRYPTION_KEY, Tenant
from tests.imports.conftest import MEASURED
from tests.prism import OPENAPI_FIXTURES

IMPORT = "/api/v2/integrations/import"

# Operations per document (path + method pairs), as the fixtures' READMEs count them.
DOCUMENTS = {
    "stripe.json": 15,
    "hubspot.json": 12,
    "jira.json": 8,
    "full/twilio-api-v2010.json": 197,
    "full/twilio-verify-v2.json": 57,
    "full/sendgrid.json": 334,
    "full/intercom.json": 231,
    "full/asana.json": 247,
    "full/hubspot-crm-contacts.json": 13,
}


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
@pytest.mark.parametrize("name", list(DOCUMENTS))
async def test_each_vendor_document_imports(
    app_client: httpx.AsyncClient, tenant: Tenant, name: str
) -> None:
    path = OPENAPI_FIXTURES / name
    raw = path.read_bytes()
    started = time.perf_counter()
    response = await app_client.post(
        IMPORT,
        content=orjson.dumps({"format": "openapi", "document": orjson.loads(raw), "dry_run": True}),
        headers={**tenant.headers, "Content-Type": "application/json"},
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text[:2000]
    config = response.json()
    assert len(config["endpoints"]) == DOCUMENTS[name]
    assert config["metadata"]["openapi"]["operations"] == DOCUMENTS[name]
    assert config["base_url"].startswith(("https://", "http://"))
    assert config["auth_config"]["type"] != "none"
    for endpoint in config["endpoints"].values():
        assert endpoint["path"].startswith(("/", "https://"))
        assert endpoint["validation_schema"]["type"] == "object"
    MEASURED[name] = (
        f"{len(raw):,} B, {DOCUMENTS[name]} operations -> {len(config['endpoints'])} endpoints, "
        f"{elapsed:.2f} s (route, dry run)"
    )


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
async def test_a_real_document_as_yaml_text(app_client: httpx.AsyncClient, tenant: Tenant) -> None:
    document = orjson.loads((OPENAPI_FIXTURES / "full" / "hubspot-crm-contacts.json").read_bytes())
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    response = await app_client.post(
        IMPORT,
        json={"format": "openapi", "document": text, "dry_run": True},
        headers=tenant.headers,
    )
    assert response.status_code == 200, response.text[:2000]
    assert len(response.json()["endpoints"]) == 13


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
@pytest.mark.parametrize("name", ["slack-web.json", "zoom.json"])
async def test_swagger_2_documents_are_refused(
    app_client: httpx.AsyncClient, tenant: Tenant, name: str
) -> None:
    raw = (OPENAPI_FIXTURES / "full" / "negative" / name).read_bytes()
    response = await app_client.post(
        IMPORT,
        content=b'{"format": "openapi", "document": ' + raw + b"}",
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["body", "document", "swagger"]
    assert "Swagger (OpenAPI 2)" in problem["errors"][0]["msg"]
    assert "OpenAPI 3.0 and 3.1" in problem["detail"]


def cli(tmp_path: Path, *args: str, redis_url: str = "") -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        main,
        list(args),
        env={
            "DATA_DIR": str(tmp_path / "data"),
            "ENCRYPTION_KEY": ENCRYPTION_KEY,
            "POSTGRES_URI": "",
            "REDIS_URL": redis_url,
        },
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout, result.stderr


def test_the_multi_file_sendgrid_layout_through_the_cli(tmp_path: Path) -> None:
    root = OPENAPI_FIXTURES / "full" / "sendgrid-multifile" / "oas_v3.json"
    started = time.perf_counter()
    code, out, err = cli(tmp_path, "import", "openapi", str(root), "--tenant", "acme", "--dry-run")
    elapsed = time.perf_counter() - started
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 355
    assert "dry run: 355 endpoint(s) from 355 operation(s), nothing stored" in err
    assert "post_mail_send\tPOST\t/v3/mail/send" in lines
    size = sum(p.stat().st_size for p in root.parent.rglob("*.json"))
    MEASURED["full/sendgrid-multifile/ (63 files)"] = (
        f"{size:,} B, 355 operations -> 355 endpoints, {elapsed:.2f} s (CLI, dry run)"
    )


def test_sibling_file_references_resolve_relative_to_their_own_file() -> None:
    root = OPENAPI_FIXTURES / "full" / "sendgrid-multifile" / "oas_v3.json"
    document = load_document(root.read_bytes())
    converted = convert_document(document, DocumentResolver(document, path=root), ImportOptions())
    send = converted.spec["endpoints"]["post_mail_send"]
    # The body schema sits in spec/paths/..., its properties in spec/components/schemas.json.
    assert {"personalizations", "from", "subject", "content"} <= set(
        send["request_mapping"]["body"]
    )
    assert send["request_mapping"]["headers"]["Content-Type"] == "'application/json'"
    variables = send["validation_schema"]["properties"]["variables"]
    assert "required" not in variables  # the request body itself is optional there
    personalization = variables["properties"]["personalizations"]["items"]
    assert personalization["properties"]["from"]["required"] == ["email"]
    assert converted.spec["auth_config"] == {"type": "api_key", "api_key_header": "Authorization"}


def test_the_cli_stores_the_import_and_names_problems(tmp_path: Path) -> None:
    stripe = OPENAPI_FIXTURES / "stripe.json"
    code, out, err = cli(tmp_path, "import", "openapi", str(stripe), "--tenant", "acme")
    assert code == 0, err
    integration_id = out.splitlines()[-1]
    assert len(integration_id) == 36
    assert "disabled until its credentials are set" in err
    code, out, err = cli(tmp_path, "import", "openapi", str(stripe), "--tenant", "acme",
                         "--operation", "GetCustomers", "--dry-run")  # fmt: skip
    assert code == 0, err
    assert out.splitlines() == ["get_customers\tGET\t/v1/customers"]

    zoom = OPENAPI_FIXTURES / "full" / "negative" / "zoom.json"
    code, out, err = cli(tmp_path, "import", "openapi", str(zoom), "--tenant", "acme")
    assert code == 1
    assert f"{zoom}: swagger: is '2.0'" in err


def test_the_cli_never_leaves_the_documents_folder(tmp_path: Path) -> None:
    folder = tmp_path / "spec"
    folder.mkdir()
    (tmp_path / "secret.json").write_text('{"name": "x", "in": "query"}')
    (folder / "params.yaml").write_text(
        "Limit:\n  name: limit\n  in: query\n  schema: {type: integer}\n"
    )
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Files", "version": "1"},
        "servers": [{"url": "https://files.example.com"}],
        "paths": {
            "/a": {"get": {"operationId": "a", "parameters": [{"$ref": "params.yaml#/Limit"}]}},
            "/b": {"get": {"operationId": "b", "parameters": [{"$ref": "../secret.json"}]}},
            "/c": {"get": {"operationId": "c", "parameters": [{"$ref": "http://example.com/x"}]}},
            "/d": {"get": {"operationId": "d", "parameters": [{"$ref": "nowhere.json#/X"}]}},
        },
    }
    root = folder / "api.json"
    root.write_text(orjson.dumps(document).decode())
    code, out, err = cli(tmp_path, "import", "openapi", str(root), "--tenant", "acme", "--dry-run")
    assert code == 1
    assert (
        "paths./b.get.parameters.0.$ref: refers to ../secret.json, which cannot be read "
        "(outside the document's folder)" in err
    )
    assert "paths./c.get.parameters.0.$ref: refers to a URL (http://example.com/x)" in err
    assert (
        "paths./d.get.parameters.0.$ref: refers to nowhere.json#/X, which cannot be read "
        "(no such file)" in err
    )
    assert "paths./a." not in err  # a sibling file inside the folder resolves
    del document["paths"]["/b"], document["paths"]["/c"], document["paths"]["/d"]
    root.write_text(orjson.dumps(document).decode())
    code, out, err = cli(tmp_path, "import", "openapi", str(root), "--tenant", "acme", "--dry-run")
    assert code == 0, err
    assert out.splitlines() == ["a\tGET\t/a"]


async def test_an_import_from_the_shell_notifies_the_running_replicas(
    tmp_path: Path, redis_url: str
) -> None:
    store = RedisStore.from_url(redis_url)
    try:
        async with store.subscribe(CHANGES_CHANNEL) as notices:
            stripe = str(OPENAPI_FIXTURES / "stripe.json")
            code, out, err = await asyncio.to_thread(
                cli, tmp_path, "import", "openapi", stripe, "--tenant", "acme", redis_url=redis_url
            )
            assert code == 0, err
            integration_id = out.splitlines()[-1]
            async with asyncio.timeout(10):
                async for raw in notices:
                    notice = orjson.loads(raw)
                    if notice["i"] == integration_id:
                        break
            assert notice == {"t": "acme", "i": integration_id}
    finally:
        await store.close()
