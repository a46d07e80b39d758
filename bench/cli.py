"""Orchestration of `python -m bench`: set up, verify, measure interleaved rounds, report.

Method, in order:

1. Check that nginx and wrk exist (or stop with a one-line install hint; `--install-deps` runs
   apt-get for them). Pin this orchestrator to the load core.
2. Start, each pinned with taskset: nginx on the load core; on the service core the service
   under test (`.venv/bin/adaptor serve`, one worker, SQLite and in-process cache in a fresh
   DATA_DIR, fixed ADMIN_API_KEY and ENCRYPTION_KEY, ALLOW_PRIVATE_NETWORKS=true,
   LOG_LEVEL=warning, a free HTTP_PORT), the reference proxy (`bench/reference.py`) and, when
   POSTGRES_URI and REDIS_URL are set, a second service process using them (`execute_full`).
3. Through the HTTP contract only: create a tenant key and the integration on each service.
4. Verify every scenario once: nginx serves the exact bodies; each execution answers
   `success: true` with exactly the expected data and summary; the cached endpoint answers
   `cached: true` on its second call; the reference answers the same data as the service.
   Any difference stops the run: a benchmark of errors is worthless.
5. Warm every scenario up (unrecorded), then run R rounds; in each round every point
   (scenario x concurrency) runs once, so slow drifts (thermal, page cache, SQLite growth)
   spread over all points instead of biasing one. Each point sends a fixed number of requests
   through wrk, cut into slices, and the slices of all scenarios at one concurrency take turns
   (`_measure_phase`), so that every scenario samples the same stretch of time. A point records
   req/s, p50, p99 and the CPU time the scenario's server process tree used over its slices,
   divided by the requests.
6. Memory: scenario `execute_plain` is run W times more as a warm-up, then the service's RSS is
   read before and after M executions (sampled after each tenth), and the growth reported.
7. Report medians over the rounds with their min-max spread, the gates computed from those
   medians with their targets, a table on stdout and the JSON file (`--out`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

from bench import contract, peer, profile, report
from bench.loadgen import WRK_INSTALL_HINT, LoadGenerator, PointResult, Target, merge
from bench.procs import (
    CLOCK_TICKS_PER_SECOND,
    BenchError,
    ManagedProcess,
    child_env,
    core_ticks,
    cpu_ns,
    cpu_ticks,
    find_program,
    free_port,
    pin_self,
    rss_bytes,
    wait_http_ok,
)
from bench.scenarios import (
    ADMIN_API_KEY,
    CACHED_ENDPOINT,
    ENCRYPTION_KEY,
    EXECUTE_BODY,
    GRAPHQL_ENDPOINT,
    MAPPED_ENDPOINT,
    MCP_CALL_BODY,
    MCP_HEADERS,
    PLAIN_ENDPOINT,
    TENANT,
    expected_graphql_data,
    expected_mapped_data,
    expected_plain_data,
    expected_summary,
    graphql_integration_spec,
    integration_spec,
    oauth2_integration_spec,
)
from bench.upstream import NGINX_INSTALL_HINT, Nginx, body_facts, token_requests

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "latest.json"
CALIBRATION_LOOP = 200_000
"""Iterations of the speed probe's loop (about 5-15 ms of one core)."""
MIN_HIT_SHARE = 0.99
"""Share of cache hits execute_cached must show: an entry may expire (TTL 300 s) mid-run."""
ALL_CONCURRENCIES = (1, 16, 64)
TAIL_PROBE_CHUNK = 250_000
"""Iterations of the tail probe's chunk: 5-15 ms of one core, the order of an execute_mapped
latency at c16, so that its spread is the machine's over a span as long as such a call."""
TAIL_PROBE_SECONDS = 3.0
"""How long the tail probe runs in each round."""
MIN_REQUESTS_PER_CONNECTION = 4
"""A slice sends at least this many requests per connection (see `_slice_requests`)."""
WARM_REQUESTS_PER_CONNECTION = 2
"""Unmeasured requests per connection just before each slice (see `_run_slice`)."""
SETTLE_WINDOW_S = 0.03
SETTLE_IDLE_NS = 1_000_000
"""A slice starts once our other processes on the service core used at most this much CPU
(1 ms) in one `SETTLE_WINDOW_S` window (see `LoadMonitor.settle`)."""
SETTLE_MAX_S = 3.0


@dataclass(frozen=True)
class Sizes:
    """How much work a run does."""

    rounds: int
    direct_requests: int
    proxy_requests: dict[int, int]
    warmup_requests: int
    memory_warmup: int
    memory_executions: int
    quiet_wait: float
    slices: int
    """Slices per point (see `_measure_phase`)."""


FULL = Sizes(
    rounds=5,
    direct_requests=20_000,
    proxy_requests={1: 1_000, 16: 2_000, 64: 1_500},
    warmup_requests=2_000,
    memory_warmup=10_000,
    memory_executions=100_000,
    quiet_wait=10.0,
    slices=4,
)
QUICK = Sizes(
    rounds=3,
    direct_requests=4_000,
    proxy_requests={1: 100, 16: 200, 64: 200},
    warmup_requests=200,
    memory_warmup=1_000,
    memory_executions=10_000,
    quiet_wait=0.0,
    slices=2,
)


@dataclass
class Scenario:
    """One scenario: what wrk sends and whose CPU is charged for it."""

    name: str
    title: str
    target: Target
    server: ManagedProcess
    direct: bool = False
    samples: dict[int, list[report.Sample]] = field(default_factory=dict)
    requests: dict[int, int] | None = None
    """Requests per point by concurrency, when not the run's (the peer: slower, no c64)."""


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the Adaptor Service against nginx and a reference proxy.",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run, under 90 seconds")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"JSON results (default {DEFAULT_OUT})"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (at least 3)")
    parser.add_argument(
        "--memory-executions", type=int, default=None, help="executions in the memory run"
    )
    parser.add_argument("--service-cpu", type=int, default=0, help="core for the proxies")
    parser.add_argument("--load-cpu", type=int, default=1, help="core for wrk and nginx")
    parser.add_argument(
        "--quiet-threshold",
        type=float,
        default=0.15,
        help="before each point, wait while other processes use more than this share of a "
        "core (default 0.15)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="longest wait for a quiet machine before each point, seconds (default 10; "
        "0 with --quick)",
    )
    parser.add_argument(
        "--install-deps",
        action="store_true",
        help="apt-get install nginx and wrk first if they are missing",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, sample execute_mapped, the reference, execute_plain, "
        "execute_full and execute_full_otel at c16 "
        "with py-spy and write their top functions next to --out",
    )
    parser.add_argument(
        "--profile-requests",
        type=int,
        default=None,
        help="with --profile: requests sampled per scenario (default: twice a c16 point's)",
    )
    parser.add_argument("--check-gates", action="store_true", help="exit 1 when a gate is missed")
    parser.add_argument(
        "--peer",
        choices=["n8n"],
        default=None,
        help="also measure a peer (n8n, installed into a cache folder on first use)",
    )
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temp dir (logs, configs) after the run"
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 3:
        parser.error("--rounds must be at least 3")
    return args


def _install_deps() -> None:
    missing = [name for name in ("nginx", "wrk") if find_program(name) is None]
    if not missing:
        return
    apt = find_program("apt-get")
    if apt is None:
        raise BenchError(f"{', '.join(missing)} missing and apt-get not found")
    print(f"bench: installing {' '.join(missing)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([apt, "update", "-qq"], check=True, env=env)
    subprocess.run([apt, "install", "-y", "-qq", *missing], check=True, env=env)


def _check_deps() -> None:
    if find_program("nginx") is None:
        raise BenchError(NGINX_INSTALL_HINT)
    if find_program("wrk") is None:
        raise BenchError(WRK_INSTALL_HINT)
    if find_program("taskset") is None:
        raise BenchError("taskset not found: install it with `apt-get install -y util-linux`")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="adaptor-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            return _run(args, workdir, stack)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        if args.keep_temp:
            print(f"bench: temp dir kept at {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Processes


def _service_process(
    name: str,
    workdir: Path,
    cpu: int | None,
    *,
    full: bool,
    extra_env: dict[str, str] | None = None,
) -> tuple[ManagedProcess, str]:
    data_dir = workdir / f"{name}-data"
    data_dir.mkdir()
    port = free_port()
    env = {
        "ALLOW_PRIVATE_NETWORKS": "true",
        "DATA_DIR": str(data_dir),
        "ADMIN_API_KEY": ADMIN_API_KEY,
        "ENCRYPTION_KEY": ENCRYPTION_KEY,
        "LOG_LEVEL": "warning",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        **(extra_env or {}),
    }
    drop = () if full else ("POSTGRES_URI", "REDIS_URL")
    adaptor = ROOT / ".venv" / "bin" / "adaptor"
    if not adaptor.exists():
        found = shutil.which("adaptor")
        if found is None:
            raise BenchError("adaptor command not found: run `pip install -e .[dev]` in .venv")
        adaptor = Path(found)
    process = ManagedProcess(
        name,
        [str(adaptor), "serve", "--workers", "1"],
        cpu=cpu,
        log_dir=workdir,
        env=child_env(env, drop=drop),
        cwd=ROOT,
    )
    return process, f"http://127.0.0.1:{port}"


def _full_variants(upstream: str, stack: contextlib.ExitStack) -> dict[str, dict[str, str]]:
    """The environment of the `events` and `otel` variants of service-full."""
    events_db = _scratch_database(os.environ["POSTGRES_URI"], "events", stack)
    otel_db = _scratch_database(os.environ["POSTGRES_URI"], "otel", stack)
    stream = f"adaptor-bench-events-{os.getpid()}"
    redis_url = os.environ["REDIS_URL"]
    stack.callback(_delete_stream, redis_url, stream)
    return {
        "events": {
            "POSTGRES_URI": events_db,
            "EVENTS_URL": f"{redis_url}?stream={stream}",
            "SERVICE_NAME": f"adaptor-bench-{os.getpid()}",
        },
        # Spans exported every 200 ms rather than every 5 s: the export's CPU then falls in
        # the variant's own slices (where it counts), not in a later scenario's.
        "otel": {
            "POSTGRES_URI": otel_db,
            "OTEL_EXPORTER_OTLP_ENDPOINT": upstream,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    }


def _scratch_database(uri: str, suffix: str, stack: contextlib.ExitStack) -> str:
    """A database next to POSTGRES_URI's, dropped when the run ends."""
    import asyncio

    import asyncpg

    base, _, name = uri.rpartition("/")
    scratch = f"{name}_{suffix}_{os.getpid()}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(uri)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{scratch}"'))
    stack.callback(lambda: asyncio.run(run(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')))
    return f"{base}/{scratch}"


def _delete_stream(redis_url: str, stream: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(stream)
    finally:
        client.close()


def _reference_process(workdir: Path, cpu: int | None, upstream: str) -> tuple[ManagedProcess, str]:
    port = free_port()
    process = ManagedProcess(
        "reference",
        [sys.executable, "-m", "bench.reference", "--port", str(port), "--upstream", upstream],
        cpu=cpu,
        log_dir=workdir,
        env=child_env({"PYTHONPATH": str(ROOT)}, drop=("POSTGRES_URI", "REDIS_URL")),
        cwd=ROOT,
    )
    return process, f"http://127.0.0.1:{port}"


# --------------------------------------------------------------------------------------------
# Verification


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def _diff(expected: Any, actual: Any) -> str:
    text_expected = orjson.dumps(expected, option=orjson.OPT_SORT_KEYS).decode()
    text_actual = orjson.dumps(actual, option=orjson.OPT_SORT_KEYS).decode()
    for index, (left, right) in enumerate(zip(text_expected, text_actual, strict=False)):
        if left != right:
            start = max(0, index - 60)
            return (
                f"first difference at char {index}: expected …{text_expected[start : index + 60]}… "
                f"got …{text_actual[start : index + 60]}…"
            )
    return f"lengths differ: expected {len(text_expected)} chars, got {len(text_actual)}"


def _verify_execution(name: str, result: dict[str, Any], data: Any, summary: str | None) -> None:
    _check(
        result.get("success") is True,
        f"{name}: execution failed: {orjson.dumps(result.get('error')).decode()}",
    )
    _check(
        result.get("data") == data, f"{name}: unexpected data; {_diff(data, result.get('data'))}"
    )
    if summary is not None:
        got = (result.get("metadata") or {}).get("summary")
        _check(got == summary, f"{name}: summary {got!r}, expected {summary!r}")


def _verify_direct(nginx: Nginx) -> None:
    api = contract.Api(nginx.base_url)
    for path, body in (("/small", nginx.small), ("/customers", nginx.large)):
        status, parsed = api.call("GET", path)
        _check(
            status == 200 and parsed == orjson.loads(body),
            f"nginx answered {status} with an unexpected body for {path}",
        )


def _verify_reference(base_url: str) -> None:
    api = contract.Api(base_url)
    status, result = api.call("POST", "/execute", EXECUTE_BODY)
    _check(status == 200 and isinstance(result, dict), f"reference answered {status}: {result}")
    _verify_execution("reference", result, expected_mapped_data(), expected_summary())
    status, result = api.call("POST", "/execute_plain", EXECUTE_BODY)
    _check(status == 200 and isinstance(result, dict), f"reference answered {status}: {result}")
    _verify_execution("reference_plain", result, expected_plain_data(), None)


def _verify_service(name: str, api: contract.Api, key: str, integration_id: str) -> None:
    plain = contract.execute(api, key, TENANT, integration_id, PLAIN_ENDPOINT, EXECUTE_BODY)
    _verify_execution(f"{name} {PLAIN_ENDPOINT}", plain, expected_plain_data(), None)
    mapped = contract.execute(api, key, TENANT, integration_id, MAPPED_ENDPOINT, EXECUTE_BODY)
    _verify_execution(
        f"{name} {MAPPED_ENDPOINT}", mapped, expected_mapped_data(), expected_summary()
    )
    _check(mapped.get("cached") is False, f"{name} {MAPPED_ENDPOINT}: answered from a cache")
    for _attempt in range(2):
        cached = contract.execute(api, key, TENANT, integration_id, CACHED_ENDPOINT, EXECUTE_BODY)
        _verify_execution(
            f"{name} {CACHED_ENDPOINT}", cached, expected_mapped_data(), expected_summary()
        )
    _check(
        cached.get("cached") is True,
        f"{name} {CACHED_ENDPOINT}: the second call was not a cache hit ({cached.get('cached')})",
    )


def _verify_mcp(name: str, api: contract.Api, key: str) -> None:
    result = contract.mcp_call(api, key, TENANT, MCP_CALL_BODY, MCP_HEADERS)
    _check(result.get("isError") is False, f"{name} mcp_call: failed: {result.get('content')}")
    data = result.get("structuredContent")
    _check(data == expected_plain_data(), f"{name} mcp_call: {_diff(expected_plain_data(), data)}")


def _mcp_target(name: str, base_url: str, key: str, marker: str) -> Target:
    return Target(
        name=name,
        url=f"{base_url}/mcp",
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {key}",
            "X-Tenant-ID": TENANT,
            **MCP_HEADERS,
        },
        body=orjson.dumps(MCP_CALL_BODY),
        expect=marker,
    )


def _execute_target(
    name: str, base_url: str, key: str, integration_id: str, endpoint: str, marker: str
) -> Target:
    return Target(
        name=name,
        url=f"{base_url}/api/v2/execute/{integration_id}/{endpoint}",
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {key}",
            "X-Tenant-ID": TENANT,
        },
        body=orjson.dumps(EXECUTE_BODY),
        expect=marker,
    )


def _reference_target(name: str, url: str, marker: str) -> Target:
    return Target(
        name=name,
        url=url,
        method="POST",
        headers={"Content-Type": "application/json"},
        body=orjson.dumps(EXECUTE_BODY),
        expect=marker,
    )


# --------------------------------------------------------------------------------------------
# Measurement


def _requests_for(scenario: Scenario, concurrency: int, sizes: Sizes) -> int:
    if scenario.requests is not None:
        return scenario.requests.get(concurrency, 0)
    return sizes.direct_requests if scenario.direct else sizes.proxy_requests[concurrency]


PEER_REQUESTS = {"full": {1: 60, 16: 150}, "quick": {1: 20, 16: 50}}
"""Requests per point of the peer's scenarios (n8n answers tens of requests a second)."""


def _peer_scenarios(
    args: argparse.Namespace, workdir: Path, cpu: int | None, upstream: str, stack: Any
) -> list[Scenario]:
    """`--peer n8n`: both configurations started, verified, and their four scenarios."""
    scenarios: list[Scenario] = []
    requests = PEER_REQUESTS["quick" if args.quick else "full"]
    for config in peer.CONFIGURATIONS:
        _progress(f"starting n8n {peer.N8N_VERSION} ({config})")
        n8n = peer.N8n(config, workdir, cpu, upstream)
        stack.callback(n8n.stop)
        n8n.wait_ready()
        n8n.verify()
        for variant, marker in (("plain", '"object":"customer"'), ("mapped", '"summary":')):
            scenarios.append(
                Scenario(
                    f"peer_n8n_{config}_{variant}",
                    f"n8n {config}, {variant}",
                    Target(
                        f"peer_n8n_{config}_{variant}",
                        n8n.url(variant),
                        method="POST",
                        headers={"Content-Type": "application/json"},
                        body=orjson.dumps(EXECUTE_BODY),
                        expect=marker,
                    ),
                    n8n.process,
                    requests=requests,
                )
            )
    return scenarios


class LoadMonitor:
    """What else ran on the two cores while a point ran (other users of a shared machine).

    Our processes are pinned, so the busy ticks of the service core minus the CPU time of the
    proxies pinned there, and those of the load core minus nginx, wrk (our children's rusage)
    and this orchestrator, are other processes' time. Reported per point as a share of a core,
    and used by `wait_quiet` to hold a point back while the machine is busy.
    """

    def __init__(
        self, service_cpu: int | None, load_cpu: int | None, service_side: list[ManagedProcess]
    ) -> None:
        self.service_cpu = service_cpu
        self.load_cpu = load_cpu
        self.service_side = service_side
        self.load_side: list[ManagedProcess] = []

    def snapshot(self) -> dict[str, Any]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "time": time.monotonic(),
            "cores": core_ticks(),
            "service_side": sum(cpu_ticks(p.pid) for p in self.service_side),
            "load_side": sum(cpu_ticks(p.pid) for p in self.load_side),
            "load_seconds": children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime,
        }

    def others(self, before: dict[str, Any], after: dict[str, Any]) -> tuple[float, float, float]:
        """(other load on the service core, on the load core, steal on both), in cores."""
        if self.service_cpu is None or self.load_cpu is None:
            return 0.0, 0.0, 0.0
        span = max(after["time"] - before["time"], 1e-6) * CLOCK_TICKS_PER_SECOND
        service_busy = after["cores"][self.service_cpu][0] - before["cores"][self.service_cpu][0]
        load_busy = after["cores"][self.load_cpu][0] - before["cores"][self.load_cpu][0]
        steal = sum(
            after["cores"][cpu][1] - before["cores"][cpu][1]
            for cpu in (self.service_cpu, self.load_cpu)
        )
        ours_service = after["service_side"] - before["service_side"]
        ours_load = after["load_side"] - before["load_side"]
        ours_load += (after["load_seconds"] - before["load_seconds"]) * CLOCK_TICKS_PER_SECOND
        return (
            max(0.0, (service_busy - ours_service) / span),
            max(0.0, (load_busy - ours_load) / span),
            steal / span,
        )

    def calibrate(self) -> float:
        """Milliseconds a fixed pure-Python loop takes on the service core (best of 3).

        On a virtual machine the same core can run at very different speeds from one minute to
        the next (a busy neighbour on the host), which no counter inside the VM shows. This
        probe, run just before each point while the servers are idle, makes that visible.
        """
        if self.service_cpu is None or self.load_cpu is None:
            return 0.0
        best = float("inf")
        try:
            os.sched_setaffinity(0, {self.service_cpu})
            for _ in range(3):
                started = time.perf_counter()
                total = 0
                for number in range(CALIBRATION_LOOP):
                    total += number
                best = min(best, time.perf_counter() - started)
        finally:
            os.sched_setaffinity(0, {self.load_cpu})
        return best * 1000

    def tail_probe(self, seconds: float = TAIL_PROBE_SECONDS) -> tuple[float, float]:
        """(p50, p99) in ms of a fixed pure-Python chunk of work (`TAIL_PROBE_CHUNK`) timed
        again and again for `seconds` on the service core while the servers are idle.

        Every chunk is the same work, so its spread is the machine's alone: a core whose speed
        changes from one moment to the next (a busy neighbour on a virtual machine's host)
        gives a p99 / p50 above 1 with no program stalling. That is the floor under
        `tail_ratio_mapped_c16`.
        """
        if self.service_cpu is None or self.load_cpu is None:
            return 0.0, 0.0
        chunks: list[float] = []
        try:
            os.sched_setaffinity(0, {self.service_cpu})
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                started = time.perf_counter()
                total = 0
                for number in range(TAIL_PROBE_CHUNK):
                    total += number
                chunks.append(time.perf_counter() - started)
        finally:
            os.sched_setaffinity(0, {self.load_cpu})
        chunks.sort()
        return (
            chunks[len(chunks) // 2] * 1000,
            chunks[min(len(chunks) - 1, int(len(chunks) * 0.99))] * 1000,
        )

    def settle(self, measured: ManagedProcess) -> None:
        """Wait (up to `SETTLE_MAX_S`) until the service core's other servers of ours are
        idle.

        What one scenario's server does after its slice (the event relay publishing the
        executions it logged, the OpenTelemetry exporter sending its batch) would otherwise
        run on the service core during the next scenario's slice: time taken from that
        server, which `others` cannot show since the process is ours, and its latencies
        stretched. A slice starts only once that work is done.
        """
        others = [process for process in self.service_side if process is not measured]
        deadline = time.monotonic() + SETTLE_MAX_S
        while others and time.monotonic() < deadline:
            before = sum(cpu_ns(process.pid) for process in others)
            time.sleep(SETTLE_WINDOW_S)
            if sum(cpu_ns(process.pid) for process in others) - before <= SETTLE_IDLE_NS:
                return

    def wait_quiet(self, threshold: float, max_wait: float) -> float:
        """Wait (up to `max_wait` s) until other processes use under `threshold` of each core."""
        if max_wait <= 0 or self.service_cpu is None:
            return 0.0
        started = time.monotonic()
        while True:
            before = self.snapshot()
            time.sleep(0.4)
            service_other, load_other, _steal = self.others(before, self.snapshot())
            waited = time.monotonic() - started
            if max(service_other, load_other) <= threshold or waited >= max_wait:
                return waited


@dataclass
class _Slice:
    """One slice of a point: what wrk measured and what the monitor saw meanwhile."""

    result: PointResult
    cpu_ns: int
    span_s: float
    others: tuple[float, float, float]
    calibration_ms: float


def _slice_requests(requests: int, concurrency: int, slices: int) -> list[int]:
    """`requests` cut into up to `slices` near-equal slices of at least
    `MIN_REQUESTS_PER_CONNECTION` requests per connection each."""
    count = max(1, min(slices, requests // (MIN_REQUESTS_PER_CONNECTION * concurrency)))
    size, extra = divmod(requests, count)
    return [size + (1 if index < extra else 0) for index in range(count)]


def _run_slice(
    load: LoadGenerator,
    monitor: LoadMonitor,
    scenario: Scenario,
    concurrency: int,
    requests: int,
) -> _Slice:
    monitor.settle(scenario.server)
    calibration_ms = monitor.calibrate()
    # Unmeasured: the slice then starts as in a steady stream. Between its slices a server
    # sits idle for seconds while the others run: its caches (ours, an API key's lookup lives
    # 2 s, and the CPU's) go cold, and the slice's first requests would pay for that with 15
    # others queued behind them, a stall no steady stream has in one slice of 500 requests
    # whose p99 is its 5th slowest.
    load.run(scenario.target, WARM_REQUESTS_PER_CONNECTION * concurrency, concurrency, cap_s=60)
    before_snapshot = monitor.snapshot()
    before = cpu_ns(scenario.server.pid)
    result: PointResult = load.run(scenario.target, requests, concurrency, cap_s=600)
    used_ns = cpu_ns(scenario.server.pid) - before
    after_snapshot = monitor.snapshot()
    _check(scenario.server.alive(), f"{scenario.server.name} died during {scenario.name}")
    return _Slice(
        result=result,
        cpu_ns=used_ns,
        span_s=after_snapshot["time"] - before_snapshot["time"],
        others=monitor.others(before_snapshot, after_snapshot),
        calibration_ms=calibration_ms,
    )


def _measure_phase(
    load: LoadGenerator,
    monitor: LoadMonitor,
    scenarios: list[Scenario],
    concurrency: int,
    sizes: Sizes,
    quiet: tuple[float, float],
) -> None:
    """One round's points at `concurrency`: each point cut into slices, and the slices of all
    scenarios run in turn (A1 B1 C1 C2 B2 A2 A3 ...), so that every scenario samples the same
    stretch of time and a slow spell of the machine falls on all of them alike."""
    plans = {
        scenario.name: _slice_requests(
            _requests_for(scenario, concurrency, sizes), concurrency, sizes.slices
        )
        for scenario in scenarios
    }
    active = [scenario for scenario in scenarios if plans[scenario.name][0]]
    slices: dict[str, list[_Slice]] = {scenario.name: [] for scenario in active}
    waited = 0.0
    for index in range(max((len(plans[s.name]) for s in active), default=0)):
        waited += monitor.wait_quiet(*quiet)
        for scenario in active if index % 2 == 0 else reversed(active):
            plan = plans[scenario.name]
            if index < len(plan):
                slices[scenario.name].append(
                    _run_slice(load, monitor, scenario, concurrency, plan[index])
                )
    for scenario in active:
        sample = _sample(scenario, concurrency, slices[scenario.name], waited)
        scenario.samples.setdefault(concurrency, []).append(sample)


def _sample(
    scenario: Scenario, concurrency: int, slices: list[_Slice], waited: float
) -> report.Sample:
    """A point's sample from its slices: requests, time and CPU summed, latency percentiles
    from the merged histograms, other load and steal weighted by each slice's span."""
    result = merge([item.result for item in slices])
    span = sum(item.span_s for item in slices) or 1e-9

    def weighted(which: int) -> float:
        return sum(item.others[which] * item.span_s for item in slices) / span

    hit_share: float | None = None
    if scenario.target.tally:
        hit_share = min(1.0, result.tallied / result.requests)
        _check(
            hit_share >= MIN_HIT_SHARE,
            f"{scenario.name} c{concurrency}: only {hit_share:.1%} of the answers were cache hits",
        )
    return report.Sample(
        requests=result.requests,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        cpu_us_per_req=sum(item.cpu_ns for item in slices) / 1000 / result.requests,
        other_load_service_core=weighted(0),
        other_load_load_core=weighted(1),
        steal=weighted(2),
        waited_s=waited,
        hit_share=hit_share,
        calibration_ms=statistics.median(item.calibration_ms for item in slices),
        p99_over_p50=statistics.median(
            item.result.p99_ms / item.result.p50_ms if item.result.p50_ms else 0.0
            for item in slices
        ),
        slices=[
            {
                "requests": item.result.requests,
                "p50_ms": item.result.p50_ms,
                "p99_ms": item.result.p99_ms,
                "cpu_us_per_req": round(item.cpu_ns / 1000 / item.result.requests, 1),
                "calibration_ms": round(item.calibration_ms, 2),
            }
            for item in slices
        ],
    )


def _memory_run(
    load: LoadGenerator, scenario: Scenario, sizes: Sizes, executions: int
) -> dict[str, Any]:
    pid = scenario.server.pid
    warmup = min(sizes.memory_warmup, executions)
    print(f"memory: {warmup} warm-up executions, then {executions} measured", flush=True)
    load.run(scenario.target, warmup, 16, cap_s=600)
    time.sleep(0.5)  # let the batched execution-log writer drain
    rss_before = rss_bytes(pid)
    chunk = max(1, executions // 10)
    series: list[float] = [rss_before / 2**20]
    done = 0
    started = time.monotonic()
    while done < executions:
        step = min(chunk, executions - done)
        load.run(scenario.target, step, 16, cap_s=600)
        done += step
        series.append(rss_bytes(pid) / 2**20)
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    rss_after = rss_bytes(pid)
    series[-1] = rss_after / 2**20
    return {
        "scenario": scenario.name,
        "warmup_executions": warmup,
        "executions": executions,
        "seconds": round(elapsed, 2),
        "rss_before_mb": round(rss_before / 2**20, 2),
        "rss_after_mb": round(rss_after / 2**20, 2),
        "rss_growth_mb": round((rss_after - rss_before) / 2**20, 2),
        "rss_series_mb": [round(value, 2) for value in series],
    }


def _profile(
    args: argparse.Namespace,
    load: LoadGenerator,
    scenarios: list[Scenario],
    sizes: Sizes,
    workdir: Path,
    load_cpu: int | None,
) -> dict[str, str]:
    """py-spy over execute_mapped, the reference, execute_plain, reference_plain and (when they
    run) execute_full and execute_full_otel at c16; summaries written next to --out."""
    written: dict[str, str] = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    names = (
        "execute_mapped",
        "reference",
        "execute_plain",
        "reference_plain",
        "execute_full",
        "execute_full_otel",
    )
    for name in names:
        scenario = next((s for s in scenarios if s.name == name), None)
        if scenario is None:
            continue
        requests = args.profile_requests or sizes.proxy_requests[16] * 2
        _progress(f"profiling {name} at c16 over {requests} requests with py-spy")
        collapsed = profile.record(
            load, scenario.target, scenario.server, requests, 16, workdir, load_cpu
        )
        focus = ("bench/",) if name.startswith("reference") else ("adaptor/",)
        title = f"{name} c16 ({scenario.server.name} process)"
        text = profile.summarise(collapsed, title, focus)
        summary_path = args.out.parent / f"profile-{name}.txt"
        summary_path.write_text(text + "\n")
        shutil.copyfile(collapsed, args.out.parent / f"profile-{name}.collapsed")
        print(text, flush=True)
        print(flush=True)
        written[name] = str(summary_path)
    return written


def _progress(text: str) -> None:
    print(text, flush=True)


def _run(args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> int:
    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    changed = _uncommitted_service_changes()
    if args.install_deps:
        _install_deps()
    _check_deps()
    cores = os.cpu_count() or 1
    service_cpu: int | None = args.service_cpu
    load_cpu: int | None = args.load_cpu
    if cores < 2:
        print("bench: fewer than 2 cores: running unpinned; figures are not comparable")
        service_cpu = load_cpu = None
    if load_cpu is not None:
        pin_self(load_cpu)
    sizes = QUICK if args.quick else FULL
    rounds = args.rounds or sizes.rounds
    memory_executions = args.memory_executions or sizes.memory_executions
    full_env = bool(os.environ.get("POSTGRES_URI")) and bool(os.environ.get("REDIS_URL"))

    # -- processes
    nginx = Nginx(workdir, load_cpu)
    stack.callback(nginx.stop)
    service, service_url = _service_process("service", workdir, service_cpu, full=False)
    stack.callback(service.stop)
    reference, reference_url = _reference_process(workdir, service_cpu, nginx.base_url)
    stack.callback(reference.stop)
    service_full: ManagedProcess | None = None
    full_url = ""
    # execute_full with events (EVENTS_URL to a Redis stream) and with OpenTelemetry (OTLP to
    # nginx standing in for a collector), each on a database of its own so that its relay
    # publishes only its own executions.
    variants: dict[str, tuple[ManagedProcess, str]] = {}
    if full_env:
        service_full, full_url = _service_process("service-full", workdir, service_cpu, full=True)
        stack.callback(service_full.stop)
        for variant, extra in _full_variants(nginx.base_url, stack).items():
            process, url = _service_process(
                f"service-{variant}", workdir, service_cpu, full=True, extra_env=extra
            )
            stack.callback(process.stop)
            variants[variant] = (process, url)
    nginx.wait_ready()
    wait_http_ok(service, f"{service_url}/health/live")
    wait_http_ok(reference, f"{reference_url}/health")
    if service_full is not None:
        wait_http_ok(service_full, f"{full_url}/health/live")
    for process, url in variants.values():
        wait_http_ok(process, f"{url}/health/live")
    _progress(f"started nginx, service, reference{', service-full' if service_full else ''}")

    # -- setup through the contract
    api = contract.Api(service_url)
    key = contract.create_tenant_key(api, ADMIN_API_KEY, TENANT)
    integration_id = contract.create_integration(api, key, TENANT, integration_spec(nginx.base_url))
    oauth2_id = contract.create_integration(
        api, key, TENANT, oauth2_integration_spec(nginx.base_url)
    )
    graphql_id = contract.create_integration(
        api, key, TENANT, graphql_integration_spec(nginx.base_url)
    )
    full_api: contract.Api | None = None
    full_key = full_integration = ""
    if service_full is not None:
        full_api = contract.Api(full_url)
        full_key = contract.create_tenant_key(full_api, ADMIN_API_KEY, TENANT)
        full_integration = contract.create_integration(
            full_api, full_key, TENANT, integration_spec(nginx.base_url, rate_limited=True)
        )
        stack.callback(contract.delete_integration, full_api, full_key, TENANT, full_integration)
    variant_targets: dict[str, tuple[str, str]] = {}
    for variant, (_process, url) in variants.items():
        variant_api = contract.Api(url)
        variant_key = contract.create_tenant_key(variant_api, ADMIN_API_KEY, TENANT)
        variant_integration = contract.create_integration(
            variant_api,
            variant_key,
            TENANT,
            integration_spec(nginx.base_url, rate_limited=True),
        )
        _verify_service(f"service-{variant}", variant_api, variant_key, variant_integration)
        variant_targets[variant] = (variant_key, variant_integration)

    # -- verification
    _verify_direct(nginx)
    _verify_reference(reference_url)
    _verify_service("service", api, key, integration_id)
    oauth2 = contract.execute(api, key, TENANT, oauth2_id, PLAIN_ENDPOINT, EXECUTE_BODY)
    _verify_execution(f"service oauth2 {PLAIN_ENDPOINT}", oauth2, expected_plain_data(), None)
    _check(token_requests(nginx.root) == 1, "execute_oauth2: the token was not fetched once")
    graphql = contract.execute(api, key, TENANT, graphql_id, GRAPHQL_ENDPOINT, EXECUTE_BODY)
    _verify_execution(f"service graphql {GRAPHQL_ENDPOINT}", graphql, expected_graphql_data(), None)
    _verify_mcp("service", api, key)
    if full_api is not None:
        _verify_service("service-full", full_api, full_key, full_integration)
    _progress("verified: every scenario answers success with the expected data")

    # -- scenarios
    ok = '"success":true'
    scenarios = [
        Scenario(
            "direct_small",
            "direct (nginx, small body)",
            Target("direct_small", f"{nginx.base_url}/small", expect='"object":"customer"'),
            nginx.process,
            direct=True,
        ),
        Scenario(
            "direct_large",
            "direct (nginx, 36 KB body)",
            Target("direct_large", f"{nginx.base_url}/customers", expect='"object":"list"'),
            nginx.process,
            direct=True,
        ),
        Scenario(
            "reference",
            "reference proxy (mapped)",
            _reference_target("reference", f"{reference_url}/execute", ok),
            reference,
        ),
        Scenario(
            "reference_plain",
            "reference proxy (plain)",
            _reference_target("reference_plain", f"{reference_url}/execute_plain", ok),
            reference,
        ),
        Scenario(
            "execute_plain",
            "execute, no mapping, small",
            _execute_target("execute_plain", service_url, key, integration_id, PLAIN_ENDPOINT, ok),
            service,
        ),
        Scenario(
            "execute_graphql",
            "execute, GraphQL query, small",
            _execute_target("execute_graphql", service_url, key, graphql_id, GRAPHQL_ENDPOINT, ok),
            service,
        ),
        Scenario(
            "mcp_call",
            "MCP tools/call, no mapping, small",
            _mcp_target("mcp_call", service_url, key, '"isError":false'),
            service,
        ),
        Scenario(
            "execute_mapped",
            "execute, 36 KB mapped",
            _execute_target(
                "execute_mapped", service_url, key, integration_id, MAPPED_ENDPOINT, ok
            ),
            service,
        ),
        Scenario(
            "execute_oauth2",
            "execute, OAuth2 (token cached)",
            _execute_target("execute_oauth2", service_url, key, oauth2_id, PLAIN_ENDPOINT, ok),
            service,
        ),
        Scenario(
            "execute_cached",
            "execute, mapped, cache hit",
            replace(
                _execute_target(
                    "execute_cached", service_url, key, integration_id, CACHED_ENDPOINT, ok
                ),
                tally='"cached":true',
            ),
            service,
        ),
    ]
    if service_full is not None:
        scenarios.append(
            Scenario(
                "execute_full",
                "execute, mapped, PG+Redis",
                _execute_target(
                    "execute_full", full_url, full_key, full_integration, MAPPED_ENDPOINT, ok
                ),
                service_full,
            )
        )
    for variant, (process, url) in variants.items():
        variant_key, variant_integration = variant_targets[variant]
        scenarios.append(
            Scenario(
                f"execute_full_{variant}",
                f"execute, mapped, PG+Redis, {variant}",
                _execute_target(
                    f"execute_full_{variant}",
                    url,
                    variant_key,
                    variant_integration,
                    MAPPED_ENDPOINT,
                    ok,
                ),
                process,
            )
        )

    if args.peer == "n8n":
        scenarios += _peer_scenarios(args, workdir, service_cpu, nginx.base_url, stack)

    load = LoadGenerator(workdir, load_cpu)
    service_side = [service, reference] + ([service_full] if service_full else [])
    service_side += [process for process, _url in variants.values()]
    service_side += [s.server for s in scenarios if s.requests is not None]
    monitor = LoadMonitor(service_cpu, load_cpu, service_side)
    monitor.load_side.append(nginx.process)
    quiet_wait = args.quiet_wait if args.quiet_wait is not None else sizes.quiet_wait
    quiet = (args.quiet_threshold, quiet_wait)
    for scenario in scenarios:
        warmup = sizes.direct_requests if scenario.direct else sizes.warmup_requests
        if scenario.requests is not None:
            warmup = scenario.requests[16]
        load.run(scenario.target, warmup, 16, cap_s=600)
    _progress(f"warmed up; {rounds} interleaved rounds of {len(scenarios) * 3} points")

    machine_tail: list[tuple[float, float]] = []
    for round_index in range(rounds):
        round_started = time.monotonic()
        machine_tail.append(monitor.tail_probe())
        for concurrency in ALL_CONCURRENCIES:
            _measure_phase(load, monitor, scenarios, concurrency, sizes, quiet)
        _progress(
            f"round {round_index + 1}/{rounds} done in {time.monotonic() - round_started:.1f}s"
        )

    profiles: dict[str, str] = {}
    if args.profile:
        profiles = _profile(args, load, scenarios, sizes, workdir, load_cpu)

    plain = next(s for s in scenarios if s.name == "execute_plain")
    memory = _memory_run(load, plain, sizes, memory_executions)
    _check(service.alive(), "the service died during the memory run")
    # The token lives an hour: not one more token request on the request path.
    oauth2_token_requests = token_requests(nginx.root)
    _check(
        oauth2_token_requests == 1,
        f"execute_oauth2: {oauth2_token_requests} token requests, expected the first one only",
    )

    # -- report
    results: dict[str, Any] = {
        "meta": _meta(
            args, sizes, rounds, nginx, full_env, time.monotonic() - started, started_at, changed
        ),
        "scenarios": {
            scenario.name: report.summarise_scenario(
                scenario.title,
                scenario.server.name,
                scenario.samples,
                {c: _requests_for(scenario, c, sizes) for c in ALL_CONCURRENCIES},
            )
            for scenario in scenarios
        },
        "memory": memory,
        "oauth2_token_requests": oauth2_token_requests,
    }
    if profiles:
        results["profiles"] = profiles
    if not full_env:
        results["scenarios"]["execute_full"] = {
            "skipped": "POSTGRES_URI and REDIS_URL are not both set"
        }
    results["gates"] = report.gates(results["scenarios"], memory)
    if variants:
        results["full_ratios"] = report.full_ratios(results["scenarios"])
    if args.peer:
        results["peer"] = report.peer_ratios(results["scenarios"], peer.N8N_VERSION)
    results["calibration"] = report.calibration(
        results["scenarios"], results["gates"], machine_tail
    )
    print()
    print(report.table(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nresults written to {args.out} ({time.monotonic() - started:.0f}s)")
    missed = [name for name, gate in results["gates"].items() if gate["met"] is False]
    return 1 if args.check_gates and missed else 0


def _version(argv: list[str]) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    text = (completed.stdout + completed.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def _uncommitted_service_changes() -> list[str]:
    """Files under src/ that differ from the commit: the service runs from the work tree."""
    try:
        status = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()
    except OSError:
        return []
    return [line[3:] for line in status]


def _meta(
    args: argparse.Namespace,
    sizes: Sizes,
    rounds: int,
    nginx: Nginx,
    full_env: bool,
    seconds: float,
    started_at: str,
    changed: list[str],
) -> dict[str, Any]:
    commit = _version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    cpu_model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    nginx_binary = find_program("nginx") or "nginx"
    return {
        "mode": "quick" if args.quick else "full",
        "started_at": started_at,
        "commit": commit,
        "uncommitted_service_changes": changed,
        "python": platform.python_version(),
        "cpu": cpu_model,
        "cores": os.cpu_count(),
        "service_cpu": args.service_cpu,
        "load_cpu": args.load_cpu,
        "clock_ticks_per_second": os.sysconf("SC_CLK_TCK"),
        "nginx": _version([nginx_binary, "-v"]),
        "wrk": _version([find_program("wrk") or "wrk", "-v"]),
        "rounds": rounds,
        "requests_per_point": {
            "direct": sizes.direct_requests,
            "proxies": {f"c{c}": n for c, n in sizes.proxy_requests.items()},
        },
        "warmup_requests": sizes.warmup_requests,
        "full_scenario": full_env,
        "upstream_bytes": {"small": len(nginx.small), "large": len(nginx.large)},
        "bodies": body_facts(),
        "statistic": "median over rounds; spread is min-max over rounds",
        "seconds_before_report": round(seconds, 1),
    }
