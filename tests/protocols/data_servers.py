"""Session-wide servers for the data-protocol tests that nobody here wrote: moto's S3 server.

Imported by the test modules that use it (`from tests.protocols.data_servers import moto_s3`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port, stop_process_group


def wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, seconds: float) -> None:
    """Return once 127.0.0.1:`port` accepts connections; fail the test session otherwise."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode} before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail(f"{name} did not listen on 127.0.0.1:{port} within {seconds}s")


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """`moto_server` (PyPI moto[server]) on a free loopback port: its endpoint URL."""
    binary = Path(sys.executable).parent / "moto_server"
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, "moto_server", 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class OwnRabbitMQ:
    """A RabbitMQ node of our own (the machine's `rabbitmq-server`, another node name, port
    and data directory), so a test can restart it without touching the shared broker."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "enabled_plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": f"adaptortest{self.port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
            "RABBITMQ_PID_FILE": str(directory / "pid"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://127.0.0.1:{self.port}/"

    def start(self) -> None:
        binary = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        if not binary.exists():
            pytest.fail("rabbitmq-server is not installed (/usr/lib/rabbitmq/bin)")
        self.process = subprocess.Popen(
            [str(binary)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, self.process, "rabbitmq-server", 60)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process_group(process, timeout_s=30)


@pytest.fixture
def own_rabbitmq(tmp_path: Path) -> Iterator[OwnRabbitMQ]:
    node = OwnRabbitMQ(tmp_path / "rabbitmq")
    node.start()
    try:
        yield node
    finally:
        node.stop()
