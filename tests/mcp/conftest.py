"""MCP tests: the app served over real HTTP (uvicorn on a loopback port), the official SDK's
client over Streamable HTTP, and Prism serving Stripe's own description as the upstream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from fastapi import FastAPI
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.prism import ROOT, free_port, run_prism


@pytest.fixture(scope="session")
def stripe_prism() -> Iterator[str]:
    with run_prism(ROOT / "examples" / "openapi" / "stripe.json") as base_url:
        yield base_url


@asynccontextmanager
async def live_server(app: FastAPI) -> AsyncIterator[str]:
    """`app` under uvicorn on a free loopback port, lifespan and all; yields its URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            pytest.fail("the server stopped before it started")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    async with live_server(app) as url:
        yield url


@pytest.fixture
async def api(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        yield client


@asynccontextmanager
async def mcp_client(
    base_url: str, headers: dict[str, str], **options: Any
) -> AsyncIterator[Client]:
    """The SDK's client on `/mcp` with these HTTP headers (the API key)."""
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30)) as http:
        transport = streamable_http_client(f"{base_url}/mcp", http_client=http)
        async with Client(transport, **options) as client:
            yield client
