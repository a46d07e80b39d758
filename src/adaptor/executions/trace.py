"""The debug trace of one execution: each stage with its input, output and milliseconds.

Built only when `options.debug_mode` is set. Everything recorded is redacted twice: values
under sensitive keys (Authorization, api_key, token, …) and every stored secret of the
integration wherever it appears in text.
"""

from __future__ import annotations

import time
from typing import Any

from adaptor.domain import EndpointConfig
from adaptor.observability.logging import REDACTED, redact
from adaptor.protocols.http import Exchange, Operation

_MAX_TEXT = 2000
_MAX_BODY = 2048
"""Bytes of an outgoing body shown in the call stage."""


class Trace:
    def __init__(self, secrets: list[str]) -> None:
        self._secrets = [s for s in secrets if len(s) >= 3]
        self.stages: list[dict[str, Any]] = []

    def add(self, stage: str, started: float, input: Any = None, output: Any = None) -> None:
        self.stages.append(
            {
                "stage": stage,
                "ms": round((time.perf_counter() - started) * 1000, 3),
                "input": self._clean(input),
                "output": self._clean(output),
            }
        )

    def add_call(
        self,
        started: float,
        endpoint: EndpointConfig,
        sent: list[Exchange | Operation],
        status_code: int | None,
        retries: int,
    ) -> None:
        """The call stage: the endpoint's method and path, then each attempt as it went out
        (final URL and query, headers, encoded body) with the answer's status, headers and
        size; or, for an adapter that does not speak HTTP, what it says it did."""
        self.add(
            "call",
            started,
            {
                "method": str(endpoint.method),
                "path": endpoint.path,
                "attempts": [exchange.describe(_MAX_BODY) for exchange in sent],
            },
            {"status_code": status_code, "retries": retries},
        )

    def _clean(self, value: Any) -> Any:
        return self._scrub(redact(value))

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT] + "…"
        if isinstance(value, dict):
            return {k: self._scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        return value
