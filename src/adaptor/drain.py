"""Graceful drain on SIGTERM for `adaptor serve`.

first SIGTERM/SIGINT ─► /health/ready answers 503 (`draining`) while requests are still
                        served for SHUTDOWN_DELAY_SECONDS (load balancers notice)
                    ─► the listening socket closes; in-flight requests finish within
                        SHUTDOWN_GRACE_SECONDS (then they are cancelled)
                    ─► the app's shutdown: queued execution logs written, outbox events
                        written and published, then connections closed
a second signal     ─► stop at once (nothing more is waited for)
"""

from __future__ import annotations

import asyncio
import signal
from types import FrameType
from typing import Any

import structlog
import uvicorn

log = structlog.get_logger("adaptor.drain")


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose first stop signal starts a drain and whose second ends it."""

    def __init__(self, config: uvicorn.Config, *, app: Any, delay_s: float) -> None:
        super().__init__(config)
        self.app = app
        self.delay_s = delay_s
        self.draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining:
            self._captured_signals.append(sig)
            log.warning("app.stop_now", signal=signal.Signals(sig).name)
            self.force_exit = True
            self.should_exit = True
            return
        self.draining = True
        self._captured_signals.append(sig)
        services = getattr(self.app.state, "services", None)
        if services is not None:
            services.draining = True
        log.info(
            "app.draining",
            signal=signal.Signals(sig).name,
            delay_s=self.delay_s,
            grace_s=self.config.timeout_graceful_shutdown,
        )
        if self.delay_s <= 0:
            self.should_exit = True
            return
        loop = asyncio.get_running_loop()
        loop.call_soon_threadsafe(loop.call_later, self.delay_s, self._stop_accepting)

    def _stop_accepting(self) -> None:
        self.should_exit = True
