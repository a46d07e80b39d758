"""oauth2-mock-server (from npm) as the OAuth2 authorization server of the tests.

One server per test session (`tests/servers/oauth2-mock-server/serve.mjs`); each test registers
a client of its own, so its token-request counts are its own.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

SERVER_DIR = Path(__file__).resolve().parents[1] / "servers" / "oauth2-mock-server"


@dataclass
class Client:
    client_id: str
    client_secret: str


class Provider:
    """A running oauth2-mock-server."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.token_url = f"{issuer}/token"
        self.authorization_url = f"{issuer}/authorize"

    def client(self, ttl_s: int = 3600) -> Client:
        """Register a new client whose access tokens live `ttl_s` seconds."""
        client = Client(f"client-{uuid.uuid4().hex[:10]}", f"secret-{uuid.uuid4().hex}")
        response = httpx.post(
            f"{self.issuer}/_clients",
            json={
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "ttl_s": ttl_s,
            },
        )
        assert response.status_code == 201, response.text
        return client

    def stats(self, client: Client) -> dict[str, Any]:
        """{"token_requests": {grant: n}, "refused_refresh_tokens": n, "revoked": n}."""
        response = httpx.get(f"{self.issuer}/_stats/{client.client_id}")
        assert response.status_code == 200, response.text
        stats: dict[str, Any] = response.json()
        return stats

    def token_requests(self, client: Client, grant: str | None = None) -> int:
        counts: dict[str, int] = self.stats(client)["token_requests"]
        return sum(counts.values()) if grant is None else counts.get(grant, 0)

    def revoke_all(self, client: Client) -> None:
        """Revoke every refresh token issued to `client` (as a person would at the provider)."""
        response = httpx.post(f"{self.issuer}/revoke", data={"client_id": client.client_id})
        assert response.status_code == 200

    def consent(self, authorization_url: str) -> str:
        """What a browser does: follow the consent URL; the callback URL it redirects to."""
        response = httpx.get(authorization_url, follow_redirects=False)
        assert response.status_code == 302, response.text
        return response.headers["location"]


@contextmanager
def run_provider() -> Iterator[Provider]:
    binary = SERVER_DIR / "node_modules" / ".bin" / "oauth2-mock-server"
    if not binary.exists():
        pytest.fail(
            f"oauth2-mock-server is not installed: run `./dev test` (npm ci in {SERVER_DIR})"
        )
    process = subprocess.Popen(
        ["node", str(SERVER_DIR / "serve.mjs"), "0"],
        cwd=SERVER_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            stderr = process.stderr.read() if process.stderr else ""
            pytest.fail(f"oauth2-mock-server did not start: {stderr[-2000:]}")
        yield Provider(json.loads(line)["issuer"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
