"""Processes the benchmark starts, and what /proc says about them.

Every process is started pinned to one core with `taskset -c N` (which execs the command, so the
pid we hold is the program's own) in a new session, with stdout/stderr going to a log file in
the run's temp dir. `ManagedProcess.stop()` sends SIGTERM to that process group (the group we
created, never anything found by name), waits, then SIGKILLs. Callers register `stop` on an
`ExitStack` so processes are cleaned up on errors and on Ctrl-C alike.

CPU time is read from `/proc/<pid>/stat` (utime + stime, in clock ticks of
`os.sysconf("SC_CLK_TCK")`, usually 100 per second) summed over the process and its descendants
(found through `/proc/<pid>/task/<tid>/children`). A thread's time is included in its process's
figures. Resident memory is `VmRSS` from `/proc/<pid>/status`, summed over the same tree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A failure that stops the benchmark with a one-line message."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_program(name: str) -> str | None:
    """`name` on PATH, or in the sbin folders a non-login shell may lack."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def child_env(extra: Mapping[str, str], drop: Sequence[str] = ()) -> dict[str, str]:
    """The environment for a child: ours without proxies (all traffic is loopback) or `drop`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "all_proxy") and key not in drop
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


class ManagedProcess:
    """A pinned child process with its own log file; `stop()` is idempotent."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cpu: int | None,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        command = list(argv)
        if cpu is not None:
            taskset = find_program("taskset")
            if taskset is None:
                raise BenchError("taskset not found: apt-get install -y util-linux")
            command = [taskset, "-c", str(cpu), *command]
        self._log: IO[bytes] = self.log_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The end of the process's output, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group we created, then SIGKILL if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        else:
            # The leader is gone; make sure nothing it started is left in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self._log.close()


def wait_http_ok(process: ManagedProcess, url: str, timeout: float = 60.0) -> None:
    """Poll `url` (loopback only, no proxies) until it answers 200, or fail with the log tail."""
    if not url.startswith("http://127.0.0.1:"):
        raise BenchError(f"refusing to contact {url}: the benchmark only talks to 127.0.0.1")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise BenchError(
                f"{process.name} exited with code {process.popen.returncode} while starting:\n"
                f"{process.log_tail()}"
            )
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise BenchError(f"{process.name} did not answer {url} within {timeout:.0f}s")


# --------------------------------------------------------------------------------------------
# /proc readings


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    found: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{current}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            pending.extend(int(child) for child in children)
    return found


def _stat_ticks(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    # Fields after the command name (which may hold spaces) start at field 3 (state).
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime (field 14) + stime (field 15)


def cpu_ticks(pid: int) -> int:
    """utime + stime of the process tree rooted at `pid`, in clock ticks."""
    return sum(_stat_ticks(member) for member in process_tree(pid))


def _cpu_clock_ns(pid: int) -> int:
    """CPU time of process `pid` (every thread) in ns, from its CPU-time clock: the clock id
    `clock_getcpuclockid(pid)` gives on Linux (process-wide, scheduler-precise). 0 when the
    process is gone."""
    try:
        return time.clock_gettime_ns((~pid << 3) | 2)
    except OSError:
        return 0


def cpu_ns(pid: int) -> int:
    """CPU time of the process tree rooted at `pid` in ns, to the scheduler's precision: a
    c16 slice of `execute_plain` uses about 150 ms of CPU, which clock ticks (10 ms) would
    round by up to 7 %."""
    return sum(_cpu_clock_ns(member) for member in process_tree(pid))


def rss_bytes(pid: int) -> int:
    """Resident set size of the process tree rooted at `pid`."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def pin_self(cpu: int) -> None:
    """Pin the benchmark's own process (the orchestrator) to `cpu`."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {cpu})


def core_ticks() -> dict[int, tuple[int, int]]:
    """Per core, (busy, steal) clock ticks since boot from /proc/stat.

    Busy is user + nice + system + irq + softirq: time the core ran anything, ours or not.
    Steal is time the hypervisor gave the core to someone else.
    """
    out: dict[int, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *values = line.split()
        ticks = [int(value) for value in values]
        busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
        out[int(name[3:])] = (busy, ticks[7] if len(ticks) > 7 else 0)
    return out
