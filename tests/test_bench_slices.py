"""The benchmark's slices of a point: how a point is cut, and how its slices merge back."""

from __future__ import annotations

import math
import random

import pytest
from bench.cli import MIN_REQUESTS_PER_CONNECTION, _slice_requests
from bench.loadgen import QUANTILES, PointResult, merge
from bench.report import cpu_self_ratios


def _wrk_percentile(latencies_us: list[int], p: float) -> int:
    """wrk's `stats_percentile` on the raw values: the first value whose running count reaches
    round(p/100 * count + 0.5), C's round (half away from zero)."""
    ordered = sorted(latencies_us)
    rank = math.floor((p / 100.0) * len(ordered) + 0.5 + 0.5)
    return ordered[min(len(ordered), max(1, rank)) - 1]


def _point(latencies_us: list[int], duration_s: float, tallied: int = 0) -> PointResult:
    """A slice as wrk reports it: its percentiles and its quantiles at every 0.1 %."""
    return PointResult(
        requests=len(latencies_us),
        duration_s=duration_s,
        p50_ms=_wrk_percentile(latencies_us, 50) / 1000,
        p90_ms=_wrk_percentile(latencies_us, 90) / 1000,
        p99_ms=_wrk_percentile(latencies_us, 99) / 1000,
        max_ms=max(latencies_us) / 1000,
        mean_ms=sum(latencies_us) / len(latencies_us) / 1000,
        bytes=100 * len(latencies_us),
        tallied=tallied,
        quantiles=tuple(
            _wrk_percentile(latencies_us, k * 100 / QUANTILES) for k in range(1, QUANTILES + 1)
        ),
    )


def _near_rank(values: list[int], p: float, got_ms: float, slack: int) -> bool:
    """`got_ms` is the `p` percentile of `values` to within `slack` ranks."""
    ordered = sorted(values)
    rank = math.floor((p / 100.0) * len(ordered) + 0.5 + 0.5)
    low = ordered[max(0, rank - 1 - slack)]
    high = ordered[min(len(ordered) - 1, rank - 1 + slack)]
    return low <= got_ms * 1000 <= high


@pytest.mark.parametrize("sizes", [(500, 500, 500, 500), (251, 250, 250, 250), (75, 75)])
def test_merged_slices_have_the_percentiles_of_all_their_requests_together(
    sizes: tuple[int, ...],
) -> None:
    rng = random.Random(sum(sizes))
    # A slow spell in the last slice: its latencies sit well above the others'.
    slices = [[rng.randint(1_000, 3_000) for _ in range(size)] for size in sizes[:-1]]
    slices.append([rng.randint(5_000, 20_000) for _ in range(sizes[-1])])
    points = [_point(values, 0.25, tallied=index) for index, values in enumerate(slices)]
    merged = merge(points)
    everything = [value for values in slices for value in values]
    assert merged.requests == sum(sizes)
    assert merged.duration_s == pytest.approx(0.25 * len(sizes))
    assert merged.rps == pytest.approx(sum(sizes) / (0.25 * len(sizes)))
    assert merged.bytes == 100 * sum(sizes)
    assert merged.tallied == sum(range(len(sizes)))
    for p, got in ((50, merged.p50_ms), (90, merged.p90_ms), (99, merged.p99_ms)):
        assert _near_rank(everything, p, got, slack=1), (p, got)
    assert merged.max_ms == max(everything) / 1000
    assert merged.mean_ms == pytest.approx(sum(everything) / len(everything) / 1000)
    # Not the average of the slices' own p99s, which the slow slice alone would dominate.
    assert merged.p99_ms != pytest.approx(sum(p.p99_ms for p in points) / len(points))


def test_one_slice_merges_to_itself() -> None:
    point = _point([1_000, 2_000, 3_000], 0.01)
    assert merge([point]) is point


@pytest.mark.parametrize(
    ("requests", "concurrency", "slices", "expected"),
    [
        (2_000, 16, 4, [500, 500, 500, 500]),
        (1_001, 1, 4, [251, 250, 250, 250]),
        (1_500, 64, 4, [375, 375, 375, 375]),
        (150, 16, 4, [75, 75]),  # 4 slices would send under 4 requests per connection
        (50, 16, 4, [50]),
        (200, 16, 1, [200]),
    ],
)
def test_a_point_is_cut_into_near_equal_slices_of_enough_requests(
    requests: int, concurrency: int, slices: int, expected: list[int]
) -> None:
    cut = _slice_requests(requests, concurrency, slices)
    assert cut == expected
    assert sum(cut) == requests
    assert len(cut) == 1 or min(cut) >= MIN_REQUESTS_PER_CONNECTION * concurrency


def _slice(requests: int, cpu_us_per_req: float) -> dict[str, float]:
    return {"requests": requests, "cpu_us_per_req": cpu_us_per_req, "calibration_ms": 7.0}


def test_a_scenarios_cpu_self_ratio_is_its_odd_slices_over_its_even_slices_per_round() -> None:
    scenarios = {
        "execute_plain": {
            "c16": {
                "slices": [
                    # round 1: odd slices (1st, 3rd) weighted by their requests: 330; even: 300
                    [_slice(500, 300), _slice(500, 290), _slice(1000, 345), _slice(500, 310)],
                    # round 2: the same work at one speed
                    [_slice(500, 300), _slice(500, 300)],
                    # round 3: one slice, nothing to compare
                    [_slice(2000, 300)],
                ]
            }
        },
        "execute_full": {"skipped": "POSTGRES_URI and REDIS_URL are not both set"},
    }
    ratios = cpu_self_ratios(scenarios)
    assert set(ratios) == {"execute_plain"}
    assert ratios["execute_plain"]["rounds"] == [1.1, 1.0]
    assert ratios["execute_plain"]["value"] == 1.05
    assert ratios["execute_plain"]["range"] == [1.0, 1.1]
