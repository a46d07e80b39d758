"""The cached number and currency formatters reproduce babel byte for byte."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import babel
import babel.numbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptor.mapping import MappingEngine, TransformError
from adaptor.mapping.numfmt import build_currency_format, build_decimal_format

PAIRS = [
    ("en_US", "USD"),
    ("en_US", "EUR"),
    ("en_US", "JPY"),
    ("de_DE", "EUR"),
    ("de_DE", "USD"),
    ("fr_FR", "EUR"),
    ("ja_JP", "JPY"),
    ("en_IN", "INR"),
    ("hi_IN", "INR"),
    ("ar_EG", "EGP"),
    ("de_CH", "CHF"),
    ("nl_NL", "EUR"),
    ("he_IL", "ILS"),
    ("sv_SE", "SEK"),
    ("pt_BR", "BRL"),
    ("en_GB", "GBP"),
    ("en_US", "KWD"),
    ("en_US", "BHD"),
    ("fa_IR", "IRR"),
    ("bn_BD", "BDT"),
]
# Locales with a plain pattern where the fast path is expected to be taken, not just correct.
FAST = {("en_US", "USD"), ("de_DE", "EUR"), ("fr_FR", "EUR"), ("ja_JP", "JPY"), ("en_IN", "INR")}
VALUES = [
    "0",
    "-0",
    "0.001",
    "-0.001",
    "0.005",
    "0.015",
    "0.025",
    "1",
    "-1",
    "12.5",
    "999.999",
    "-999.995",
    "1234.5678",
    "-1234567.891",
    "99999999999999.99",
    "1E+3",
    "1.000000000000000000000000001",
    "123456789012345678901234567890",
    "-5E-30",
]


def _locale(name: str) -> babel.Locale:
    return babel.Locale.parse(name)


@pytest.mark.parametrize(("locale", "currency"), PAIRS)
def test_currency_fast_path_matches_babel(locale: str, currency: str) -> None:
    loc = _locale(locale)
    fast = build_currency_format(currency, loc, minor_units=True)
    if (locale, currency) in FAST:
        assert fast is not None
    if fast is None:
        return
    for text in VALUES:
        number = Decimal(text)
        got = fast.format(number)
        if got is not None:
            assert got == babel.numbers.format_currency(number, currency, locale=loc), text
    digits = babel.numbers.get_currency_precision(currency)
    for minor in (0, 1, -1, 7, 10, 99, 100, 101, -100000, 123456789, 10**17 - 1, -(10**17)):
        expected = babel.numbers.format_currency(
            Decimal(minor).scaleb(-digits), currency, locale=loc
        )
        assert fast.format_minor(minor) == expected, minor


@pytest.mark.parametrize(("locale", "currency"), PAIRS)
@pytest.mark.parametrize("minor_units", [True, False])
def test_currency_format_transform_matches_babel(
    engine: MappingEngine, locale: str, currency: str, minor_units: bool
) -> None:
    params = {"currency": currency, "locale": locale, "minor_units": minor_units}
    loc = _locale(locale)
    digits = babel.numbers.get_currency_precision(currency)
    inputs: list[Any] = [0, 1, -1, 12345, -987654321, 10**20, 0.5, -0.005, 1234.5678, "42.125"]
    inputs += [Decimal(text) for text in VALUES]
    for value in inputs:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if minor_units:
            amount = amount.scaleb(-digits)
        try:
            expected = babel.numbers.format_currency(amount, currency, locale=loc)
        except ArithmeticError:
            # Babel cannot format it (beyond the decimal context); neither may the transform.
            with pytest.raises(TransformError):
                engine.apply_transformation(value, "currency_format", params)
            continue
        got = engine.apply_transformation(value, "currency_format", params)
        assert got == expected, value


@given(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**16), max_value=10**16),
    st.sampled_from(PAIRS),
)
def test_currency_fast_path_matches_babel_for_any_amount(
    number: Decimal, pair: tuple[str, str]
) -> None:
    locale, currency = pair
    loc = _locale(locale)
    fast = build_currency_format(currency, loc)
    got = fast.format(number) if fast is not None else None
    if got is not None:
        assert got == babel.numbers.format_currency(number, currency, locale=loc)


@given(st.integers(min_value=-(10**19), max_value=10**19), st.sampled_from(PAIRS))
def test_minor_units_fast_path_matches_babel_for_any_integer(
    minor: int, pair: tuple[str, str]
) -> None:
    locale, currency = pair
    loc = _locale(locale)
    fast = build_currency_format(currency, loc, minor_units=True)
    got = fast.format_minor(minor) if fast is not None else None
    if got is not None:
        digits = babel.numbers.get_currency_precision(currency)
        expected = babel.numbers.format_currency(
            Decimal(minor).scaleb(-digits), currency, locale=loc
        )
        assert got == expected


def test_currency_field_per_item_uses_each_currency(engine: MappingEngine) -> None:
    params = {"currency_field": "currency", "locale": "de_DE", "minor_units": True}
    loc = _locale("de_DE")
    for value, code in [(123456, "eur"), (123456, "jpy"), (-5, "usd"), (0, "kwd")]:
        got = engine.apply_transformation(
            value, "currency_format", params, context={"currency": code}
        )
        precision = babel.numbers.get_currency_precision(code.upper())
        expected = babel.numbers.format_currency(
            Decimal(value).scaleb(-precision), code.upper(), locale=loc
        )
        assert got == expected


def test_unsupported_pattern_falls_back_to_babel() -> None:
    # A quoted literal in the pattern is outside the fast path's verified shapes.
    assert build_decimal_format("#,##0.00 'x'", _locale("en_US")) is None
    assert build_decimal_format("#,##0.0#", _locale("en_US")) is None
    assert build_decimal_format("0.00%", _locale("en_US")) is None


@pytest.mark.parametrize("locale", ["en_US", "de_DE", "fr_FR", "en_IN", "ar_EG", "de_CH", "ja_JP"])
@pytest.mark.parametrize("decimals", [0, 2, 3])
def test_number_format_with_locale_matches_babel(
    engine: MappingEngine, locale: str, decimals: int
) -> None:
    params = {"locale": locale, "decimals": decimals}
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    loc = _locale(locale)
    for text in [*VALUES, "-0.0004", "1234567.5", "-2.5"]:
        number = Decimal(text)
        try:
            quantized = number.quantize(Decimal(1).scaleb(-decimals), rounding="ROUND_HALF_UP")
        except ArithmeticError:
            continue
        try:
            expected = babel.numbers.format_decimal(quantized, format=pattern, locale=loc)
        except ArithmeticError:
            with pytest.raises(TransformError):
                engine.apply_transformation(number, "number_format", params)
            continue
        assert engine.apply_transformation(number, "number_format", params) == expected, text


def test_number_format_fast_path_is_used_for_plain_locales() -> None:
    for locale in ("en_US", "de_DE", "fr_FR", "en_IN"):
        assert build_decimal_format("#,##0.00", _locale(locale)) is not None


def test_currency_format_without_fast_path_uses_babel(
    engine: MappingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adaptor.mapping.transforms.build_currency_format", lambda *a, **k: None)
    params = {"currency": "EUR", "locale": "fr_FR", "minor_units": True}
    expected = babel.numbers.format_currency(Decimal("-1234.56"), "EUR", locale="fr_FR")
    assert engine.apply_transformation(-123456, "currency_format", params) == expected
