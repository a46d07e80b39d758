"""Named value transforms, each checking its params when an endpoint is configured.

A transform is a small class: its constructor reads and validates `params` (so a bad config is
a 422 at save time, not a failure mid-conversation) and `apply(value, context)` does the work.
`context` is what JMESPath params (`concat.fields`, `conditional` with `against: context`,
`currency_format.currency_field`) are evaluated against: the mapped element for response
transformations, the input document for request transformations.

At runtime a transform that cannot handle a value raises `TransformError`; the engine keeps the
original value and records a warning. Transforms whose `accepts_missing` is false are skipped
where the value is missing or null.
"""

from __future__ import annotations

import json
import math
import time
import zoneinfo
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, DecimalException
from typing import Any, ClassVar, Final

import babel
import babel.numbers
import regex

from adaptor.mapping.errors import Loc, MappingConfigError, Problem, TransformError
from adaptor.mapping.numfmt import FastNumberFormat, build_currency_format, build_decimal_format
from adaptor.mapping.paths import Expression, compile_expression, json_type

MAX_PATTERN_LENGTH: Final = 500
"""Longest regular expression a `regex_extract` config may hold."""

MAX_REGEX_INPUT_LENGTH: Final = 10_000
"""Longest string `regex_extract` will search; longer values are a transform error."""

REGEX_TIMEOUT_SECONDS: Final = 0.05
"""Total time one `regex_extract` application may spend matching."""

MAX_REGEX_MATCHES: Final = 1000
"""Most matches `regex_extract` with `all: true` returns."""

MAX_STRING_PARAM_LENGTH: Final = 1000
MAX_LIST_PARAM_LENGTH: Final = 100
MAX_LOOKUP_ENTRIES: Final = 10_000

_ABSENT: Final = object()
_TRUE_WORDS: Final = frozenset({"true", "yes", "y", "on", "1"})
_FALSE_WORDS: Final = frozenset({"false", "no", "n", "off", "0"})


# --------------------------------------------------------------------------------------------
# Params


class Params:
    """Reads a transform's params, recording a located problem for each mistake.

    Readers return a harmless fallback after recording a problem so that one pass collects
    every mistake; `check()` raises them all at once.
    """

    def __init__(self, transform: str, raw: Mapping[str, Any] | None, allowed: Iterable[str]):
        self.transform = transform
        self.problems: list[Problem] = []
        self._raw: Mapping[str, Any] = raw or {}
        allowed_set = set(allowed)
        for key in self._raw:
            if key not in allowed_set:
                expected = ", ".join(sorted(allowed_set)) or "none"
                self.fail((key,), f"unknown parameter for {transform}; expected: {expected}")

    def fail(self, loc: Loc, message: str) -> None:
        """Record a problem at `loc` (relative to params)."""
        self.problems.append((loc, message))

    def has(self, key: str) -> bool:
        """Whether `key` was given (even as null)."""
        return key in self._raw

    def raw(self, key: str, default: Any = None) -> Any:
        """The value as given, or `default`."""
        return self._raw.get(key, default)

    def check(self) -> None:
        """Raise every recorded problem (locs relative to the transform rule)."""
        if self.problems:
            raise MappingConfigError((("params", *loc), msg) for loc, msg in self.problems)

    def _string(self, key: str, value: Any, allow_empty: bool, max_length: int) -> str | None:
        if not isinstance(value, str):
            self.fail((key,), f"must be a string, got {json_type(value)}")
            return None
        if not allow_empty and not value:
            self.fail((key,), "must not be empty")
            return None
        if len(value) > max_length:
            self.fail((key,), f"must be at most {max_length} characters")
            return None
        return value

    def string(
        self,
        key: str,
        default: str,
        *,
        allow_empty: bool = True,
        max_length: int = MAX_STRING_PARAM_LENGTH,
    ) -> str:
        """An optional string param with a default."""
        if key not in self._raw:
            return default
        found = self._string(key, self._raw[key], allow_empty, max_length)
        return default if found is None else found

    def optional_string(
        self, key: str, *, allow_empty: bool = False, max_length: int = MAX_STRING_PARAM_LENGTH
    ) -> str | None:
        """An optional string param; None when absent or null."""
        value = self._raw.get(key)
        if value is None:
            return None
        return self._string(key, value, allow_empty, max_length)

    def required_string(
        self, key: str, *, allow_empty: bool = False, max_length: int = MAX_STRING_PARAM_LENGTH
    ) -> str:
        """A required string param ("" after recording a problem)."""
        if self._raw.get(key) is None:
            self.fail((key,), "is required")
            return ""
        found = self._string(key, self._raw[key], allow_empty, max_length)
        return "" if found is None else found

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        """A string param that must be one of `choices`."""
        value = self._raw.get(key, default)
        if value is None:
            self.fail((key,), f"is required; one of: {', '.join(choices)}")
            return choices[0]
        if value not in choices:
            self.fail((key,), f"must be one of: {', '.join(choices)}; got {_preview(value)}")
            return choices[0]
        return str(value)

    def optional_integer(
        self, key: str, *, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        """An optional integer param within bounds; None when absent or null."""
        value = self._raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail((key,), f"must be an integer, got {json_type(value)}")
            return None
        if minimum is not None and value < minimum:
            self.fail((key,), f"must be at least {minimum}")
            return None
        if maximum is not None and value > maximum:
            self.fail((key,), f"must be at most {maximum}")
            return None
        return value

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        """An integer param within bounds, with a default."""
        found = self.optional_integer(key, minimum=minimum, maximum=maximum)
        return default if found is None else found

    def optional_number(self, key: str) -> Decimal | None:
        """An optional finite number param, as a Decimal; None when absent or null."""
        value = self._raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail((key,), f"must be a number, got {json_type(value)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.fail((key,), "must be a finite number")
            return None
        return Decimal(value) if isinstance(value, int) else Decimal(repr(value))

    def boolean(self, key: str, default: bool) -> bool:
        """A boolean param with a default."""
        value = self._raw.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail((key,), f"must be true or false, got {json_type(value)}")
            return default
        return value

    def expression(self, loc: Loc, source: Any) -> Expression | None:
        """Compile a JMESPath param found at `loc`."""
        try:
            return compile_expression(source)
        except MappingConfigError as exc:
            self.problems.extend(exc.prefixed(loc))
            return None

    def locale(self, key: str, default: str | None) -> babel.Locale | None:
        """A babel locale such as `en_US` or `de-DE`."""
        name = self.optional_string(key, max_length=50) or default
        if name is None:
            return None
        try:
            return babel.Locale.parse(name.replace("-", "_"))
        except (babel.UnknownLocaleError, ValueError, TypeError):
            self.fail((key,), f"unknown locale {name!r}")
            return None

    def timezone(self, key: str) -> tzinfo | None:
        """An IANA time zone such as `Europe/Berlin`; None when absent."""
        name = self.optional_string(key, max_length=100)
        if name is None:
            return None
        if name.upper() in ("UTC", "Z"):
            return UTC
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.fail((key,), f"unknown time zone {name!r}")
            return None


# --------------------------------------------------------------------------------------------
# Value helpers


def _preview(value: Any) -> str:
    """The offending value for a message, cut short: messages travel into results and logs."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _require_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TransformError(f"{name} expects a string, got {json_type(value)}")
    return value


def _to_decimal(name: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise TransformError(f"{name} expects a number, got boolean")
    try:
        if isinstance(value, int):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, Decimal):
            number = value
        elif isinstance(value, str) and len(value) <= 100 and "_" not in value:
            # Decimal() would accept "1_000"; upstream numbers never contain underscores.
            number = Decimal(value.strip())
        else:
            raise TransformError(f"{name} expects a number, got {json_type(value)}")
    except DecimalException:
        raise TransformError(f"{name} expects a number, got {_preview(value)}") from None
    if not number.is_finite():
        raise TransformError(f"{name} expects a finite number, got {_preview(value)}")
    return number


def _quantize(number: Decimal, decimals: int) -> Decimal:
    try:
        return number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    except DecimalException:
        raise TransformError(f"{number} is too large to round to {decimals} decimals") from None


def _to_json_number(number: Decimal, prefer_int: bool) -> int | float:
    if prefer_int and number == number.to_integral_value():
        return int(number)
    result = float(number)
    if not math.isfinite(result):
        raise TransformError(f"{number} is out of range")
    return result


def _from_epoch(name: str, value: Any, unit: str, tz: tzinfo) -> datetime:
    seconds = _to_decimal(name, value)
    if unit == "ms":
        seconds = seconds / 1000
    try:
        return datetime.fromtimestamp(float(seconds), tz=tz)
    except (OverflowError, OSError, ValueError):
        raise TransformError(f"{name}: {_preview(value)} is not a valid timestamp") from None


def _to_datetime(name: str, value: Any, input_format: str | None, unit: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return _from_epoch(name, value, unit, UTC)
    if not isinstance(value, str):
        raise TransformError(f"{name} expects a date string or timestamp, got {json_type(value)}")
    text = value.strip()
    if len(text) > 100:
        raise TransformError(f"{name}: date string is too long")
    try:
        if input_format is not None:
            return datetime.strptime(text, input_format)
        return datetime.fromisoformat(text)
    except ValueError:
        expected = f"format {input_format!r}" if input_format else "ISO 8601"
        raise TransformError(f"{name}: {_preview(value)} is not a date in {expected}") from None


def _format_datetime(name: str, moment: datetime, fmt: str | None) -> str:
    if fmt is None:
        text = moment.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    try:
        return moment.strftime(fmt)
    except ValueError as exc:
        raise TransformError(f"{name}: cannot format {moment.isoformat()}: {exc}") from None


# strftime directives whose output depends on the calendar date alone, independent of the time
# of day and of the C locale (names such as %a or %b could change with setlocale).
_DATE_ONLY_DIRECTIVES: Final = frozenset("dmyYjUWwuCGgVe%")
# Directives `_DateText` renders itself, as str.format fields over
# (year, month, day, hour, minute, second); all are zero-padded numbers in strftime.
_TEMPLATE_FIELDS: Final = {
    "Y": "{0}",
    "m": "{1:02d}",
    "d": "{2:02d}",
    "H": "{3:02d}",
    "M": "{4:02d}",
    "S": "{5:02d}",
    "%": "%",
}
_MAX_CACHED_DATES: Final = 4096


def _directives(fmt: str) -> list[str] | None:
    """The directive letters of a strftime format in order, None if one is cut off."""
    found: list[str] = []
    pos = fmt.find("%")
    while pos != -1:
        if pos + 1 >= len(fmt):
            return None
        found.append(fmt[pos + 1])
        pos = fmt.find("%", pos + 2)
    return found


def _template(fmt: str) -> str | None:
    """`fmt` as a str.format template when it uses only `_TEMPLATE_FIELDS`, else None."""
    directives = _directives(fmt)
    if directives is None or any(code not in _TEMPLATE_FIELDS for code in directives):
        return None
    out: list[str] = []
    pos = 0
    while pos < len(fmt):
        char = fmt[pos]
        if char == "%":
            out.append(_TEMPLATE_FIELDS[fmt[pos + 1]])
            pos += 2
            continue
        out.append("{{" if char == "{" else "}}" if char == "}" else char)
        pos += 1
    return "".join(out)


class _DateText:
    """`_format_datetime` for one format, without strftime's per-call cost where possible.

    Formats made of %Y %m %d %H %M %S are rendered with str.format (strftime pads those with
    zeros; years outside 1000-9999, which glibc does not pad, still go to strftime). Formats
    showing only the date remember their text per date: a list of records mostly repeats
    days. Cached texts come from the same rendering, so they are identical.
    """

    __slots__ = ("_by_day", "_template", "date_only", "format", "name")

    def __init__(self, name: str, fmt: str | None) -> None:
        self.name = name
        self.format = fmt
        directives = _directives(fmt) if fmt is not None else None
        self.date_only = directives is not None and all(
            code in _DATE_ONLY_DIRECTIVES for code in directives
        )
        self._template = _template(fmt) if fmt is not None else None
        self._by_day: dict[int, str] = {}

    def _render(self, moment: datetime) -> str:
        template = self._template
        if template is not None and 1000 <= moment.year <= 9999:
            return template.format(
                moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second
            )
        return _format_datetime(self.name, moment, self.format)

    def render(self, moment: datetime) -> str:
        """`moment` in the format (ISO 8601 with `Z` for UTC when there is none)."""
        if not self.date_only:
            return self._render(moment)
        day = moment.toordinal()
        text = self._by_day.get(day)
        if text is None:
            text = self._render(moment)
            if len(self._by_day) >= _MAX_CACHED_DATES:
                self._by_day.clear()
            self._by_day[day] = text
        return text


def _check_strftime(params: Params, key: str, fmt: str | None) -> None:
    if fmt is None:
        return
    try:
        datetime(2000, 1, 2, 3, 4, 5, tzinfo=UTC).strftime(fmt)
    except ValueError as exc:
        params.fail((key,), f"invalid date format: {exc}")


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------------------------
# Transforms


class Transform(ABC):
    """A configured transform: params validated once, applied to many values."""

    name: ClassVar[str]
    params: ClassVar[tuple[str, ...]] = ()
    accepts_missing: ClassVar[bool] = False
    """Whether to run where the value is missing or null (otherwise the rule is skipped)."""

    @abstractmethod
    def __init__(self, params: Params) -> None: ...

    @abstractmethod
    def apply(self, value: Any, context: Any) -> Any:
        """Transform `value`; raise `TransformError` if it cannot be handled."""


class Uppercase(Transform):
    """`"ada"` → `"ADA"`."""

    name = "uppercase"

    def __init__(self, params: Params) -> None:
        pass

    def apply(self, value: Any, context: Any) -> Any:
        return _require_str(self.name, value).upper()


class Lowercase(Transform):
    """`"ADA"` → `"ada"`."""

    name = "lowercase"

    def __init__(self, params: Params) -> None:
        pass

    def apply(self, value: Any, context: Any) -> Any:
        return _require_str(self.name, value).lower()


class Capitalize(Transform):
    """First letter upper-case (`words: true`: of every word); the rest is left alone."""

    name = "capitalize"
    params = ("words",)

    def __init__(self, params: Params) -> None:
        self.words = params.boolean("words", False)

    def apply(self, value: Any, context: Any) -> Any:
        text = _require_str(self.name, value)
        if self.words:
            return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))
        return text[:1].upper() + text[1:]


class Trim(Transform):
    """Strip whitespace (or `chars`) from both ends."""

    name = "trim"
    params = ("chars",)

    def __init__(self, params: Params) -> None:
        self.chars = params.optional_string("chars", max_length=100)

    def apply(self, value: Any, context: Any) -> Any:
        return _require_str(self.name, value).strip(self.chars)


class Truncate(Transform):
    """Cut a string to `length` characters, ending with `suffix` (default `…`) when cut."""

    name = "truncate"
    params = ("length", "suffix")

    def __init__(self, params: Params) -> None:
        length = params.optional_integer("length", minimum=1, maximum=1_000_000)
        if length is None and not params.has("length"):
            params.fail(("length",), "is required")
        self.length = length or 1
        self.suffix = params.string("suffix", "…", max_length=100)
        if len(self.suffix) >= self.length and length is not None:
            params.fail(("suffix",), "must be shorter than length")

    def apply(self, value: Any, context: Any) -> Any:
        text = _require_str(self.name, value)
        if len(text) <= self.length:
            return text
        return text[: self.length - len(self.suffix)] + self.suffix


class Replace(Transform):
    """Replace occurrences of `old` with `new` (at most `count`, default all)."""

    name = "replace"
    params = ("old", "new", "count")

    def __init__(self, params: Params) -> None:
        self.old = params.required_string("old")
        self.new = params.string("new", "")
        self.count = params.integer("count", -1, minimum=-1, maximum=1_000_000)

    def apply(self, value: Any, context: Any) -> Any:
        return _require_str(self.name, value).replace(self.old, self.new, self.count)


class DateFormat(Transform):
    """Format a date: ISO-8601 string (or `input_format`), datetime, or epoch number (`unit`).

    Params: `format` (strftime, required), `input_format` (strptime), `unit` (`s` | `ms`, for
    numbers), `timezone` (IANA; naive inputs are taken as UTC before converting).
    """

    name = "date_format"
    params = ("format", "input_format", "unit", "timezone")

    def __init__(self, params: Params) -> None:
        self.format = params.required_string("format", max_length=200)
        _check_strftime(params, "format", self.format or None)
        self.input_format = params.optional_string("input_format", max_length=200)
        self.unit = params.choice("unit", ("s", "ms"), "s")
        self.timezone = params.timezone("timezone")
        self._text = _DateText(self.name, self.format)

    def apply(self, value: Any, context: Any) -> Any:
        moment = _to_datetime(self.name, value, self.input_format, self.unit)
        if self.timezone is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            moment = moment.astimezone(self.timezone)
        return self._text.render(moment)


class TimestampToDate(Transform):
    """Epoch seconds (or milliseconds with `unit: ms`) → date string in `timezone` (UTC).

    Without `format` the result is ISO 8601, e.g. `2024-03-01T12:00:00Z`.
    """

    name = "timestamp_to_date"
    params = ("unit", "format", "timezone")

    def __init__(self, params: Params) -> None:
        self.unit = params.choice("unit", ("s", "ms"), "s")
        self.format = params.optional_string("format", max_length=200)
        _check_strftime(params, "format", self.format)
        self.timezone = params.timezone("timezone") or UTC
        self._text = _DateText(self.name, self.format)
        # In UTC an integer timestamp's date is plain floor division, so date-only output can
        # be looked up before building a datetime at all.
        self._day_length = (
            (86_400_000 if self.unit == "ms" else 86_400)
            if (self.timezone is UTC and self._text.date_only)
            else 0
        )
        self._by_epoch_day: dict[int, str] = {}

    def apply(self, value: Any, context: Any) -> Any:
        if self._day_length and type(value) is int:
            day = value // self._day_length
            text = self._by_epoch_day.get(day)
            if text is None:
                # Only timestamps that converted successfully are remembered, so a hit is a
                # day that is known to be in range.
                text = self._text.render(_from_epoch(self.name, value, self.unit, self.timezone))
                if len(self._by_epoch_day) >= _MAX_CACHED_DATES:
                    self._by_epoch_day.clear()
                self._by_epoch_day[day] = text
            return text
        moment = _from_epoch(self.name, value, self.unit, self.timezone)
        return self._text.render(moment)


class NumberFormat(Transform):
    """A number as text with `decimals` places (default 2), rounded half up.

    Either `locale` (e.g. `de_DE` → `1.234,50`) or explicit `thousands_separator` (default
    `,`) and `decimal_separator` (default `.`).
    """

    name = "number_format"
    params = ("decimals", "thousands_separator", "decimal_separator", "locale")

    def __init__(self, params: Params) -> None:
        self.decimals = params.integer("decimals", 2, minimum=0, maximum=20)
        self.thousands = params.string("thousands_separator", ",", max_length=5)
        self.point = params.string("decimal_separator", ".", max_length=5)
        self.locale = params.locale("locale", None)
        if params.has("locale") and (
            params.has("thousands_separator") or params.has("decimal_separator")
        ):
            params.fail(("locale",), "give either locale or separators, not both")
        self.pattern = "#,##0" + ("." + "0" * self.decimals if self.decimals else "")
        self._fast = (
            build_decimal_format(self.pattern, self.locale) if self.locale is not None else None
        )

    def apply(self, value: Any, context: Any) -> Any:
        number = _quantize(_to_decimal(self.name, value), self.decimals)
        if self.locale is not None:
            text = self._fast.format(number) if self._fast is not None else None
            if text is not None:
                return text
            return babel.numbers.format_decimal(number, format=self.pattern, locale=self.locale)
        text = f"{number:,.{self.decimals}f}"
        return text.replace(",", "\0").replace(".", self.point).replace("\0", self.thousands)


class CurrencyFormat(Transform):
    """An amount as money text for `locale` (default `en_US`), e.g. `$1,234.50`.

    The currency is fixed (`currency: "EUR"`) or read per item (`currency_field: "currency"`,
    JMESPath over the context; lower case such as Stripe's `usd` is accepted). With
    `minor_units: true` the amount is in the currency's minor unit (cents), as Stripe sends it;
    zero-decimal currencies such as JPY are handled.
    """

    name = "currency_format"
    params = ("currency", "currency_field", "locale", "minor_units")

    def __init__(self, params: Params) -> None:
        self.currency: str | None = None
        self.currency_field: Expression | None = None
        field = params.raw("currency_field")
        if (params.raw("currency") is None) == (field is None):
            params.fail(("currency",), "give exactly one of currency or currency_field")
        elif field is not None:
            self.currency_field = params.expression(("currency_field",), field)
        else:
            currency = params.optional_string("currency", max_length=3)
            if currency is not None and babel.numbers.is_currency(currency.upper()):
                self.currency = currency.upper()
            elif currency is not None:
                params.fail(("currency",), f"unknown ISO 4217 currency code {currency!r}")
        self.locale = params.locale("locale", "en_US")
        self.minor_units = params.boolean("minor_units", False)
        # Codes read per item, checked once each: babel's lookup costs more than the format.
        self._codes: dict[str, str | None] = {}
        # Per currency: a verified fast formatter, or None where babel must do the work.
        self._formats: dict[str, FastNumberFormat | None] = {}
        self._precisions: dict[str, int] = {}

    def _code(self, found: Any) -> str | None:
        if not isinstance(found, str) or len(found) != 3:
            return None
        if found not in self._codes:
            if len(self._codes) >= 512:
                self._codes.clear()
            upper = found.upper()
            self._codes[found] = upper if babel.numbers.is_currency(upper) else None
        return self._codes[found]

    def _formatter(self, currency: str) -> FastNumberFormat | None:
        if currency in self._formats:
            return self._formats[currency]
        if len(self._formats) >= 512:
            self._formats.clear()
            self._precisions.clear()
        self._precisions[currency] = babel.numbers.get_currency_precision(currency)
        fast = build_currency_format(
            currency, self.locale or babel.Locale.parse("en_US"), minor_units=self.minor_units
        )
        self._formats[currency] = fast
        return fast

    def apply(self, value: Any, context: Any) -> Any:
        currency = self.currency
        if currency is None:
            found = self.currency_field.search(context) if self.currency_field else None
            currency = self._code(found)
            if currency is None:
                shown = _preview(found)
                raise TransformError(f"{self.name}: no valid currency code found, got {shown}")
        fast = self._formatter(currency)
        if fast is not None and self.minor_units and type(value) is int:
            # Whole minor units (Stripe's cents) need no Decimal arithmetic at all.
            text = fast.format_minor(value)
            if text is not None:
                return text
        amount = _to_decimal(self.name, value)
        if self.minor_units:
            amount = amount.scaleb(-self._precisions[currency])
        if fast is not None:
            text = fast.format(amount)
            if text is not None:
                return text
        return babel.numbers.format_currency(amount, currency, locale=self.locale or "en_US")


class Concat(Transform):
    """Join the values of `fields` (JMESPath over the context) with `separator` (default "").

    Missing or empty parts are skipped unless `skip_missing: false`, which renders them as "".
    Literals work as fields: `` `"-"` ``.
    """

    name = "concat"
    params = ("fields", "separator", "skip_missing")
    accepts_missing = True

    def __init__(self, params: Params) -> None:
        self.fields: list[Expression] = []
        fields = params.raw("fields")
        if not isinstance(fields, list) or not fields:
            params.fail(("fields",), "must be a non-empty list of JMESPath expressions")
        elif len(fields) > MAX_LIST_PARAM_LENGTH:
            params.fail(("fields",), f"must have at most {MAX_LIST_PARAM_LENGTH} entries")
        else:
            for index, source in enumerate(fields):
                compiled = params.expression(("fields", index), source)
                if compiled is not None:
                    self.fields.append(compiled)
        self.separator = params.string("separator", "", max_length=100)
        self.skip_missing = params.boolean("skip_missing", True)

    def apply(self, value: Any, context: Any) -> Any:
        parts: list[str] = []
        for field in self.fields:
            part = field.search(context)
            if part is None or part == "":
                if self.skip_missing:
                    continue
                part = ""
            parts.append(_scalar_text(part))
        return self.separator.join(parts)


class Split(Transform):
    """Split a string on `separator` (default: runs of whitespace), at most `maxsplit` times."""

    name = "split"
    params = ("separator", "maxsplit", "trim")

    def __init__(self, params: Params) -> None:
        self.separator = params.optional_string("separator", max_length=100)
        self.maxsplit = params.integer("maxsplit", -1, minimum=-1, maximum=10_000)
        self.trim = params.boolean("trim", False)

    def apply(self, value: Any, context: Any) -> Any:
        parts = _require_str(self.name, value).split(self.separator, self.maxsplit)
        return [part.strip() for part in parts] if self.trim else parts


class Join(Transform):
    """Join a list into one string with `separator` (default `", "`); nulls are skipped."""

    name = "join"
    params = ("separator",)

    def __init__(self, params: Params) -> None:
        self.separator = params.string("separator", ", ", max_length=100)

    def apply(self, value: Any, context: Any) -> Any:
        if not isinstance(value, list):
            raise TransformError(f"{self.name} expects an array, got {json_type(value)}")
        return self.separator.join(_scalar_text(item) for item in value if item is not None)


class RegexExtract(Transform):
    """Extract `group` (number or name; default 1 if the pattern has groups, else 0) of the
    first match of `pattern`, or of every match with `all: true` (a list). No match gives
    `default` (null unless set).

    A config cannot hang the service: patterns are capped at `MAX_PATTERN_LENGTH`, inputs at
    `MAX_REGEX_INPUT_LENGTH`, and matching stops after `REGEX_TIMEOUT_SECONDS`.
    """

    name = "regex_extract"
    params = ("pattern", "group", "all", "ignore_case", "default")

    def __init__(self, params: Params) -> None:
        source = params.required_string("pattern", max_length=MAX_PATTERN_LENGTH)
        flags = regex.VERSION0 | (regex.IGNORECASE if params.boolean("ignore_case", False) else 0)
        self.pattern: Any = None
        if source:
            try:
                self.pattern = regex.compile(source, flags)
            except (regex.error, OverflowError, RecursionError, ValueError) as exc:
                params.fail(("pattern",), f"invalid regular expression: {exc}")
        self.group: int | str = 0
        group = params.raw("group")
        if self.pattern is not None:
            if group is None:
                self.group = 1 if self.pattern.groups else 0
            elif isinstance(group, bool) or not isinstance(group, int | str):
                params.fail(("group",), "must be a group number or name")
            elif isinstance(group, int) and not 0 <= group <= self.pattern.groups:
                params.fail(("group",), f"the pattern has {self.pattern.groups} group(s)")
            elif isinstance(group, str) and group not in self.pattern.groupindex:
                params.fail(("group",), f"the pattern has no group named {group!r}")
            else:
                self.group = group
        self.all = params.boolean("all", False)
        self.default = params.raw("default")

    def apply(self, value: Any, context: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = _scalar_text(value)
        text = _require_str(self.name, value)
        if len(text) > MAX_REGEX_INPUT_LENGTH:
            raise TransformError(
                f"{self.name}: input of {len(text)} characters exceeds {MAX_REGEX_INPUT_LENGTH}"
            )
        deadline = time.monotonic() + REGEX_TIMEOUT_SECONDS
        found: list[Any] = []
        pos = 0
        try:
            while pos <= len(text):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                match = self.pattern.search(text, pos=pos, timeout=remaining)
                if match is None:
                    break
                found.append(match.group(self.group))
                if not self.all or len(found) >= MAX_REGEX_MATCHES:
                    break
                pos = match.end() if match.end() > match.start() else match.end() + 1
        except TimeoutError:
            raise TransformError(
                f"{self.name}: matching took longer than {REGEX_TIMEOUT_SECONDS * 1000:g} ms"
            ) from None
        if self.all:
            return found if found else self.default
        return found[0] if found else self.default


class Arithmetic(Transform):
    """`op` (add | subtract | multiply | divide | round | abs) with `operand`, then optional
    rounding to `decimals` (half up). Integral results of integer inputs stay integers."""

    name = "arithmetic"
    params = ("op", "operand", "decimals")
    _binary: ClassVar[tuple[str, ...]] = ("add", "subtract", "multiply", "divide")

    def __init__(self, params: Params) -> None:
        self.op = params.choice("op", (*self._binary, "round", "abs"))
        self.operand = params.optional_number("operand")
        if self.op in self._binary:
            if self.operand is None and not params.has("operand"):
                params.fail(("operand",), f"is required for {self.op}")
            elif self.op == "divide" and self.operand == 0:
                params.fail(("operand",), "cannot divide by zero")
        elif params.has("operand"):
            params.fail(("operand",), f"is not used by {self.op}")
        self.decimals = params.optional_integer("decimals", minimum=0, maximum=15)
        if self.op == "round" and self.decimals is None:
            self.decimals = 0

    def apply(self, value: Any, context: Any) -> Any:
        number = _to_decimal(self.name, value)
        operand = self.operand if self.operand is not None else Decimal(0)
        integral_inputs = number == number.to_integral_value() and (
            self.operand is None or operand == operand.to_integral_value()
        )
        try:
            if self.op == "add":
                result = number + operand
            elif self.op == "subtract":
                result = number - operand
            elif self.op == "multiply":
                result = number * operand
            elif self.op == "divide":
                result = number / operand
            elif self.op == "abs":
                result = abs(number)
            else:
                result = number
        except DecimalException as exc:
            message = f"{self.name}: {self.op} failed on {_preview(value)}: {exc}"
            raise TransformError(message) from None
        if self.decimals is not None:
            result = _quantize(result, self.decimals)
        prefer_int = self.decimals == 0 or (
            self.decimals is None and integral_inputs and self.op != "divide"
        )
        return _to_json_number(result, prefer_int)


class Conditional(Transform):
    """The `then` of the first case whose `when` (JMESPath) is truthy, else `default`
    (or the value unchanged when no default is given).

    `when` is evaluated against the value (`@ == 'active'`), or against the context (the
    mapped item, or the input document for requests) with `against: context`.
    """

    name = "conditional"
    params = ("cases", "default", "against")
    accepts_missing = True

    def __init__(self, params: Params) -> None:
        self.cases: list[tuple[Expression, Any]] = []
        cases = params.raw("cases")
        if not isinstance(cases, list) or not cases:
            params.fail(("cases",), "must be a non-empty list of {when, then}")
        elif len(cases) > MAX_LIST_PARAM_LENGTH:
            params.fail(("cases",), f"must have at most {MAX_LIST_PARAM_LENGTH} entries")
        else:
            for index, case in enumerate(cases):
                if not isinstance(case, dict):
                    params.fail(("cases", index), "must be an object with when and then")
                    continue
                extra = sorted(set(case) - {"when", "then"})
                for key in extra:
                    params.fail(("cases", index, key), "unknown key; expected when and then")
                if "then" not in case:
                    params.fail(("cases", index, "then"), "is required")
                if case.get("when") is None:
                    params.fail(("cases", index, "when"), "is required")
                    continue
                compiled = params.expression(("cases", index, "when"), case["when"])
                if compiled is not None:
                    self.cases.append((compiled, case.get("then")))
        self.has_default = params.has("default")
        self.default = params.raw("default")
        self.against_context = params.choice("against", ("value", "context"), "value") == (
            "context"
        )

    def apply(self, value: Any, context: Any) -> Any:
        subject = context if self.against_context else value
        for when, then in self.cases:
            if when.search(subject):
                return then
        return self.default if self.has_default else value


class Default(Transform):
    """`value` where the value is missing or null (`on_empty: true`: also "", [] and {})."""

    name = "default"
    params = ("value", "on_empty")
    accepts_missing = True

    def __init__(self, params: Params) -> None:
        if not params.has("value"):
            params.fail(("value",), "is required")
        self.value = params.raw("value")
        self.on_empty = params.boolean("on_empty", False)

    def apply(self, value: Any, context: Any) -> Any:
        if value is None or (self.on_empty and value in ("", [], {})):
            return self.value
        return value


class Lookup(Transform):
    """Map a value through `table` (keys are the value as text: `"1"`, `"true"`, `"active"`).

    Unmatched values give `default` when given, else stay unchanged.
    """

    name = "lookup"
    params = ("table", "default", "case_insensitive")

    def __init__(self, params: Params) -> None:
        self.case_insensitive = params.boolean("case_insensitive", False)
        table = params.raw("table")
        self.table: dict[str, Any] = {}
        if not isinstance(table, dict) or not table:
            params.fail(("table",), "must be a non-empty object")
        elif len(table) > MAX_LOOKUP_ENTRIES:
            params.fail(("table",), f"must have at most {MAX_LOOKUP_ENTRIES} entries")
        else:
            for key, mapped in table.items():
                text = str(key)
                self.table[text.casefold() if self.case_insensitive else text] = mapped
        self.has_default = params.has("default")
        self.default = params.raw("default")

    def apply(self, value: Any, context: Any) -> Any:
        if isinstance(value, list | dict):
            raise TransformError(f"{self.name} expects a single value, got {json_type(value)}")
        key = _scalar_text(value)
        if self.case_insensitive:
            key = key.casefold()
        if key in self.table:
            return self.table[key]
        return self.default if self.has_default else value


class ToString(Transform):
    """Text form: numbers as written, booleans `true`/`false`, arrays and objects as JSON."""

    name = "to_string"

    def __init__(self, params: Params) -> None:
        pass

    def apply(self, value: Any, context: Any) -> Any:
        return _scalar_text(value)


class ToInt(Transform):
    """An integer from a number or numeric text; non-integral values are an error."""

    name = "to_int"

    def __init__(self, params: Params) -> None:
        pass

    def apply(self, value: Any, context: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        number = _to_decimal(self.name, value)
        if number != number.to_integral_value():
            raise TransformError(f"{self.name}: {_preview(value)} is not a whole number")
        return int(number)


class ToFloat(Transform):
    """A float from a number or numeric text."""

    name = "to_float"

    def __init__(self, params: Params) -> None:
        pass

    def apply(self, value: Any, context: Any) -> Any:
        return _to_json_number(_to_decimal(self.name, value), prefer_int=False)


class ToBool(Transform):
    """A boolean from true/false, yes/no, on/off, 1/0 (text or numbers)."""

    name = "to_bool"

    def __init__(self, params: Params) -> None:
        pass

    def apply(self, value: Any, context: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, int | float) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        raise TransformError(f"{self.name}: {_preview(value)} is not a recognisable boolean")


DEFAULT_TRANSFORMS: Final[tuple[type[Transform], ...]] = (
    Uppercase,
    Lowercase,
    Capitalize,
    Trim,
    Truncate,
    Replace,
    DateFormat,
    TimestampToDate,
    NumberFormat,
    CurrencyFormat,
    Concat,
    Split,
    Join,
    RegexExtract,
    Arithmetic,
    Conditional,
    Default,
    Lookup,
    ToString,
    ToInt,
    ToFloat,
    ToBool,
)


class TransformRegistry:
    """Transform classes by name; `compile` turns a name and params into a ready transform."""

    def __init__(self, transforms: Iterable[type[Transform]] = DEFAULT_TRANSFORMS) -> None:
        self._transforms: dict[str, type[Transform]] = {}
        for transform in transforms:
            self.register(transform)

    def register(self, transform: type[Transform]) -> None:
        """Add a transform class (replacing one of the same name)."""
        self._transforms[transform.name] = transform

    def names(self) -> list[str]:
        """Every registered transform name, sorted."""
        return sorted(self._transforms)

    def compile(self, name: str, params: Mapping[str, Any] | None) -> Transform:
        """A configured transform; `MappingConfigError` locs are relative to the rule
        (`("transform",)`, `("params", "decimals")`)."""
        cls = self._transforms.get(name)
        if cls is None:
            available = ", ".join(self.names())
            message = f"unknown transform {name!r}; available: {available}"
            raise MappingConfigError([(("transform",), message)])
        if params is not None and not isinstance(params, Mapping):
            raise MappingConfigError([(("params",), "must be an object")])
        reader = Params(name, params, cls.params)
        transform = cls(reader)
        reader.check()
        return transform
