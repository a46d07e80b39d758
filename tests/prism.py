"""Prism (`@stoplight/prism-cli`, pinned in tests/servers/prism) serving a vendor's OpenAPI
description on a free loopback port: a real upstream that enforces the described auth,
parameters and content types.

    with run_prism(FIXTURES / "stripe.json") as base_url:
        ...

Start one per test session (a session-scoped fixture): Prism takes a few seconds to load a
large document.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port, stop_process_group

ROOT = Path(__file__).resolve().parent.parent
PRISM = ROOT / "tests" / "servers" / "prism" / "node_modules" / ".bin" / "prism"


OPENAPI_FIXTURES = ROOT / "tests" / "fixtures" / "openapi"
"""The vendors' descriptions the tests serve and import: the trimmed ones (Stripe and HubSpot are
links to `examples/openapi/`), and whole documents in `full/` (see the README there)."""


@contextmanager
def run_prism(document: Path, *, timeout_s: float = 60.0) -> Iterator[str]:
    """Serve `document` with `prism mock`; yields its base URL (`http://127.0.0.1:PORT`)."""
    if not PRISM.exists():
        pytest.fail(f"Prism is not installed at {PRISM}: run ./dev test (it runs npm ci)")
    if not document.exists():
        pytest.fail(f"OpenAPI document {document} is missing")
    port = free_port()
    process = subprocess.Popen(
        [str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(port), str(document)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                pytest.fail(f"Prism exited with {process.returncode}: {error[-2000:]}")
            try:
                httpx.get(base_url + "/", timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Prism did not answer on {base_url} within {timeout_s:.0f} s")
                time.sleep(0.2)
        yield base_url
    finally:
        stop_process_group(process)
        if process.stderr is not None:
            process.stderr.close()
