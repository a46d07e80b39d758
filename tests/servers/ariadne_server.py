"""The Ariadne GraphQL API (`tests/servers/ariadne/schema.py`, or the Shopify-like
`shopify.py`) served by uvicorn on a free loopback port, in a process of its own.

    with run_ariadne() as url:   # http://127.0.0.1:PORT/graphql/
        ...

Start it once per test session (a session-scoped fixture).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port, stop_process_group

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def run_ariadne(
    *,
    timeout_s: float = 30.0,
    app: str = "tests.servers.ariadne.schema:app",
    path: str = "/graphql/",
) -> Iterator[str]:
    """Serve the schema (`app`) with uvicorn; yields the GraphQL endpoint's URL (`path`)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}{path}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"the Ariadne server exited with {process.returncode}")
            try:
                httpx.post(url, json={"query": "{ __typename }"}, timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the Ariadne server did not answer on {url}")
                time.sleep(0.1)
        yield url
    finally:
        stop_process_group(process)
