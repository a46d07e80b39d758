"""Micro-benchmark of the response mapping for the benchmark's realistic endpoint.

Run from the repository root: `PYTHONPATH=. .venv/bin/python bench/mapping_micro.py`.

Times (best of several rounds, in µs) the parts of one mapped execution: parsing the 36 KB body,
`CompiledEndpoint.map_response`, its `data_path` alone, each transformation per item, and
`render_summary`. The endpoint and body come from `bench.scenarios` when it is importable;
otherwise an equivalent endpoint and body are built here, so the numbers stay comparable.
"""

from __future__ import annotations

import random
import string
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from adaptor.domain import IntegrationSpec
from adaptor.domain.integration import EndpointConfig
from adaptor.mapping import CompiledEndpoint, MappingEngine

DATA_PATH = (
    "data[?balance > `0`].{id: id, email: email, name: name, created: created, "
    "balance: balance, currency: currency}"
)


def _own_endpoint() -> EndpointConfig:
    return EndpointConfig.model_validate(
        {
            "name": "list_customers",
            "path": "/customers",
            "method": "GET",
            "response_mapping": {
                "data_path": DATA_PATH,
                "transformations": [
                    {
                        "field": "created",
                        "transform": "timestamp_to_date",
                        "params": {"format": "%Y-%m-%d"},
                    },
                    {
                        "field": "balance",
                        "transform": "currency_format",
                        "params": {
                            "currency_field": "currency",
                            "locale": "en_US",
                            "minor_units": True,
                        },
                    },
                ],
            },
            "summary_template": "{{ count }} customers with a balance",
        }
    )


def _own_body() -> dict[str, Any]:
    rng = random.Random(20_240_501)
    items = []
    for index in range(100):
        draw = rng.random()
        if draw < 0.6:
            balance = rng.randrange(100, 2_500_000)
        elif draw < 0.8:
            balance = 0
        else:
            balance = -rng.randrange(100, 50_000)
        token = "".join(rng.choices(string.ascii_letters + string.digits, k=14))
        items.append(
            {
                "id": f"cus_{token}",
                "object": "customer",
                "address": {"city": "Berlin", "country": "DE", "line1": "1 Main St"},
                "balance": balance,
                "created": 1_577_836_800 + rng.randrange(0, 150_000_000),
                "currency": rng.choice(("usd", "eur", "gbp", "jpy")),
                "delinquent": False,
                "email": f"user{index}@example.com",
                "metadata": {"crm_id": f"crm_{index}", "plan": "pro"},
                "name": f"User {index}",
                "phone": "+14155550000",
            }
        )
    return {"object": "list", "url": "/v1/customers", "has_more": False, "data": items}


def _inputs() -> tuple[CompiledEndpoint, bytes, str]:
    try:
        from bench import scenarios
    except ImportError:
        endpoint, body, origin = _own_endpoint(), _own_body(), "built here"
    else:
        spec = IntegrationSpec.model_validate(scenarios.integration_spec("http://x"))
        endpoint = spec.endpoints["list_customers"]
        body, origin = scenarios.customer_list(), "bench.scenarios"
    return MappingEngine().compile_endpoint(endpoint), orjson.dumps(body), origin


def _best(func: Callable[[], object], rounds: int = 7, number: int = 200) -> float:
    """Best mean time per call over `rounds` rounds of `number` calls, in µs."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def main() -> None:
    compiled, raw, origin = _inputs()
    parsed = orjson.loads(raw)
    result = compiled.map_response(parsed)
    items = compiled._data_path.search(parsed) if compiled._data_path else []
    print(f"inputs from {origin}: {len(raw)} bytes, {len(result.data)} mapped items")
    print(f"orjson.loads           {_best(lambda: orjson.loads(raw)):8.1f} µs")
    print(f"map_response           {_best(lambda: compiled.map_response(parsed)):8.1f} µs")
    if compiled._data_path is not None:
        data_path = compiled._data_path
        print(f"  data_path            {_best(lambda: data_path.search(parsed)):8.1f} µs")
    for rule in compiled._response_rules:
        transform, name = rule.transform, rule.path[0]

        def run(transform: Any = transform, name: Any = name) -> None:
            for item in items:
                transform.apply(item[name], item)

        per_item = _best(run, number=50) / max(len(items), 1)
        print(f"  {transform.name:<20} {per_item:8.2f} µs per item")
    data = result.data
    print(f"render_summary         {_best(lambda: compiled.render_summary(data)):8.1f} µs")


if __name__ == "__main__":
    sys.exit(main())
