"""Babel-identical number and currency formatting without babel's per-call work.

`babel.numbers.format_currency` looks up the locale's pattern, symbols, the currency's symbol
and precision on every call (dictionary layers, plural rules, regular expressions), which costs
15-30 µs per value. None of that depends on the value. `FastNumberFormat` resolves it once per
(pattern, locale, currency) and then formats with integer arithmetic and string slicing.

Output must stay byte-identical to babel, so a formatter is only built when the pattern is a
plain one (no scientific notation, significant digits, percent scaling, quoted text or long
currency names) and when it reproduces babel's output for a set of probe values. Otherwise
`build_*` returns None and the caller keeps using babel for that key.
"""

from __future__ import annotations

import functools
from decimal import Decimal, DecimalException
from typing import Final

import babel
import babel.numbers

# Values whose formatting exercises every branch: signs (including negative zero and values
# that round to zero), rounding at the last digit, grouping of long integer parts, and no
# fractional part at all.
_PROBES: Final = tuple(
    Decimal(text)
    for text in (
        "0",
        "-0",
        "0.004",
        "-0.004",
        "0.5",
        "1",
        "-1",
        "7.125",
        "999.995",
        "-1234.5",
        "12345.678",
        "-1234567.891",
        "100000",
        "123456789012.34",
        "-98765432109876.5",
    )
)
_MINOR_PROBES: Final = (0, 1, -1, 5, 99, 100, -250, 123456, -1234567, 100000000, 98765432109876)

# Beyond these sizes babel's own arithmetic (28-digit decimal context) could round or raise;
# such values take babel's path so that its behaviour, whatever it is, is kept.
_MAX_DIGITS: Final = 20
_MAX_ADJUSTED: Final = 15
_MAX_MINOR: Final = 10**18


class FastNumberFormat:
    """A babel `NumberPattern` bound to a locale (and currency) with everything resolved.

    `format(number)` equals `pattern.apply(number, locale, currency=...)` for finite Decimals
    of moderate size, and returns None for the rest so the caller can ask babel. Build one
    through `build_currency_format` or `build_decimal_format`, which verify it against babel.
    """

    __slots__ = (
        "_decimal",
        "_digits",
        "_group",
        "_grouping",
        "_min_int",
        "_prefix",
        "_quantum",
        "_scale",
        "_suffix",
        "_thousands",
    )

    def __init__(
        self,
        *,
        prefix: tuple[str, str],
        suffix: tuple[str, str],
        grouping: tuple[int, int],
        min_int: int,
        digits: int,
        group: str,
        decimal: str,
    ) -> None:
        self._prefix = prefix
        self._suffix = suffix
        self._grouping = grouping
        self._min_int = min_int
        self._digits = digits
        self._quantum = Decimal(1).scaleb(-digits)
        self._scale = 10**digits
        self._group = group
        self._decimal = decimal
        self._thousands = grouping == (3, 3) and min_int <= 1

    def _render(self, negative: bool, whole: str, fraction: str) -> str:
        if len(whole) < self._min_int:
            whole = "0" * (self._min_int - len(whole)) + whole
        size, later = self._grouping
        if len(whole) > size:
            # Same walk as babel's `_format_int`: the first group from the right has the
            # primary size, every further one the secondary (Indian 12,34,567).
            parts = [whole[-size:]]
            whole = whole[:-size]
            while len(whole) > later:
                parts.append(whole[-later:])
                whole = whole[:-later]
            parts.append(whole)
            whole = self._group.join(reversed(parts))
        body = whole + self._decimal + fraction if self._digits else whole
        index = 1 if negative else 0
        return self._prefix[index] + body + self._suffix[index]

    def format(self, number: Decimal) -> str | None:
        """`number` as babel renders it, or None when it is outside the verified range."""
        if not number.is_finite():
            return None
        _, coefficient, _ = number.as_tuple()
        if len(coefficient) > _MAX_DIGITS or number.adjusted() > _MAX_ADJUSTED:
            return None
        try:
            # Babel quantizes with the current context's rounding (half-even by default);
            # quantizing the unnormalised value gives the same result as its normalised form.
            rounded = abs(number).quantize(self._quantum)
        except DecimalException:
            return None
        whole, _, fraction = f"{rounded:f}".partition(".")
        return self._render(number.is_signed(), whole, fraction)

    def format_minor(self, minor: int) -> str | None:
        """An integer amount in minor units (cents) as babel renders `minor / 10**digits`."""
        if not -_MAX_MINOR < minor < _MAX_MINOR:
            return None
        digits = self._digits
        magnitude = -minor if minor < 0 else minor
        if digits:
            whole, remainder = divmod(magnitude, self._scale)
            fraction = str(remainder).zfill(digits)
        else:
            whole, fraction = magnitude, ""
        if not self._thousands:
            return self._render(minor < 0, str(whole), fraction)
        # Groups of three with one digit minimum: Python's own `,` grouping does the walk.
        text = f"{whole:,}"
        if self._group != ",":
            text = text.replace(",", self._group)
        if digits:
            text = text + self._decimal + fraction
        index = 1 if minor < 0 else 0
        return self._prefix[index] + text + self._suffix[index]


def _plain_affixes(
    pattern: babel.numbers.NumberPattern, symbols: tuple[str, ...]
) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """The pattern's prefixes and suffixes if they need no quoting or long names, else None."""
    affixes = (*pattern.prefix, *pattern.suffix)
    if (
        pattern.scale
        or pattern.exp_prec
        or "@" in pattern.pattern
        or pattern.number_pattern == ""
        or any("'" in text or "¤¤¤" in text for text in affixes)
        # Babel's quote and `¤` substitutions run over the whole text, number included.
        or any("'" in text or "¤" in text for text in symbols)
    ):
        return None
    return (pattern.prefix[0], pattern.prefix[1]), (pattern.suffix[0], pattern.suffix[1])


def _verified(
    fast: FastNumberFormat,
    reference: babel.numbers.NumberPattern,
    locale: babel.Locale,
    currency: str | None,
    minor_units: bool,
) -> bool:
    digits = fast._digits
    for probe in _PROBES:
        if fast.format(probe) != reference.apply(probe, locale, currency=currency):
            return False
    if minor_units:
        for minor in _MINOR_PROBES:
            expected = reference.apply(Decimal(minor).scaleb(-digits), locale, currency=currency)
            if fast.format_minor(minor) != expected:
                return False
    return True


# Formatters are immutable, so every transform (and every endpoint compiled after a reload)
# shares one per key, and babel's verification runs once per process.
@functools.lru_cache(maxsize=1024)
def build_currency_format(
    currency: str, locale: babel.Locale, *, minor_units: bool = False
) -> FastNumberFormat | None:
    """A verified fast equivalent of `babel.numbers.format_currency(x, currency, locale=…)`,
    or None when this currency and locale must keep using babel."""
    try:
        pattern = locale.currency_formats["standard"]
        symbol = babel.numbers.get_currency_symbol(currency, locale)
        group = babel.numbers.get_group_symbol(locale)
        point = babel.numbers.get_decimal_symbol(locale)
        digits = babel.numbers.get_currency_precision(currency)
    except (KeyError, LookupError, babel.numbers.UnsupportedNumberingSystemError):
        return None
    affixes = _plain_affixes(pattern, (symbol, group, point))
    if affixes is None:
        return None
    code = currency.upper()

    def resolve(text: str) -> str:
        # Babel's order: `¤¤` is the ISO code, a single `¤` the symbol.
        return text.replace("¤¤", code).replace("¤", symbol)

    prefix, suffix = affixes
    fast = FastNumberFormat(
        prefix=(resolve(prefix[0]), resolve(prefix[1])),
        suffix=(resolve(suffix[0]), resolve(suffix[1])),
        grouping=pattern.grouping,
        min_int=pattern.int_prec[0],
        digits=digits,
        group=group,
        decimal=point,
    )
    try:
        ok = _verified(fast, pattern, locale, currency, minor_units)
    except (ArithmeticError, ValueError, LookupError):
        return None
    return fast if ok else None


@functools.lru_cache(maxsize=256)
def build_decimal_format(pattern_text: str, locale: babel.Locale) -> FastNumberFormat | None:
    """A verified fast equivalent of `babel.numbers.format_decimal(x, format=pattern_text,
    locale=…)` for patterns whose fraction has a fixed length, or None."""
    try:
        pattern = babel.numbers.parse_pattern(pattern_text)
        group = babel.numbers.get_group_symbol(locale)
        point = babel.numbers.get_decimal_symbol(locale)
    except (ValueError, LookupError, babel.numbers.UnsupportedNumberingSystemError):
        return None
    affixes = _plain_affixes(pattern, (group, point))
    low, high = pattern.frac_prec
    if affixes is None or "¤" in "".join((*affixes[0], *affixes[1])) or low != high:
        return None
    prefix, suffix = affixes
    fast = FastNumberFormat(
        prefix=prefix,
        suffix=suffix,
        grouping=pattern.grouping,
        min_int=pattern.int_prec[0],
        digits=low,
        group=group,
        decimal=point,
    )
    try:
        ok = _verified(fast, pattern, locale, None, False)
    except (ArithmeticError, ValueError, LookupError):
        return None
    return fast if ok else None
