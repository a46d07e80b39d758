"""The service's HTTP contract, as the benchmark uses it (setup and verification only).

Nothing here imports the service: keys, integrations and executions go through
`/api/v2/...` exactly as a caller would (docs: shared/docs/api-contract.md). Requests go through
a urllib opener with proxies disabled, and only to 127.0.0.1.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from bench.procs import BenchError

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Api:
    """A tiny JSON client for one base URL on 127.0.0.1."""

    def __init__(self, base_url: str) -> None:
        if not base_url.startswith("http://127.0.0.1:"):
            raise BenchError(f"refusing to talk to {base_url}: the benchmark only uses 127.0.0.1")
        self.base_url = base_url

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        tenant: str | None = None,
        timeout: float = 30.0,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, parsed JSON body or None)."""
        headers = {"Accept": "application/json", **(extra_headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if tenant is not None:
            headers["X-Tenant-ID"] = tenant
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise BenchError(f"{method} {self.base_url}{path} failed: {exc}") from None
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, parsed


def _problem(status: int, body: Any) -> str:
    if isinstance(body, dict):
        errors = body.get("errors") or []
        located = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', []))}: {error.get('msg')}"
            for error in errors
            if isinstance(error, dict)
        )
        return f"{status} {body.get('detail', '')} {located}".strip()
    return f"{status} {str(body)[:300]}"


def create_tenant_key(api: Api, admin_key: str, tenant: str) -> str:
    """`POST /api/v2/admin/api-keys` → the plain tenant key."""
    status, body = api.call(
        "POST", "/api/v2/admin/api-keys", {"tenant_id": tenant, "name": "bench"}, token=admin_key
    )
    if status != 201 or not isinstance(body, dict) or "api_key" not in body:
        raise BenchError(f"creating a tenant key failed: {_problem(status, body)}")
    return str(body["api_key"])


def create_integration(api: Api, key: str, tenant: str, spec: dict[str, Any]) -> str:
    """`POST /api/v2/integrations` → integration_id (a 422 names every field at fault)."""
    status, body = api.call("POST", "/api/v2/integrations", spec, token=key, tenant=tenant)
    if status != 201 or not isinstance(body, dict) or "integration_id" not in body:
        raise BenchError(
            f"creating integration {spec.get('name')!r} failed: {_problem(status, body)}"
        )
    return str(body["integration_id"])


def delete_integration(api: Api, key: str, tenant: str, integration_id: str) -> None:
    """Best-effort removal (used for the persistent PostgreSQL database)."""
    try:
        api.call("DELETE", f"/api/v2/integrations/{integration_id}", token=key, tenant=tenant)
    except BenchError:
        pass


def execute(
    api: Api, key: str, tenant: str, integration_id: str, endpoint: str, body: dict[str, Any]
) -> dict[str, Any]:
    """`POST /api/v2/execute/{id}/{endpoint}` → the ExecutionResult (HTTP 200 required)."""
    status, result = api.call(
        "POST", f"/api/v2/execute/{integration_id}/{endpoint}", body, token=key, tenant=tenant
    )
    if status != 200 or not isinstance(result, dict):
        raise BenchError(f"execute {endpoint} answered {_problem(status, result)}")
    return result


def mcp_call(
    api: Api, key: str, tenant: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """`POST /mcp` with one JSON-RPC request → its `result` (HTTP 200 and no error required)."""
    status, reply = api.call("POST", "/mcp", body, token=key, tenant=tenant, extra_headers=headers)
    if status != 200 or not isinstance(reply, dict) or not isinstance(reply.get("result"), dict):
        raise BenchError(f"MCP {body.get('method')} answered {_problem(status, reply)}")
    result: dict[str, Any] = reply["result"]
    return result
