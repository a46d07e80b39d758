"""Salesforce against a loopback server answering what Salesforce documents: the OAuth 2.0
token response with `instance_url`, SOQL pages linked by `nextRecordsUrl`, sObject writes, and
the error list `[{"message", "errorCode"}]`."""

from __future__ import annotations

from typing import Any

import httpx

from adaptor.connectors import SalesforceConnector, connector_factory
from tests.conftest import Tenant
from tests.executions.upstream import Reply, Seen, Upstream
from tests.marketplace.helpers import execute, install

V = "/services/data/v65.0"


def salesforce_org(upstream: Upstream) -> None:
    def token(seen: Seen) -> Reply:
        return Reply(
            json={
                "access_token": "00Dxx!AQ4AQFake.Access.Token",
                "instance_url": upstream.url,
                "id": f"{upstream.url}/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
                "token_type": "Bearer",
                "issued_at": "1700000000000",
                "signature": "c2lnbmF0dXJl",
            }
        )

    upstream.respond("POST", "/services/oauth2/token", token)
    upstream.reply(
        "GET",
        f"{V}/query",
        Reply(
            json={
                "totalSize": 3,
                "done": False,
                "nextRecordsUrl": f"{V}/query/01gD0000002HU6KIAW-2",
                "records": [
                    {"attributes": {"type": "Account"}, "Id": "001A", "Name": "Acme"},
                    {"attributes": {"type": "Account"}, "Id": "001B", "Name": "Globex"},
                ],
            }
        ),
    )
    upstream.reply(
        "GET",
        f"{V}/query/01gD0000002HU6KIAW-2",
        Reply(
            json={
                "totalSize": 3,
                "done": True,
                "records": [{"attributes": {"type": "Account"}, "Id": "001C", "Name": "Initech"}],
            }
        ),
    )
    upstream.reply(
        "POST",
        f"{V}/sobjects/Account",
        Reply(201, {"id": "001D000000IqhSLIAZ", "errors": [], "success": True}),
    )
    upstream.reply("PATCH", f"{V}/sobjects/Account/001A", Reply(204, body=b""))
    upstream.reply(
        "GET",
        f"{V}/sobjects/Account/001X",
        Reply(
            404,
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
        ),
    )


async def token_response(upstream: Upstream) -> dict[str, Any]:
    """The web-server flow's code exchange (RFC 6749 §4.1.3)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{upstream.url}/services/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": "aPrxsmIEeqM9PiQroGEWx1UiMQd95_5JUZVEhsOFhS8EVvbfYBBJli2W5fn3zbo.8hoj",
                "client_id": "3MVG9-consumer-key",
                "client_secret": "consumer-secret",
                "redirect_uri": "https://adaptor.example/api/v2/oauth/callback",
            },
        )
    response.raise_for_status()
    return dict(response.json())


async def test_instance_url_from_the_token_response_becomes_the_base_url(
    upstream: Upstream,
) -> None:
    salesforce_org(upstream)
    token = await token_response(upstream)
    hook = SalesforceConnector(allowed_hosts=("127.0.0.1",))
    assert hook.base_url_from_token(token) == upstream.url
    token_form = dict(pair.split("=", 1) for pair in upstream.seen[-1].body.decode().split("&"))
    assert token_form["grant_type"] == "authorization_code"


def test_an_instance_url_off_salesforce_or_not_https_is_refused() -> None:
    hook = connector_factory("salesforce")
    assert hook.base_url_from_token({"instance_url": "https://acme.my.salesforce.com"}) == (
        "https://acme.my.salesforce.com"
    )
    for bad in (
        "http://acme.my.salesforce.com",
        "https://acme.my.salesforce.com.evil.example",
        "https://evil.example",
        "https://acme.my.salesforce.com/services/data",
        None,
    ):
        assert hook.base_url_from_token({"instance_url": bad}) is None


async def test_salesforce_query_pages_and_sobject_writes(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    salesforce_org(upstream)
    created = await install(
        app_client,
        tenant,
        "salesforce",
        credentials={"client_id": "3MVG9-consumer-key", "client_secret": "consumer-secret"},
        config_overrides={"my_domain": "acme.my.salesforce.com"},
    )
    assert created["base_url"] == "https://acme.my.salesforce.com"
    assert created["auth_config"]["token_url"] == (
        "https://acme.my.salesforce.com/services/oauth2/token"
    )
    assert created["endpoints"]["query"]["path"] == f"{V}/query"

    # What the OAuth flow (issue #9) does after the code exchange: the base URL from the
    # token response, the access token as the credential.
    token = await token_response(upstream)
    base_url = SalesforceConnector(allowed_hosts=("127.0.0.1",)).base_url_from_token(token)
    integration_id = created["integration_id"]
    patched = await app_client.patch(
        f"/api/v2/integrations/{integration_id}",
        json={
            "base_url": base_url,
            "auth_config": {
                "type": "bearer_token",
                "oauth2_flow": None,
                "token_url": None,
                "authorization_url": None,
                "scopes": [],
                "credentials": {
                    "client_id": None,
                    "client_secret": None,
                    "token": token["access_token"],
                },
            },
        },
        headers=tenant.headers,
    )
    assert patched.status_code == 200, patched.text

    result = await execute(
        app_client, tenant, integration_id, "query", {"soql": "SELECT Id, Name FROM Account"}
    )
    assert result["success"] is True, result
    assert [r["Id"] for r in result["data"]] == ["001A", "001B", "001C"]
    assert result["metadata"]["pages"] == 2
    queried = [s for s in upstream.seen if s.path.startswith(f"{V}/query")]
    assert queried[0].query == [("q", "SELECT Id, Name FROM Account")]
    assert queried[1].query == []
    assert queried[1].headers["authorization"] == f"Bearer {token['access_token']}"

    made = await execute(
        app_client,
        tenant,
        integration_id,
        "create_record",
        {"sobject": "Account", "fields": {"Name": "Hooli", "Industry": "Technology"}},
    )
    assert made["data"] == {"id": "001D000000IqhSLIAZ", "success": True, "errors": []}
    sent = next(s for s in upstream.seen if s.method == "POST" and "sobjects" in s.path)
    assert sent.body == b'{"Name":"Hooli","Industry":"Technology"}'

    updated = await execute(
        app_client,
        tenant,
        integration_id,
        "update_record",
        {"sobject": "Account", "record_id": "001A", "fields": {"Name": "Acme Corp"}},
    )
    assert updated["success"] is True
    assert updated["metadata"]["status_code"] == 204

    missing = await execute(
        app_client,
        tenant,
        integration_id,
        "get_record",
        {"sobject": "Account", "record_id": "001X"},
    )
    assert missing["success"] is False
    assert missing["error"]["message"].endswith("NOT_FOUND: The requested resource does not exist")
