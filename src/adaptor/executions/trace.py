"""The debug trace of one execution: each stage with its input, output and milliseconds.

Built only when `options.debug_mode` is set. Everything recorded is redacted twice: values
under sensitive keys (Authorization, api_key, token, …) and every stored secret of the
integration wherever it appears in text.
"""

from __future__ import annotations

import time
from typing import Any

from adaptor.observability.logging import REDACTED, redact

_MAX_TEXT = 2000


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
