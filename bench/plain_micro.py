"""Micro-benchmark of our own per-request work on `execute_plain`, stage by stage.

Run from the repository root: `.venv/bin/python -m bench.plain_micro` (nginx needed, as for the
benchmark). Options: `--calls N` per round, `--rounds N`, `--cpu N` (core for this process;
nginx goes on the other one).

The service runs in this process (SQLite and the in-process store in a temp `DATA_DIR`, as the
benchmark's `service`), set up through its HTTP contract; nginx serves the same small body on
loopback. Each stage is then called `--calls` times in a row, `--rounds` times, and the best
round's CPU time of this process (every thread, so the log writer's too) per call is reported,
with its wall time. The stages, in the order a request meets them:

- `parse`         the execute body into `ExecutionRequest` (the direct route's validation)
- `key_check`     `KeyService.authenticate` of the tenant key, and the tenant check
- `runtime`       the integration's runtime from the in-process cache
- `map_request`   input validation and request mapping of `get_customer`
- `upstream_call` the protocol adapter's call alone: auth header, HTTP GET, JSON parse
- `result_json`   the `ExecutionResult` JSON from the result document, secrets scrubbed
- `pipeline`      `execute_serialised`: all of the execution (runtime to result JSON,
                  breaker, log queued and written, metrics) including `upstream_call`
- `direct_route`  the middleware's direct execute route through ASGI (what uvicorn calls):
                  body read, headers, `parse`, `key_check`, `pipeline`, response messages
- `bare_hop`      a pooled aiohttp GET of the same body with orjson, nothing else: the floor
                  the reference proxy stands on

`pipeline - upstream_call` is the execution pipeline's own cost, and `direct_route -
pipeline` the route's. Compare runs on one machine only, and before and after a change.
`--profile STAGE` runs one stage under cProfile instead and prints its top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from asgi_lifespan import LifespanManager

from adaptor.app import create_app
from adaptor.config import Settings
from adaptor.dependencies import resolve_tenant
from adaptor.domain import ExecutionRequest
from adaptor.executions.service import _serialise, input_document, scrub_secrets
from adaptor.observability.logging import configure_logging
from adaptor.protocols.base import CallContext
from adaptor.services import Services
from bench.procs import pin_self
from bench.scenarios import (
    ADMIN_API_KEY,
    ENCRYPTION_KEY,
    EXECUTE_BODY,
    PLAIN_ENDPOINT,
    TENANT,
    expected_plain_data,
    integration_spec,
)
from bench.upstream import Nginx

Stage = Callable[[], Awaitable[object]]


async def _best(stage: Stage, calls: int, rounds: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call of the best round (lowest CPU)."""
    for _ in range(max(calls // 10, 20)):  # warm-up
        await stage()
    best_cpu, best_wall = float("inf"), float("inf")
    for _ in range(rounds):
        cpu, wall = time.process_time_ns(), time.perf_counter_ns()
        for _ in range(calls):
            await stage()
        cpu_us = (time.process_time_ns() - cpu) / calls / 1000
        if cpu_us < best_cpu:
            best_cpu, best_wall = cpu_us, (time.perf_counter_ns() - wall) / calls / 1000
    return best_cpu, best_wall


async def _setup(client: httpx.AsyncClient, upstream: str) -> tuple[str, str]:
    """A tenant key and the benchmark's integration, through the HTTP contract."""
    admin = {"Authorization": f"Bearer {ADMIN_API_KEY}"}
    created = await client.post(
        "/api/v2/admin/api-keys", json={"tenant_id": TENANT, "name": "micro"}, headers=admin
    )
    created.raise_for_status()
    key = str(created.json()["api_key"])
    headers = {"Authorization": f"Bearer {key}", "X-Tenant-ID": TENANT}
    response = await client.post(
        "/api/v2/integrations", json=integration_spec(upstream), headers=headers
    )
    response.raise_for_status()
    return key, str(response.json()["integration_id"])


def _direct_route(app: Any, key: str, path: str, body: bytes) -> Stage:
    """One call of the ASGI app on the execute route, as uvicorn makes it."""
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"x-tenant-id", TENANT.encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    message = {"type": "http.request", "body": body, "more_body": False}
    checked = False

    async def receive() -> dict[str, Any]:
        return message

    async def call() -> None:
        nonlocal checked
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "app": app,
        }
        sent: list[dict[str, Any]] = []

        async def send(out: dict[str, Any]) -> None:
            sent.append(out)

        await app(scope, receive, send)
        if not checked:
            answer = orjson.loads(sent[-1]["body"])
            if sent[0]["status"] != 200 or answer["data"] != expected_plain_data():
                raise SystemExit(f"direct_route answered {sent[0]['status']}: {answer}")
            checked = True

    return call


async def _run(args: argparse.Namespace, workdir: Path) -> None:
    nginx = Nginx(workdir, args.load_cpu)
    try:
        nginx.wait_ready()
        data_dir = workdir / "data"
        data_dir.mkdir()
        settings = Settings(
            postgres_uri=None,
            redis_url=None,
            data_dir=data_dir,
            admin_api_key=ADMIN_API_KEY,
            encryption_key=ENCRYPTION_KEY,
            allow_private_networks=True,
            log_level="warning",
        )
        configure_logging(settings.log_level)  # as `adaptor serve` does
        app = create_app(settings)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://adaptor.test"
            ) as client,
            aiohttp.ClientSession() as session,
        ):
            await _stages(args, manager.app, app.state.services, client, session, nginx)
    finally:
        nginx.stop()


async def _stages(
    args: argparse.Namespace,
    asgi: Any,
    services: Services,
    client: httpx.AsyncClient,
    session: aiohttp.ClientSession,
    nginx: Nginx,
) -> None:
    key, integration_id = await _setup(client, nginx.base_url)
    body = orjson.dumps(EXECUTE_BODY)
    request = ExecutionRequest.model_validate_json(body)
    authorization = f"Bearer {key}"
    executions = services.executions
    runtime = await executions.runtimes.get(TENANT, integration_id)
    endpoint = runtime.endpoints[PLAIN_ENDPOINT]
    document = input_document(request.input_data, request.context)
    mapped = endpoint.compiled.map_request(document)
    request_data = {
        "path_params": mapped.path_params,
        "query_params": mapped.query_params,
        "headers": mapped.headers,
        "body": mapped.body or None,
    }
    adapter = runtime.adapter
    assert adapter is not None
    call = CallContext(endpoint.config, "micro")
    payload = await executions.execute_serialised(
        TENANT, integration_id, PLAIN_ENDPOINT, request.input_data, request.options
    )
    result = orjson.loads(payload)
    if result["data"] != expected_plain_data():
        raise SystemExit(f"execute_plain answered {result}")

    async def parse() -> object:
        return ExecutionRequest.model_validate_json(body)

    async def key_check() -> object:
        return resolve_tenant(await services.keys.authenticate(authorization), TENANT)

    async def load_runtime() -> object:
        return await executions.runtimes.get(TENANT, integration_id)

    async def map_request() -> object:
        endpoint.compiled.validate_input(document)
        return endpoint.compiled.map_request(document)

    async def upstream_call() -> object:
        return await adapter.execute(
            "/small", "GET", request_data, timeout_ms=30_000, deadline=None, call=call
        )

    async def result_json() -> object:
        return scrub_secrets(_serialise(result), runtime.secrets)

    async def pipeline() -> object:
        return await executions.execute_serialised(
            TENANT,
            integration_id,
            PLAIN_ENDPOINT,
            request.input_data,
            request.options,
            context=request.context,
        )

    async def bare_hop() -> object:
        async with session.get(f"{nginx.base_url}/small") as response:
            return orjson.loads(await response.read())

    route = f"/api/v2/execute/{integration_id}/{PLAIN_ENDPOINT}"
    stages: list[tuple[str, Stage]] = [
        ("parse", parse),
        ("key_check", key_check),
        ("runtime", load_runtime),
        ("map_request", map_request),
        ("upstream_call", upstream_call),
        ("result_json", result_json),
        ("pipeline", pipeline),
        ("direct_route", _direct_route(asgi, key, route, body)),
        ("bare_hop", bare_hop),
    ]
    if args.profile:
        stage = dict(stages)[args.profile]
        await _best(stage, args.calls, 1)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.calls):
            await stage()
        profiler.disable()
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
        return
    print(f"execute_plain, our own work per request ({args.rounds} rounds of {args.calls} calls,")
    print("best round; CPU of this process, every thread):")
    print(f"  {'stage':<14} {'CPU us':>9} {'wall us':>9}")
    figures: dict[str, float] = {}
    for name, stage in stages:
        cpu_us, wall_us = await _best(stage, args.calls, args.rounds)
        figures[name] = cpu_us
        print(f"  {name:<14} {cpu_us:9.1f} {wall_us:9.1f}", flush=True)
        await services.execution_logs.flush()
    print(f"  pipeline - upstream_call   {figures['pipeline'] - figures['upstream_call']:8.1f}")
    print(f"  direct_route - pipeline    {figures['direct_route'] - figures['pipeline']:8.1f}")
    print(f"  upstream_call - bare_hop   {figures['upstream_call'] - figures['bare_hop']:8.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plain_micro", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (best one is reported)")
    parser.add_argument("--cpu", type=int, default=0, help="core for this process")
    parser.add_argument("--load-cpu", type=int, default=1, help="core for nginx")
    parser.add_argument(
        "--profile", metavar="STAGE", help="instead: cProfile one stage, top functions by self time"
    )
    parser.add_argument("--sort", default="tottime", help="with --profile: pstats sort key")
    parser.add_argument("--top", type=int, default=30, help="with --profile: how many lines")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        args.cpu = args.load_cpu = None
    if args.cpu is not None:
        pin_self(args.cpu)
    with tempfile.TemporaryDirectory(prefix="adaptor-micro-") as folder:
        workdir = Path(folder)
        workdir.chmod(0o755)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_run(args, workdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
