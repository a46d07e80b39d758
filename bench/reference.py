"""The reference proxy: what a hand-written FastAPI proxy for the mapped scenario costs.

The smallest honest app that does the same hop as the service's `execute_mapped` scenario:
it takes the same `POST` body, evaluates the same three request-mapping JMESPath expressions
(query `limit` and `email`, header `X-Locale`) against the same input document (input_data with
`context` merged in), calls the upstream with aiohttp on a pooled keep-alive session with the
same API-key header, parses the 36 KB body with orjson, applies the same `data_path` (filter
and multiselect over the 100 items), the same two transforms with the same libraries (epoch →
`%Y-%m-%d` with datetime, minor units → money text with babel, currency read per item), renders
the same summary sentence, and answers an ExecutionResult-shaped JSON body with orjson.

And nothing else: no API keys, tenancy, input validation, rate limits, circuit breaker,
response cache, execution logs or metrics. It runs exactly like the service: uvicorn with
uvloop and httptools, one worker, access log off, pinned to the service's core. Its answer's
`data` is checked to equal the service's expected data before it is measured, so the two do
the same work.

`POST /execute_plain` is the same floor for `execute_plain`: the hop for the small body with no
mapping (scenario `reference_plain`, reported, not gated).

Run: `python -m bench.reference --port 8010 --upstream http://127.0.0.1:8011`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import babel
import babel.numbers
import jmespath
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from bench.scenarios import (
    CURRENCY_LOCALE,
    DATA_PATH,
    DATE_FORMAT,
    HEADER_MAPPING,
    QUERY_MAPPING,
    UPSTREAM_API_KEY,
)

UPSTREAM_PATH = "/customers"
PLAIN_PATH = "/small"
POOL_SIZE = 20
"""Upstream connections, as the service's default CONNECTION_POOL_SIZE."""
TIMEOUT_S = 5.0
"""Upstream timeout, as the service's default DEFAULT_TIMEOUT_MS."""


def create_app(upstream: str) -> FastAPI:
    """The proxy for `upstream` (a base URL such as http://127.0.0.1:8011)."""
    url = upstream.rstrip("/") + UPSTREAM_PATH
    plain_url = upstream.rstrip("/") + PLAIN_PATH
    plain_headers = {"X-API-Key": UPSTREAM_API_KEY}
    query = {name: jmespath.compile(source) for name, source in QUERY_MAPPING.items()}
    headers = {name: jmespath.compile(source) for name, source in HEADER_MAPPING.items()}
    data_path = jmespath.compile(DATA_PATH)
    locale = babel.Locale.parse(CURRENCY_LOCALE)
    session: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal session
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=POOL_SIZE),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
        )
        try:
            yield
        finally:
            await session.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    def money(amount: Any, currency: Any) -> Any:
        code = str(currency).upper()
        value = Decimal(amount).scaleb(-babel.numbers.get_currency_precision(code))
        return babel.numbers.format_currency(value, code, locale=locale)

    @app.get("/health")
    async def health() -> Response:
        return Response(b"{}", media_type="application/json")

    @app.post("/execute_plain")
    async def execute_plain(request: Request) -> Response:
        # The floor for execute_plain: the same hop for the small body, no mapping at all.
        started = time.perf_counter()
        orjson.loads(await request.body())
        assert session is not None
        async with session.get(plain_url, headers=plain_headers) as upstream_response:
            status = upstream_response.status
            raw = await upstream_response.read()
        result = {
            "success": status < 400,
            "data": orjson.loads(raw),
            "execution_time_ms": round((time.perf_counter() - started) * 1000),
            "metadata": {"status_code": status},
        }
        return Response(orjson.dumps(result), media_type="application/json")

    @app.post("/execute")
    async def execute(request: Request) -> Response:
        started = time.perf_counter()
        payload = orjson.loads(await request.body())
        document = dict(payload.get("input_data") or {})
        document["context"] = payload.get("context") or {}
        params = {
            name: str(value)
            for name, expression in query.items()
            if (value := expression.search(document)) is not None
        }
        sent = {
            name: str(value)
            for name, expression in headers.items()
            if (value := expression.search(document)) is not None
        }
        sent["X-API-Key"] = UPSTREAM_API_KEY
        assert session is not None
        async with session.get(url, params=params, headers=sent) as upstream_response:
            status = upstream_response.status
            raw = await upstream_response.read()
        if status >= 400:
            failed = {
                "success": False,
                "error": {"code": "upstream_error", "message": f"upstream answered {status}"},
                "metadata": {"status_code": status},
            }
            return Response(orjson.dumps(failed), media_type="application/json")
        data = data_path.search(orjson.loads(raw))
        for item in data:
            item["created"] = datetime.fromtimestamp(item["created"], tz=UTC).strftime(DATE_FORMAT)
            item["balance"] = money(item["balance"], item["currency"])
        result = {
            "success": True,
            "data": data,
            "execution_time_ms": round((time.perf_counter() - started) * 1000),
            "metadata": {
                "status_code": status,
                "summary": f"{len(data)} customers with a balance",
            },
        }
        return Response(orjson.dumps(result), media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="upstream base URL on 127.0.0.1")
    args = parser.parse_args()
    if not args.upstream.startswith("http://127.0.0.1:"):
        parser.error("--upstream must be on 127.0.0.1")
    uvicorn.run(
        create_app(args.upstream),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
