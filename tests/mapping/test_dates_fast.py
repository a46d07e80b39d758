"""Date transforms' fast paths (templates, per-date caches) give strftime's exact text."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptor.mapping import MappingEngine, TransformError
from adaptor.mapping.transforms import _DateText

FORMATS = [
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%Y-%m-%dT%H:%M:%SZ",
    "%H:%M",
    "{%Y}} %% %m",
    "%j %U %W %w %u %G-W%V %y %C %e",
    "%a %d %b %Y",
    "%Y-%m-%d %H:%M:%S %z %Z",
    "%s",
    "plain text",
]
ZONES = [None, "UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata", "Pacific/Kiritimati"]
# From year 1 to 9999, beyond both ends of the template's 1000-9999 range.
SECONDS = st.integers(min_value=-62_135_596_800, max_value=253_402_300_799)


def _expected(value: Any, unit: str, fmt: str | None, zone: str | None) -> str:
    tz = UTC if zone in (None, "UTC") else zoneinfo.ZoneInfo(zone)
    seconds = Decimal(value) / 1000 if unit == "ms" else Decimal(value)
    moment = datetime.fromtimestamp(float(seconds), tz=tz)
    if fmt is None:
        text = moment.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return moment.strftime(fmt)


def _transform(fmt: str | None, zone: str | None, unit: str = "s") -> Any:
    params: dict[str, Any] = {"unit": unit}
    if fmt is not None:
        params["format"] = fmt
    if zone is not None:
        params["timezone"] = zone
    return MappingEngine().transforms.compile("timestamp_to_date", params)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(SECONDS, min_size=1, max_size=8),
    st.sampled_from([*FORMATS, None]),
    st.sampled_from(ZONES),
)
def test_timestamp_to_date_matches_strftime(
    values: list[int], fmt: str | None, zone: str | None
) -> None:
    transform = _transform(fmt, zone)
    # Each value twice, and neighbours within the same day: the second pass hits the caches.
    for value in [*values, *values, *(v + 1 for v in values), *(v - 86_399 for v in values)]:
        try:
            expected = _expected(value, "s", fmt, zone)
        except (OverflowError, OSError, ValueError):
            with pytest.raises(TransformError):
                transform.apply(value, None)
            continue
        assert transform.apply(value, None) == expected, value


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=-(10**13), max_value=10**13), min_size=1, max_size=8))
def test_timestamp_in_milliseconds_matches_strftime(values: list[int]) -> None:
    transform = _transform("%Y-%m-%d", None, unit="ms")
    for value in [*values, *values, *(v + 999 for v in values), *(v - 1 for v in values)]:
        assert transform.apply(value, None) == _expected(value, "ms", "%Y-%m-%d", None)


def test_day_boundaries_are_exact() -> None:
    transform = _transform("%Y-%m-%d", None)
    for boundary in (0, 86_400, 1_687_219_200, -86_400):
        for value in (boundary - 1, boundary, boundary + 1, boundary - 1):
            assert transform.apply(value, None) == _expected(value, "s", "%Y-%m-%d", None)
    ms = _transform("%Y-%m-%d", None, unit="ms")
    for value in (86_399_999, 86_400_000, -1, 0, 1_687_219_199_999, 1_687_219_200_000):
        assert ms.apply(value, None) == _expected(value, "ms", "%Y-%m-%d", None)


def test_non_integer_timestamps_take_the_general_path() -> None:
    transform = _transform("%Y-%m-%d", None)
    for value in (86_399.9999999, 1.5, "86400", Decimal("-0.5"), 1_687_219_199.999999):
        assert transform.apply(value, None) == _expected(Decimal(str(value)), "s", "%Y-%m-%d", None)
    with pytest.raises(TransformError):
        transform.apply(True, None)
    with pytest.raises(TransformError):
        transform.apply(10**20, None)
    # The failed value is not remembered as a valid day.
    with pytest.raises(TransformError):
        transform.apply(10**20 + 1, None)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.none()
    ),
    st.sampled_from(FORMATS),
    st.sampled_from([None, UTC, timezone(timedelta(hours=-3, minutes=-30))]),
)
def test_date_text_matches_strftime(moment: datetime, fmt: str, tz: Any) -> None:
    if tz is not None:
        moment = moment.replace(tzinfo=tz)
    text = _DateText("date_format", fmt)
    assert text.render(moment) == moment.strftime(fmt)
    assert text.render(moment) == moment.strftime(fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_date_format_matches_strftime(engine: MappingEngine, fmt: str) -> None:
    for source in ("2024-03-01T12:34:56", "0999-12-31T23:59:59+02:00", "2024-02-29", "1000-01-01"):
        for zone in ("UTC", "Asia/Kolkata"):
            params = {"format": fmt, "timezone": zone}
            moment = datetime.fromisoformat(source)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            expected = moment.astimezone(
                UTC if zone == "UTC" else zoneinfo.ZoneInfo(zone)
            ).strftime(fmt)
            for _ in range(2):
                assert engine.apply_transformation(source, "date_format", params) == expected
