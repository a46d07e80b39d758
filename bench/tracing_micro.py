"""Micro-benchmark of the execute path's tracing: the spans of one execution, exported over
OTLP/HTTP to a collector stand-in, next to the same path with tracing off.

Run from the repository root: `PYTHONPATH=. .venv/bin/python bench/tracing_micro.py [N]`.

Each "execution" opens the spans `ExecutionService` opens for a cache miss (`adaptor.execute`
with `map_request`, `cache`, and inside it `call` > `limit` + `HTTP GET`, then
`map_response`), injects `traceparent` into a request and sets the outcome attributes, on an
asyncio loop like the service's. The figure is the process's CPU (every thread: the batch
processor's encoding and HTTP export included, flushed at the end) per execution, in µs, best
of several rounds; the collector stand-in is a separate process answering 200 to every POST.
"""

from __future__ import annotations

import asyncio
import http.server
import multiprocessing
import socket
import sys
import time
from typing import Any

from adaptor.observability.tracing import Tracing

RESULT = {"success": True, "retries": 0, "cached": False, "metadata": {"status_code": 200}}
PACE = 10
"""Executions between pauses of 20 ms (about 500 executions per second at most)."""
REQUEST: dict[str, Any] = {"headers": {"X-Locale": "en"}, "query": {"limit": 100}}


class _Collector(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


def _serve(port: int) -> None:
    http.server.ThreadingHTTPServer(("127.0.0.1", port), _Collector).serve_forever()


async def _executions(tracing: Tracing, count: int) -> None:
    for number in range(count):
        if number % PACE == 0:  # about the service's rate, so no span is dropped
            await asyncio.sleep(0.02)
        with tracing.execution("0b1f2a3c-4d5e-4f60-8172-839405a6b7c8", "list_customers") as span:
            with tracing.stage("map_request"):
                pass
            with tracing.stage("cache"):
                with tracing.stage("call"):
                    with tracing.stage("limit"):
                        pass
                    with tracing.upstream_request("GET", "/customers") as client:
                        tracing.propagate(REQUEST)
                        tracing.answered(client, 200, 0)
                with tracing.stage("map_response"):
                    pass
            tracing.finished(span, RESULT)


def _cpu_us_per_execution(tracing: Tracing, count: int) -> float:
    started = time.process_time()
    asyncio.run(_executions(tracing, count))
    tracing.force_flush()
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    collector = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    collector.start()
    time.sleep(0.5)
    try:
        off = min(_cpu_us_per_execution(Tracing(), count) for _ in range(3))
        tracing = Tracing.otlp(f"http://127.0.0.1:{port}", "tracing-micro")
        try:
            runs = [_cpu_us_per_execution(tracing, count) for _ in range(5)]
        finally:
            tracing.shutdown()
    finally:
        collector.terminate()
    runs.sort()
    print(f"tracing off:  {off:8.1f} µs CPU per execution")
    print(
        f"tracing OTLP: {runs[len(runs) // 2]:8.1f} µs CPU per execution "
        f"(median of {len(runs)}, {runs[0]:.1f}-{runs[-1]:.1f}); "
        f"added {runs[len(runs) // 2] - off:.1f} µs"
    )


if __name__ == "__main__":
    main()
