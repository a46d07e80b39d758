"""The data-protocol benchmark: `execute_db` against its reference, and `execute_publish`.

    .venv/bin/python -m bench.data            # 3 rounds; --quick for a smaller run

1. A PostgreSQL database of its own on `POSTGRES_URI`'s server (default the local one) with
   `bench_customers` (100 rows: int id, text name and email, NUMERIC balance, timestamptz
   created); dropped at the end. Redis Streams on `REDIS_URL` (default db 15), a stream of its
   own, deleted at the end with its deduplication keys.
2. The service (`adaptor serve`, SQLite logs, in-process store, like the main benchmark's
   `execute_plain`) and `bench/reference_db.py` (FastAPI + asyncpg), both pinned to the service
   core; wrk on the load core (see bench/README.md).
3. Through the HTTP contract: a `database` integration whose GET endpoint runs
   `SELECT id, name, email, balance, created FROM bench_customers WHERE id > :after ORDER BY id
   LIMIT 10`, and a `message_queue` integration publishing the mapped body to the stream.
4. Verification: the service answers exactly the reference's rows; a publish answers a receipt.
5. Rounds of interleaved points (scenario x concurrency 1 and 16); CPU µs per request of each
   server's process tree, medians with min-max. Gate: `execute_db` CPU per request at c16 within
   1.3x of `reference_db`'s. PostgreSQL's and Redis's own CPU is not in either figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench import contract
from bench.cli import ROOT, _service_process
from bench.loadgen import LoadGenerator, Target
from bench.procs import (
    BenchError,
    ManagedProcess,
    child_env,
    cpu_ns,
    free_port,
    pin_self,
    wait_http_ok,
)
from bench.scenarios import ADMIN_API_KEY, TENANT

DEFAULT_OUT = ROOT / "bench" / "results" / "data-latest.json"
CPU_RATIO_TARGET = 1.3
BODY = {"input_data": {"variables": {"after": 40}}, "context": {}, "options": {}}
PUBLISH_BODY = {"input_data": {"order": {"id": "ord_1", "total": 42.5}}, "options": {}}
REQUESTS = {1: 1_000, 16: 2_000}
QUICK_REQUESTS = {1: 200, 16: 400}


@dataclass
class Point:
    name: str
    target: Target
    server: ManagedProcess
    cpu: dict[int, list[float]] = field(default_factory=dict)
    rps: dict[int, list[float]] = field(default_factory=dict)
    p50: dict[int, list[float]] = field(default_factory=dict)


async def _setup_database(admin_uri: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_uri)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(_database_uri(admin_uri, name))
    try:
        await conn.execute(
            "CREATE TABLE bench_customers (id int PRIMARY KEY, name text, email text, "
            "balance numeric(12, 2), created timestamptz);"
            "INSERT INTO bench_customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com',"
            " g * 10.25, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour'"
            " FROM generate_series(1, 100) g"
        )
    finally:
        await conn.close()


async def _drop_database(admin_uri: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_uri)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _drop_stream(redis_url: str, stream: str) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [stream, *[key async for key in client.scan_iter(f"{stream}:adaptor-msgid:*")]]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


def _database_uri(admin_uri: str, name: str) -> str:
    return f"{admin_uri.rsplit('/', 1)[0]}/{name}"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _run(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> int:
    admin_uri = os.environ.get("POSTGRES_URI") or "postgresql://postgres@127.0.0.1:5432/test"
    admin_uri = admin_uri.replace("postgresql+asyncpg://", "postgresql://")
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    if "127.0.0.1" not in admin_uri or "127.0.0.1" not in redis_url:
        raise BenchError("the benchmark only uses PostgreSQL and Redis on 127.0.0.1")
    database = f"adaptor_bench_db_{uuid.uuid4().hex[:8]}"
    stream = f"adaptor-bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(_setup_database(admin_uri, database))
    stack.callback(lambda: asyncio.run(_drop_database(admin_uri, database)))
    stack.callback(lambda: asyncio.run(_drop_stream(redis_url, stream)))
    dsn = _database_uri(admin_uri, database)
    pin_self(args.load_cpu)

    service, service_url = _service_process("service", workdir, args.service_cpu, full=False)
    stack.callback(service.stop)
    port = free_port()
    reference = ManagedProcess(
        "reference_db",
        [sys.executable, "-m", "bench.reference_db", "--port", str(port), "--dsn", dsn],
        cpu=args.service_cpu,
        log_dir=workdir,
        env=child_env({"PYTHONPATH": str(ROOT)}, drop=("POSTGRES_URI", "REDIS_URL")),
        cwd=ROOT,
    )
    stack.callback(reference.stop)
    reference_url = f"http://127.0.0.1:{port}"
    wait_http_ok(service, f"{service_url}/health/live")
    wait_http_ok(reference, f"{reference_url}/health")

    api = contract.Api(service_url)
    key = contract.create_tenant_key(api, ADMIN_API_KEY, TENANT)
    db_id = contract.create_integration(
        api,
        key,
        TENANT,
        {
            "name": "Bench database",
            "type": "database",
            "category": "database",
            "base_url": dsn,
            "retry_config": {"max_retries": 0},
            "endpoints": {
                "list_customers": {
                    "method": "GET",
                    "query": "SELECT id, name, email, balance, created FROM bench_customers "
                    "WHERE id > :after ORDER BY id LIMIT 10",
                    "request_mapping": {"body": {"after": "variables.after"}},
                }
            },
        },
    )
    queue_id = contract.create_integration(
        api,
        key,
        TENANT,
        {
            "name": "Bench events",
            "type": "message_queue",
            "category": "events",
            "base_url": redis_url,
            "retry_config": {"max_retries": 0},
            "endpoints": {
                "publish": {
                    "method": "POST",
                    "path": stream,
                    "request_mapping": {"body": {"order_id": "order.id", "total": "order.total"}},
                }
            },
        },
    )

    # verification: the same rows as the reference, and a confirmed publish
    status, expected = contract.Api(reference_url).call("POST", "/execute_db", BODY)
    if status != 200 or not isinstance(expected, dict) or len(expected["data"]) != 10:
        raise BenchError(f"reference_db answered {status}: {expected}")
    result = contract.execute(api, key, TENANT, db_id, "list_customers", BODY)
    if result.get("data") != expected["data"]:
        raise BenchError(f"execute_db answered other rows: {result}")
    published = contract.execute(api, key, TENANT, queue_id, "publish", PUBLISH_BODY)
    if not published.get("success") or "id" not in (published.get("data") or {}):
        raise BenchError(f"execute_publish failed: {published}")
    print("bench.data: verified: the service answers the reference's rows; publish confirmed")

    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {key}",
        "X-Tenant-ID": TENANT,
    }
    ok = '"success":true'
    points = [
        Point(
            "reference_db",
            Target(
                "reference_db",
                f"{reference_url}/execute_db",
                "POST",
                {"Content-Type": "application/json"},
                orjson.dumps(BODY),
                ok,
            ),
            reference,
        ),
        Point(
            "execute_db",
            Target(
                "execute_db",
                f"{service_url}/api/v2/execute/{db_id}/list_customers",
                "POST",
                headers,
                orjson.dumps(BODY),
                ok,
            ),
            service,
        ),
        Point(
            "execute_publish",
            Target(
                "execute_publish",
                f"{service_url}/api/v2/execute/{queue_id}/publish",
                "POST",
                headers,
                orjson.dumps(PUBLISH_BODY),
                ok,
            ),
            service,
        ),
    ]
    sizes = QUICK_REQUESTS if args.quick else REQUESTS
    load = LoadGenerator(workdir, args.load_cpu)
    for point in points:
        load.run(point.target, sizes[16], 16, cap_s=600)  # warm-up, not recorded
    for round_number in range(args.rounds):
        for concurrency in (1, 16):
            for point in points:
                before = cpu_ns(point.server.pid)
                measured = load.run(point.target, sizes[concurrency], concurrency, cap_s=600)
                used_ns = cpu_ns(point.server.pid) - before
                point.cpu.setdefault(concurrency, []).append(used_ns / 1000 / measured.requests)
                point.rps.setdefault(concurrency, []).append(measured.rps)
                point.p50.setdefault(concurrency, []).append(measured.p50_ms)
        print(f"bench.data: round {round_number + 1}/{args.rounds} done", flush=True)

    print()
    print(f"{'scenario':<18}{'c':>4}{'req/s':>10}{'p50 ms':>9}   CPU us/req median [min-max]")
    for concurrency in (1, 16):
        for point in points:
            cpu = point.cpu[concurrency]
            print(
                f"{point.name:<18}{concurrency:>4}{_median(point.rps[concurrency]):>10.0f}"
                f"{_median(point.p50[concurrency]):>9.2f}   "
                f"{_median(cpu):.0f} [{min(cpu):.0f}-{max(cpu):.0f}]"
            )
    service_cpu = _median(points[1].cpu[16])
    reference_cpu = _median(points[0].cpu[16])
    ratio = service_cpu / reference_cpu if reference_cpu else float("inf")
    met = ratio <= CPU_RATIO_TARGET
    print()
    print(
        f"gate cpu_ratio_db_vs_reference (c16): {ratio:.2f} (target <= {CPU_RATIO_TARGET}) "
        f"{'met' if met else 'MISSED'}"
    )
    results = {
        "meta": {
            "rounds": args.rounds,
            "requests": sizes,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "scenarios": {
            point.name: {
                f"c{c}": {
                    "cpu_us_per_req": {"median": _median(point.cpu[c]), "runs": point.cpu[c]},
                    "rps": {"median": _median(point.rps[c]), "runs": point.rps[c]},
                    "p50_ms": {"median": _median(point.p50[c]), "runs": point.p50[c]},
                }
                for c in (1, 16)
            }
            for point in points
        },
        "gates": {
            "cpu_ratio_db_vs_reference": {
                "value": ratio,
                "target": CPU_RATIO_TARGET,
                "met": met,
            }
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"bench.data: results in {args.out}")
    return 0 if met or not args.check_gates else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.data", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests per point")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--service-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check-gates", action="store_true", help="exit 1 when the gate is missed")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="adaptor-bench-data-"))
    try:
        with contextlib.ExitStack() as stack:
            return _run(args, workdir, stack)
    except BenchError as exc:
        print(f"bench.data: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench.data: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
