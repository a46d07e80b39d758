"""Several real service processes sharing one PostgreSQL database and one Redis.

The module's replicas run `adaptor serve` on free loopback ports, after one `adaptor migrate`,
with ENVIRONMENT=production as a deployment would. They are always terminated, and an
unreachable PostgreSQL or Redis fails the tests that need them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY, ENCRYPTION_KEY, fresh_database
from tests.executions.upstream import Upstream, serve_upstream
from tests.ports import free_port

REPLICAS = 3
START_TIMEOUT_S = 60.0
ADAPTOR = str(Path(sys.executable).parent / "adaptor")


MEASURED: dict[str, dict[str, object]] = {}
"""What each test measured (upstream request counts, delays), shown after the run."""

Measure = Callable[[str, object], None]


@pytest.fixture
def measure(request: pytest.FixtureRequest) -> Measure:
    """Record a measurement of this test for the terminal summary."""

    def record(name: str, value: object) -> None:
        MEASURED.setdefault(request.node.name, {})[name] = value

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MEASURED:
        terminalreporter.section("replicas: measured")
        for test, values in MEASURED.items():
            shown = ", ".join(f"{name}={value}" for name, value in values.items())
            terminalreporter.write_line(f"{test}: {shown}")


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def replica_database() -> Iterator[str]:
    """A database of the module's own on the real PostgreSQL server."""
    with fresh_database("adaptor_replicas") as uri:
        yield uri


@pytest.fixture(scope="module")
def replicas(
    replica_database: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Replica]]:
    """`REPLICAS` running service processes, ready to serve."""
    root = tmp_path_factory.mktemp("replicas")
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "POSTGRES_URI": replica_database,
        "REDIS_URL": redis_url,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "ADMIN_API_KEY": ADMIN_KEY,
        "ALLOW_PRIVATE_NETWORKS": "true",
        "LOG_LEVEL": "warning",
    }
    migrated = subprocess.run(
        [ADAPTOR, "migrate"], env=env, capture_output=True, timeout=60, check=False
    )
    assert migrated.returncode == 0, migrated.stderr.decode()

    started: list[Replica] = []
    try:
        for n in range(REPLICAS):
            port = free_port()
            log = root / f"replica-{n}.log"
            with log.open("wb") as output:
                process = subprocess.Popen(
                    [ADAPTOR, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env={**env, "DATA_DIR": str(root / f"data-{n}")},
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            started.append(Replica(f"http://127.0.0.1:{port}", process, log))
        for replica in started:
            _wait_ready(replica)
        yield started
    finally:
        for replica in started:
            replica.process.terminate()
        for replica in started:
            try:
                replica.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(timeout=5)


def _wait_ready(replica: Replica) -> None:
    give_up = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < give_up:
        if replica.process.poll() is not None:
            pytest.fail(f"replica {replica.url} exited:\n{replica.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{replica.url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    log = replica.log.read_text()[-3000:]
    pytest.fail(f"replica {replica.url} not ready in {START_TIMEOUT_S}s:\n{log}")


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with serve_upstream() as server:
        yield server


@pytest.fixture
async def clients(replicas: list[Replica]) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per replica."""
    opened = [httpx.AsyncClient(base_url=replica.url, timeout=10) for replica in replicas]
    try:
        yield opened
    finally:
        for client in opened:
            await client.aclose()
