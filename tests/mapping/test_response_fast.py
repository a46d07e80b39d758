"""The response mapping's shortcuts: items built by data_path, single-name rule targets."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import babel.numbers
import jmespath
import pytest

from adaptor.mapping.jmes import returns_fresh_objects
from tests.mapping.factories import compile_endpoint

DATA_PATH = (
    "data[?balance > `0`].{id: id, email: email, name: name, created: created, "
    "balance: balance, currency: currency}"
)
TRANSFORMATIONS = [
    {"field": "created", "transform": "timestamp_to_date", "params": {"format": "%Y-%m-%d"}},
    {
        "field": "balance",
        "transform": "currency_format",
        "params": {"currency_field": "currency", "locale": "en_US", "minor_units": True},
    },
]


def _customers(count: int = 100, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    items = []
    for index in range(count):
        draw = rng.random()
        balance = (
            rng.randrange(100, 2_500_000)
            if draw < 0.6
            else 0
            if draw < 0.8
            else -rng.randrange(100, 50_000)
        )
        items.append(
            {
                "id": f"cus_{index}",
                "email": f"user{index}@example.com",
                "name": f"User {index}",
                "created": 1_577_836_800 + rng.randrange(0, 150_000_000),
                "balance": balance,
                "currency": rng.choice(("usd", "eur", "gbp", "jpy", "kwd")),
                "address": {"city": "Oslo"},
            }
        )
    return {"object": "list", "data": items}


def _expected(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in body["data"]:
        if not item["balance"] > 0:
            continue
        code = item["currency"].upper()
        amount = Decimal(item["balance"]).scaleb(-babel.numbers.get_currency_precision(code))
        out.append(
            {
                "id": item["id"],
                "email": item["email"],
                "name": item["name"],
                "created": datetime.fromtimestamp(item["created"], tz=UTC).strftime("%Y-%m-%d"),
                "balance": babel.numbers.format_currency(amount, code, locale="en_US"),
                "currency": item["currency"],
            }
        )
    return out


def test_realistic_endpoint_matches_an_independent_computation() -> None:
    compiled = compile_endpoint(
        response_mapping={"data_path": DATA_PATH, "transformations": TRANSFORMATIONS}
    )
    body = _customers()
    before = copy.deepcopy(body)
    for _ in range(3):  # later rounds run on warm caches
        result = compiled.map_response(body)
        assert result.success is True
        assert result.warnings == []
        assert result.data == _expected(body)
    assert body == before


@pytest.mark.parametrize(
    ("expression", "fresh"),
    [
        ("{a: a}", True),
        ("x.{a: a}", True),
        ("items[*].{a: a}", True),
        ("items[?ok].{a: a}", True),
        ("*.{a: a}", True),
        ("x | items[*].{a: a}", True),
        ("items[*].y.{a: a}", True),
        ("items", False),
        ("items[*]", False),
        ("items[*].{a: a} | [0]", False),
        ("items[*].{a: a}[]", False),
        ("{a: a} | b", False),
        ("items[*].[a]", False),
        ("items[?ok]", False),
    ],
)
def test_fresh_objects_are_recognised(expression: str, fresh: bool) -> None:
    assert returns_fresh_objects(jmespath.compile(expression).parsed) is fresh


@pytest.mark.parametrize(
    "data_path", ["items", "items[*]", "items[*].{code: code, meta: meta}", "items[0]"]
)
def test_transformations_never_modify_the_body(data_path: str) -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": data_path,
            "transformations": [
                {"field": "code", "transform": "uppercase"},
                {"field": "meta.tag", "transform": "uppercase"},
                {"field": "gone", "transform": "regex_extract", "params": {"pattern": "z+"}},
            ],
            "default_values": {"meta.extra": 1},
        }
    )
    body = {
        "items": [
            {"code": "ab", "meta": {"tag": "x"}, "gone": "abc"},
            {"code": "cd", "meta": {"tag": "y"}, "gone": "zz"},
        ]
    }
    before = copy.deepcopy(body)
    first = compiled.map_response(body).data
    second = compiled.map_response(body).data
    assert body == before
    assert first == second
    items = first if isinstance(first, list) else [first]
    assert items[0]["code"] == "AB"
    assert items[0]["meta"]["tag"] == "X"
    assert items[0]["meta"]["extra"] == 1
    # regex_extract without a match gives null, which removes the field.
    assert "gone" not in items[0]
    if isinstance(first, list) and "{" not in data_path:
        assert first[1]["gone"] == "zz"


def test_failing_rule_on_a_single_name_keeps_the_value_and_warns() -> None:
    compiled = compile_endpoint(
        response_mapping={
            "data_path": "items[*].{amount: amount}",
            "transformations": [{"field": "amount", "transform": "to_int"}],
        }
    )
    result = compiled.map_response({"items": [{"amount": "1.5"}, {"amount": "2"}]})
    assert result.data == [{"amount": "1.5"}, {"amount": 2}]
    assert [loc for loc, _ in result.warnings] == [("data", 0, "amount")]
