"""Schemathesis (every check: its default, as `--checks all`, so that `tests/schemathesis.toml`
can turn one off per operation) against `/openapi.json` of a running service: requests the
document describes as valid are served, invalid ones refused, answers match the document, and
405s list the path's methods. Every non-executing operation is exercised with a few examples, so
the run stays well under a minute; the execute, batch and test routes are left out (they call
upstreams). `tests/schemathesis.toml` lists the rules no schema can state."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from adaptor.app import create_app
from tests.conftest import ADMIN_KEY, Backend, make_settings
from tests.prism import ROOT, free_port

CONFIG = ROOT / "tests" / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).parent / "st"


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service on a real loopback socket, started once for this module."""
    data = Path(tmp_path_factory.mktemp("conformance"))
    app = create_app(make_settings(data, Backend("embedded", None, None)))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the service did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_the_api_conforms_to_its_openapi_document(live_url: str, tmp_path: Path) -> None:
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{live_url}/openapi.json",
        "--max-examples",
        "5",
        "--generation-deterministic",
        "--phases",
        "examples,coverage,fuzzing",
        "--exclude-path-regex",
        r"^/api/v2/execute|/test(-cases)?$",
        "--header",
        f"Authorization: Bearer {ADMIN_KEY}",
        "--header",
        "X-Tenant-ID: conformance",
        "--max-failures",
        "50",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(  # in tmp_path: schemathesis keeps a crash cache in its cwd
        command, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout or "passed" in result.stdout
