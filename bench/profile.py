"""`--profile`: where a proxy's time goes, sampled with py-spy while wrk drives one point.

py-spy is not a project dependency: install it into the venv for profiling only
(`.venv/bin/pip install py-spy`). It attaches to the running server process (root, or
ptrace permission, is needed), samples its Python stacks at `RATE` Hz without pausing it
(`--nonblocking`), pinned to the load core so it takes no time from the server's core, and
writes collapsed stacks (`frame;frame;... count`). Only the thread holding the GIL is sampled
(`--gil`): a thread waiting for the GIL uses no CPU, yet without it py-spy counts it as busy
at whatever frame it stopped in. With a second thread in the process (the OpenTelemetry
batch exporter, SQLite's writer) both threads' waits were counted: one profile of
`execute_full_otel` had 167 samples in a single `os.path.exists` of an export call (requests
looking for a .netrc file), which was the exporter thread waiting to get the GIL back. The
price: C code that runs with the GIL released (SQLite's own work in its thread, a blocking
socket call) is not in the samples. From the stacks this module prints:

- self time by function: the frame on top of the stack (where the CPU actually was);
- inclusive time by function: every frame on the stack, counted once per sample, so a
  pipeline stage's figure includes everything it calls.

Idle samples (the event loop waiting in `select`/`epoll`) are counted and shown separately,
so the percentages are of busy samples.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

from bench.loadgen import LoadGenerator, Target
from bench.procs import BenchError, ManagedProcess, find_program

RATE = 500
PY_SPY_HINT = "py-spy not found: `.venv/bin/pip install py-spy` (profiling only, not a dependency)"
_IDLE = re.compile(r"\b(select|poll|epoll_wait|run_forever|_run_once)\b \(")
_FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>.+?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str:
    venv_bin = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy"
    if venv_bin.exists():
        return str(venv_bin)
    found = find_program("py-spy")
    if found is None:
        raise BenchError(PY_SPY_HINT)
    return found


def record(
    load: LoadGenerator,
    target: Target,
    server: ManagedProcess,
    requests: int,
    concurrency: int,
    workdir: Path,
    cpu: int | None,
) -> Path:
    """Run one point under py-spy; returns the collapsed-stacks file."""
    output = workdir / f"profile-{target.name}.txt"
    sampler = ManagedProcess(
        f"py-spy-{target.name}",
        [
            py_spy(),
            "record",
            "--pid",
            str(server.pid),
            "--rate",
            str(RATE),
            "--nonblocking",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        cpu=cpu,
        log_dir=workdir,
    )
    try:
        time.sleep(1.0)  # let py-spy attach
        if not sampler.alive():
            raise BenchError(f"py-spy could not attach to {server.name}: {sampler.log_tail()}")
        load.run(target, requests, concurrency, cap_s=600)
        os.killpg(sampler.pid, signal.SIGINT)
        sampler.popen.wait(30)
    finally:
        sampler.stop()
    if not output.exists():
        raise BenchError(f"py-spy wrote no profile: {sampler.log_tail()}")
    return output


def _short(frame: str) -> str:
    """`function (path/to/module.py:123)` → `function (module/path.py)` without the line."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match.group('function')} ({path})"


def _package(frame: str) -> str:
    """The top-level package a shortened frame belongs to (`babel`, `adaptor`, `asyncio`)."""
    match = re.search(r"\(([^)]*)\)$", frame)
    path = match.group(1) if match else frame
    head = path.split("/", 1)[0]
    return head.removesuffix(".py") if head else path


def summarise(collapsed: Path, title: str, focus: tuple[str, ...], top: int = 25) -> str:
    """Self time by function and by package, and inclusive time of the `focus` code's frames."""
    self_time: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    busy = idle = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        if _IDLE.search(frames[-1]):
            idle += count
            continue
        busy += count
        self_time[frames[-1]] += count
        by_package[_package(frames[-1])] += count
        for frame in set(frames):
            if any(f"({prefix}" in frame for prefix in focus):
                inclusive[frame] += count
    total = max(busy, 1)

    def listing(counter: Counter[str]) -> list[str]:
        return [f"  {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]

    return "\n".join(
        [
            f"{title}: {busy} busy samples, {idle} idle samples at {RATE} Hz",
            "",
            f"top {top} functions by self time (% of busy samples; C calls count to the caller):",
            *listing(self_time),
            "",
            "self time by package:",
            *listing(by_package),
            "",
            f"top {top} {'/'.join(focus)} frames by inclusive time (% of busy samples):",
            *listing(inclusive),
        ]
    )
