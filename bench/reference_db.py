"""The database reference: what a hand-written FastAPI + asyncpg endpoint for `execute_db` costs.

The smallest honest app doing what the service's `execute_db` scenario does: it takes the same
`POST` body, reads the same parameter (`input_data.variables.after`), runs the same
parameterised SELECT on a pooled asyncpg connection, makes the rows JSON-safe the same way
(NUMERIC as strings, timestamps RFC 3339) and answers an ExecutionResult-shaped JSON body with
orjson. Nothing else: no keys, tenancy, validation, read-only transaction, statement timeout,
limits, breaker, logs or metrics. It runs like the service: uvicorn with uvloop and httptools,
one worker, access log off, pinned to the service's core.

Run: `python -m bench.reference_db --port 8010 --dsn postgresql://postgres@127.0.0.1/db`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

QUERY = (
    "SELECT id, name, email, balance, created FROM bench_customers "
    "WHERE id > $1 ORDER BY id LIMIT 10"
)


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def create_app(dsn: str) -> FastAPI:
    pool: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool["pool"] = await asyncpg.create_pool(
            dsn, min_size=1, max_size=10, server_settings={"TimeZone": "UTC"}
        )
        try:
            yield
        finally:
            await pool["pool"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/execute_db")
    async def execute_db(request: Request) -> Response:
        started = time.perf_counter()
        body = orjson.loads(await request.body())
        after = body["input_data"]["variables"]["after"]
        async with pool["pool"].acquire() as conn:
            records = await conn.fetch(QUERY, after)
        data = [{key: json_value(value) for key, value in record.items()} for record in records]
        result = {
            "success": True,
            "data": data,
            "execution_time_ms": round((time.perf_counter() - started) * 1000),
            "metadata": {},
        }
        return Response(orjson.dumps(result), media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True, help="postgresql://... on 127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.dsn),
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
