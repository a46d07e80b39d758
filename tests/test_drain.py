"""Graceful drain: SIGTERM to a real `adaptor serve` under load loses no log and no event.

The service runs as its own process (SQLite in a temp DATA_DIR, events to a Redis stream of the
machine's Redis), executing against a slow loopback upstream from several concurrent clients.
After SIGTERM: readiness answers 503 `draining`, requests already accepted finish, the process
exits, and every execution that was answered 200 has its row in `execution_logs` and its
`adaptor.execution.completed` event on the stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from tests.conftest import ADMIN_KEY, ENCRYPTION_KEY
from tests.executions.upstream import Reply, serve_upstream
from tests.integrations.payloads import rest_integration
from tests.kafka_server import free_port

ADAPTOR = str(Path(sys.executable).parent / "adaptor")
CLIENTS = 12


async def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    async with httpx.AsyncClient() as client:
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            if process.poll() is not None:
                pytest.fail(f"adaptor serve exited:\n{log.read_text()[-3000:]}")
            try:
                if (await client.get(f"{url}/health/ready", timeout=1)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail(f"adaptor serve not ready:\n{log.read_text()[-3000:]}")


async def test_sigterm_under_load_keeps_every_answered_execution(
    tmp_path: Path, redis_url: str
) -> None:
    stream = f"adaptor-test-drain-{uuid.uuid4().hex[:8]}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "ENVIRONMENT": "development",
        "DATA_DIR": str(tmp_path / "data"),
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "ADMIN_API_KEY": ADMIN_KEY,
        "ALLOW_PRIVATE_NETWORKS": "true",
        "EVENTS_URL": f"{redis_url}?stream={stream}",
        "SERVICE_NAME": f"adaptor-drain-{uuid.uuid4().hex[:6]}",
        "SHUTDOWN_DELAY_SECONDS": "1",
        "SHUTDOWN_GRACE_SECONDS": "10",
        "LOG_LEVEL": "info",
    }
    for name in ("POSTGRES_URI", "REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        env.pop(name, None)
    redis = Redis.from_url(redis_url)
    async with serve_upstream() as upstream:
        upstream.reply(
            "GET",
            "/customers/42",
            Reply(json={"data": {"id": 42, "email": "a@example.com"}}, delay_s=0.15),
        )
        with log.open("wb") as output:
            process = subprocess.Popen(
                [ADAPTOR, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            await _wait_ready(url, process, log)
            answered, readiness = await _load_then_sigterm(url, upstream.url, process)
            returncode = await asyncio.to_thread(process.wait, 60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    try:
        output_text = log.read_text()
        assert returncode in (0, -signal.SIGTERM), output_text[-3000:]
        assert "503 draining" in readiness, readiness
        assert len(answered) >= CLIENTS, "too little load to tell anything"
        with sqlite3.connect(tmp_path / "data" / "adaptor.db") as db:
            logged = {row[0] for row in db.execute("SELECT request_id FROM execution_logs")}
        events = [orjson.loads(fields[b"event"]) for _, fields in await redis.xrange(stream)]
        published = {
            event["data"]["request_id"]
            for event in events
            if event["type"] == "adaptor.execution.completed"
        }
        missing_logs = answered - logged
        missing_events = answered - published
        print(  # noqa: T201 - the closing note quotes these counts
            f"\ndrain: answered 200={len(answered)} logged={len(answered & logged)} "
            f"published={len(answered & published)} events on stream={len(events)}"
        )
        assert not missing_logs
        assert not missing_events
    finally:
        await redis.delete(stream)
        await redis.aclose()


async def _load_then_sigterm(
    url: str, upstream_url: str, process: subprocess.Popen[bytes]
) -> tuple[set[str], list[str]]:
    """Run clients until the service stops taking requests; SIGTERM after a second of load.
    Returns the request ids answered 200 and what readiness said after the signal."""
    answered: set[str] = set()
    readiness: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        key = await client.post(
            "/api/v2/admin/api-keys",
            json={"tenant_id": "drain", "name": "load"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert key.status_code == 201, key.text
        headers = {"Authorization": f"Bearer {key.json()['api_key']}", "X-Tenant-ID": "drain"}
        created = await client.post(
            "/api/v2/integrations", json=rest_integration(upstream_url), headers=headers
        )
        assert created.status_code == 201, created.text
        path = f"/api/v2/execute/{created.json()['integration_id']}/get_customer"
        stopped = asyncio.Event()

        async def worker() -> None:
            # A client of its own per worker: a refused connection ends only that worker.
            async with httpx.AsyncClient(base_url=url, timeout=30) as own:
                while True:
                    try:
                        response = await own.post(
                            path,
                            json={"input_data": {"variables": {"customer_id": "42"}}},
                            headers=headers,
                        )
                    except httpx.TransportError:
                        if stopped.is_set():
                            return
                        await asyncio.sleep(0.01)
                        continue
                    if response.status_code == 200:
                        answered.add(response.json()["request_id"])
                    elif stopped.is_set():
                        return

        async def watch_readiness() -> None:
            async with httpx.AsyncClient(base_url=url, timeout=2) as probe:
                while not stopped.is_set() or process.poll() is None:
                    try:
                        response = await probe.get("/health/ready")
                        readiness.append(f"{response.status_code} {response.json()['status']}")
                    except httpx.TransportError:
                        return
                    await asyncio.sleep(0.1)

        workers = [asyncio.create_task(worker()) for _ in range(CLIENTS)]
        await asyncio.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        stopped.set()
        watcher = asyncio.create_task(watch_readiness())
        await asyncio.wait_for(asyncio.gather(*workers), 60)
        await asyncio.wait_for(watcher, 60)
    return answered, readiness
