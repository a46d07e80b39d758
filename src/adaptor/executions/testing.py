"""Connection tests and test cases for an integration, run through the real pipeline."""

from __future__ import annotations

from typing import Any

from adaptor.domain import ExecutionOptions, ExecutionResult, TestCase
from adaptor.errors import AdaptorError
from adaptor.executions.schemas import TestCaseResult

RESULT_KEYS = frozenset({"success", "data", "error", "status_code"})


def differences(expected: Any, actual: Any, path: str = "") -> list[dict[str, Any]]:
    """Where `actual` departs from `expected`: objects match on the keys `expected` names,
    lists element by element and by length, anything else by equality."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [{"path": path or "$", "expected": expected, "actual": actual}]
        found: list[dict[str, Any]] = []
        for key, value in expected.items():
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append({"path": where, "expected": value, "actual": None, "missing": True})
            else:
                found.extend(differences(value, actual[key], where))
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [{"path": path or "$", "expected": expected, "actual": actual}]
        found = []
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            found.extend(differences(want, got, f"{path}[{index}]"))
        return found
    # 1 and 1.0 are the same number, but True is not 1
    if expected == actual and isinstance(expected, bool) == isinstance(actual, bool):
        return []
    return [{"path": path or "$", "expected": expected, "actual": actual}]


def observed(result: ExecutionResult, expected: dict[str, Any]) -> Any:
    """What a case's `expected_output` is compared with: the result's own fields when it
    names only those (`success`, `data`, `error`, `status_code`), else the mapped data."""
    if expected and set(expected) <= RESULT_KEYS:
        return {
            "success": result.success,
            "data": result.data,
            "error": result.error.model_dump(mode="json") if result.error else None,
            "status_code": result.metadata.get("status_code"),
        }
    return result.data


async def run_case(
    execute: Any, tenant_id: str, integration_id: str, case: TestCase
) -> TestCaseResult:
    options = ExecutionOptions(timeout_override_ms=case.timeout_ms, skip_cache=True)
    try:
        result: ExecutionResult = await execute(
            tenant_id, integration_id, case.endpoint, case.input_data, options
        )
    except AdaptorError as exc:
        actual = {"error": {"status": exc.status_code, "message": exc.message}}
        return TestCaseResult(
            name=case.name,
            passed=False,
            actual=actual,
            differences=[{"path": "$", "expected": case.expected_output, "actual": actual}],
        )
    actual = observed(result, case.expected_output)
    found = differences(case.expected_output, actual)
    return TestCaseResult(name=case.name, passed=not found, actual=actual, differences=found)
