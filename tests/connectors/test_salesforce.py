"""Salesforce against a loopback server answering what Salesforce documents: the OAuth 2.0
token response with `instance_url`, SOQL pages linked by `nextRecordsUrl`, sObject writes, and
the error list `[{"message", "errorCode"}]`."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from adaptor.connectors import SalesforceConnector, connector_factory
from tests.conftest import Tenant
from tests.executions.upstream import Reply, Seen, Upstream
from tests.marketplace.helpers import execute, install

V = "/services/data/v65.0"


CONSUMER_KEY = "3MVG9-consumer-key"
CONSUMER_SECRET = "consumer-secret-" + secrets.token_hex(8)
USERNAME = "integration@acme.com"
AUDIENCE = "https://login.salesforce.com"
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


@dataclass
class SalesforceOrg:
    """What the org's token endpoint issued and accepts; `public_key` checks JWT assertions
    (the certificate uploaded to the connected app)."""

    upstream: Upstream
    public_key: Any = None
    codes: dict[str, str] = field(default_factory=dict)
    """Authorization code → the PKCE challenge it was issued for."""
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)

    def issue(self, **extra: Any) -> Reply:
        access = f"00Dxx!AQ4AQ.{secrets.token_urlsafe(24)}"
        self.access_tokens.append(access)
        return Reply(
            json={
                "access_token": access,
                "instance_url": self.upstream.url,
                "id": f"{self.upstream.url}/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
                "token_type": "Bearer",
                "issued_at": "1700000000000",
                "signature": "c2lnbmF0dXJl",
                **extra,
            }
        )

    def authorized(self, seen: Seen) -> bool:
        return seen.headers.get("authorization") == f"Bearer {self.access_tokens[-1]}"


def refused(description: str) -> Reply:
    return Reply(400, {"error": "invalid_grant", "error_description": description})


def salesforce_org(upstream: Upstream, public_key: Any = None) -> SalesforceOrg:
    """Salesforce's token endpoint (web-server code exchange with PKCE, refresh, JWT bearer)
    and the REST API behind it, on one loopback origin."""
    org = SalesforceOrg(upstream, public_key)

    def token(seen: Seen) -> Reply:
        form = dict(parse_qsl(seen.body.decode()))
        grant = form.get("grant_type", "")
        org.grants.append(grant)
        if grant == "authorization_code":
            basic = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
            if seen.headers.get("authorization") != f"Basic {basic}":
                return Reply(400, {"error": "invalid_client", "error_description": "bad secret"})
            challenge = org.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            if challenge is None or create_s256_code_challenge(verifier) != challenge:
                return refused("invalid authorization code")
            refresh = f"5Aep861.{secrets.token_urlsafe(16)}"
            org.refresh_tokens.add(refresh)
            return org.issue(refresh_token=refresh, scope="refresh_token api")
        if grant == "refresh_token":
            if form.get("refresh_token") not in org.refresh_tokens:
                return refused("expired access/refresh token")
            return org.issue(scope="refresh_token api")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(
                    form["assertion"],
                    org.public_key,
                    algorithms=["RS256"],
                    audience=AUDIENCE,
                    issuer=CONSUMER_KEY,
                    options={"require": ["exp", "iss", "sub", "aud"]},
                )
            except (KeyError, jwt.PyJWTError):
                return refused("invalid assertion")
            if claims["sub"] != USERNAME:
                return refused("user hasn't approved this consumer")
            return org.issue(scope="api")
        return Reply(400, {"error": "unsupported_grant_type", "error_description": grant})

    def query(seen: Seen) -> Reply:
        if not org.authorized(seen):
            return Reply(401, INVALID_SESSION)
        return Reply(
            json={
                "totalSize": 3,
                "done": False,
                "nextRecordsUrl": f"{V}/query/01gD0000002HU6KIAW-2",
                "records": [
                    {"attributes": {"type": "Account"}, "Id": "001A", "Name": "Acme"},
                    {"attributes": {"type": "Account"}, "Id": "001B", "Name": "Globex"},
                ],
            }
        )

    def next_page(seen: Seen) -> Reply:
        if not org.authorized(seen):
            return Reply(401, INVALID_SESSION)
        return Reply(
            json={
                "totalSize": 3,
                "done": True,
                "records": [{"attributes": {"type": "Account"}, "Id": "001C", "Name": "Initech"}],
            }
        )

    upstream.respond("POST", "/services/oauth2/token", token)
    upstream.respond("GET", f"{V}/query", query)
    upstream.respond("GET", f"{V}/query/01gD0000002HU6KIAW-2", next_page)
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
    return org


async def to_loopback(
    client: httpx.AsyncClient, tenant: Tenant, integration_id: str, upstream: Upstream
) -> None:
    """Point the installed org's login endpoints at the loopback org (the API's base URL
    stays the My Domain host: only the token response's instance_url leads to loopback)."""
    auth: dict[str, Any] = {"token_url": f"{upstream.url}/services/oauth2/token"}
    current = await client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    if current.json()["auth_config"].get("authorization_url"):
        auth["authorization_url"] = f"{upstream.url}/services/oauth2/authorize"
    patched = await client.patch(
        f"/api/v2/integrations/{integration_id}",
        json={"auth_config": auth},
        headers=tenant.headers,
    )
    assert patched.status_code == 200, patched.text


async def connect_web_server_flow(
    client: httpx.AsyncClient,
    tenant: Tenant,
    org: SalesforceOrg,
    integration_id: str,
) -> str:
    """Authorize through the service (PKCE), consent at the org, finish at the callback; the
    access token the org issued."""
    await to_loopback(client, tenant, integration_id, org.upstream)
    started = await client.post(
        f"/api/v2/integrations/{integration_id}/oauth/authorize", headers=tenant.headers
    )
    assert started.status_code == 200, started.text
    query = parse_qs(urlsplit(started.json()["authorization_url"]).query)
    assert query["client_id"] == [CONSUMER_KEY]
    assert query["scope"] == ["api refresh_token"]
    assert query["code_challenge_method"] == ["S256"]
    # The person approves at the org, which sends the browser back with a code.
    code = "aPrxsmIEeqM9PiQroGEWx1UiMQd95_5JUZVEhsOFhS8EVvbfYBBJli2W5fn3zbo.8hoj"
    org.codes[code] = query["code_challenge"][0]
    back = await client.get(
        "/api/v2/oauth/callback",
        params={"code": code, "state": query["state"][0]},
        headers={"Accept": "application/json"},
    )
    assert back.status_code == 200, back.text
    assert back.json()["connected"] is True
    assert org.grants == ["authorization_code"]
    return org.access_tokens[-1]


async def token_response(upstream: Upstream) -> dict[str, Any]:
    """A JWT bearer exchange made by hand (RFC 7523), to read the org's answer."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    org = salesforce_org(upstream, key.public_key())
    assertion = jwt.encode(
        {"iss": CONSUMER_KEY, "sub": USERNAME, "aud": AUDIENCE, "exp": int(time.time()) + 300},
        key,
        algorithm="RS256",
    )
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{upstream.url}/services/oauth2/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        )
    response.raise_for_status()
    assert org.grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    return dict(response.json())


async def test_instance_url_from_the_token_response_becomes_the_base_url(
    upstream: Upstream,
) -> None:
    token = await token_response(upstream)
    hook = SalesforceConnector(allowed_hosts=("127.0.0.1",))
    assert hook.base_url_from_token(token) == upstream.url
    same_origin = connector_factory("salesforce")
    assert same_origin.base_url_from_token(token, f"{upstream.url}/services/oauth2/token") == (
        upstream.url
    )
    assert connector_factory("salesforce").base_url_from_token(token) is None


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
    org = salesforce_org(upstream)
    created = await install(
        app_client,
        tenant,
        "salesforce",
        credentials={"client_id": CONSUMER_KEY, "client_secret": CONSUMER_SECRET},
        config_overrides={"my_domain": "acme.my.salesforce.com"},
    )
    assert created["base_url"] == "https://acme.my.salesforce.com"
    assert created["auth_config"]["token_url"] == (
        "https://acme.my.salesforce.com/services/oauth2/token"
    )
    assert created["endpoints"]["query"]["path"] == f"{V}/query"
    integration_id = created["integration_id"]
    token = await connect_web_server_flow(app_client, tenant, org, integration_id)

    result = await execute(
        app_client, tenant, integration_id, "query", {"soql": "SELECT Id, Name FROM Account"}
    )
    assert result["success"] is True, result
    assert [r["Id"] for r in result["data"]] == ["001A", "001B", "001C"]
    assert result["metadata"]["pages"] == 2
    queried = [s for s in upstream.seen if s.path.startswith(f"{V}/query")]
    assert queried[0].query == [("q", "SELECT Id, Name FROM Account")]
    assert queried[1].query == []
    assert queried[1].headers["authorization"] == f"Bearer {token}"

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


async def test_an_expired_session_is_refreshed_once_and_the_call_retried(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    org = salesforce_org(upstream)
    created = await install(
        app_client,
        tenant,
        "salesforce",
        credentials={"client_id": CONSUMER_KEY, "client_secret": CONSUMER_SECRET},
        config_overrides={"my_domain": "acme.my.salesforce.com"},
    )
    integration_id = created["integration_id"]
    first = await connect_web_server_flow(app_client, tenant, org, integration_id)
    org.access_tokens.append("00Dxx!revoked-by-an-admin")  # the org ends the session

    result = await execute(
        app_client, tenant, integration_id, "query", {"soql": "SELECT Id FROM Account"}
    )

    assert result["success"] is True, (result["error"], result["metadata"])
    assert org.grants == ["authorization_code", "refresh_token"]
    renewed = org.access_tokens[-1]
    assert renewed not in (first, "00Dxx!revoked-by-an-admin")
    queried = [s for s in upstream.seen if s.path.startswith(f"{V}/query")]
    assert [s.headers["authorization"] for s in queried] == [
        f"Bearer {first}",
        f"Bearer {renewed}",
        f"Bearer {renewed}",
    ]
    shown = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert shown.json()["auth_status"] == "ok"
    assert shown.json()["base_url"] == "https://acme.my.salesforce.com"
    for secret in (first, renewed, CONSUMER_SECRET, *org.refresh_tokens):
        assert secret not in shown.text
        assert secret not in str(result)


async def test_the_jwt_bearer_flow_signs_an_assertion_and_calls_the_instance(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    org = salesforce_org(upstream, key.public_key())
    wizard = await app_client.get(
        "/api/v2/marketplace/items/salesforce-jwt/wizard", headers=tenant.headers
    )
    assert wizard.status_code == 200, wizard.text
    created = await install(
        app_client,
        tenant,
        "salesforce-jwt",
        credentials={"client_id": CONSUMER_KEY, "private_key": pem},
        config_overrides={"my_domain": "acme.my.salesforce.com", "username": USERNAME},
    )
    assert created["auth_config"]["oauth2_flow"] == "jwt_bearer"
    assert created["auth_config"]["credentials"]["private_key"] == "********"
    assert created["auth_config"]["credentials"]["claims"] == {"sub": USERNAME, "aud": AUDIENCE}
    integration_id = created["integration_id"]
    await to_loopback(app_client, tenant, integration_id, upstream)

    result = await execute(
        app_client, tenant, integration_id, "query", {"soql": "SELECT Id FROM Account"}
    )

    assert result["success"] is True, result
    assert [r["Id"] for r in result["data"]] == ["001A", "001B", "001C"]
    assert org.grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]  # one token, two pages
    queried = [s for s in upstream.seen if s.path.startswith(f"{V}/query")]
    assert {s.headers["authorization"] for s in queried} == {f"Bearer {org.access_tokens[-1]}"}
    shown = await app_client.get(f"/api/v2/integrations/{integration_id}", headers=tenant.headers)
    assert "BEGIN PRIVATE KEY" not in shown.text
    assert org.access_tokens[-1] not in shown.text


async def test_a_jwt_signed_with_the_wrong_key_is_auth_failed_and_calls_nothing(
    app_client: httpx.AsyncClient, tenant: Tenant, upstream: Upstream
) -> None:
    trusted = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    org = salesforce_org(upstream, trusted.public_key())
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    created = await install(
        app_client,
        tenant,
        "salesforce-jwt",
        credentials={"client_id": CONSUMER_KEY, "private_key": pem},
        config_overrides={"my_domain": "acme.my.salesforce.com", "username": USERNAME},
    )
    await to_loopback(app_client, tenant, created["integration_id"], upstream)

    result = await execute(app_client, tenant, created["integration_id"], "query", {"soql": "x"})

    assert result["success"] is False
    assert result["error"]["code"] == "auth_failed"
    assert "invalid_grant: invalid assertion" in result["error"]["message"]
    assert org.access_tokens == []
    assert not [s for s in upstream.seen if s.path.startswith(V)]
