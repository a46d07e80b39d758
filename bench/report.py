"""Figures, gates, the table and the JSON shape.

Per scenario and concurrency the JSON holds, for each metric (`rps`, `p50_ms`, `p99_ms`,
`cpu_us_per_req`), the median over the rounds, the min and max over the rounds (the spread),
and every round's value (`runs`). Medians are used because a round disturbed by something else
on the machine then moves the spread, not the figure.

Gates come from the same run. Each is computed within each round from that round's points
(which took turns slice by slice, so both operands saw the same stretches of the machine), and
its value is the median over the rounds; `value_from_medians` is the formula over the medians:

- `added_p50_ms_plain_c1`: execute_plain p50 - direct_small p50 at c1; target <= 0.35 ms
- `added_p50_ms_mapped_c1`: execute_mapped p50 - direct_large p50 at c1; target <= 0.9 ms
- `cpu_ratio_mapped_vs_reference`: execute_mapped CPU us/req / reference CPU us/req at c16;
  target <= 1.3
- `cached_speedup`: execute_cached req/s / execute_mapped req/s at c16; target >= 2.5
- `p99_ms_mapped_c16`: execute_mapped p99 at c16; target <= 20 ms
- `rss_growth_mb`: service RSS after - before the memory run (after its warm-up); target <= 10
- `cpu_ratio_graphql_vs_plain`: execute_graphql CPU us/req / execute_plain CPU us/req at c16;
  target <= 1.1
- `cpu_ratio_mcp_vs_plain`: mcp_call CPU us/req / execute_plain CPU us/req at c16 (the same
  endpoint as an MCP tool call); target <= 1.25
- `cpu_ratio_plain_vs_reference_plain`: execute_plain CPU us/req / reference_plain CPU us/req
  at c16; target <= 1.15
- `cpu_ratio_full_vs_mapped`: execute_full CPU us/req / execute_mapped CPU us/req at c16
  (PostgreSQL logs, Redis limit and breaker); target <= 1.10
- `tail_ratio_mapped_c16`: execute_mapped p99 / p50 at c16 within each slice, the median over
  the point's slices (`p99_over_p50`); target <= 1.4
- `tail_ratio_full_vs_mapped_c16`: execute_full p99 / execute_mapped p99 at c16; target <= 1.15

The two execute_full gates need POSTGRES_URI and REDIS_URL; without them they are reported as
skipped (`met` is null) and `--check-gates` does not count them as missed.

Each gate also carries `rounds`, the formula applied within each round, and `range`, their
min-max, so a reader can tell a robust miss from a marginal one.

The latency targets are absolute and were set on a machine class where a hand-written FastAPI +
aiohttp hop adds `REFERENCE_HOP_MS` (0.20 ms) p50 at c1. `calibration` measures that same hop
in the same run (`reference_plain` - `direct_small` at c1); its ratio to 0.20 ms is how much
slower this machine is, and the time-based gates are also shown divided by it. That view is
informational: `met` is always the raw comparison.
"""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

METRICS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")


@dataclass(frozen=True)
class Sample:
    """One point, one round."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float
    other_load_service_core: float = 0.0
    other_load_load_core: float = 0.0
    steal: float = 0.0
    waited_s: float = 0.0
    hit_share: float | None = None
    calibration_ms: float = 0.0
    p99_over_p50: float = 0.0
    """The median over the point's slices of p99 / p50 within the slice."""
    slices: list[dict[str, float]] = field(default_factory=list)
    """Each slice's own requests, p50, p99, CPU µs per request and speed probe."""


@dataclass(frozen=True)
class Gate:
    name: str
    description: str
    target: float
    op: str  # "<=" or ">="


GATES = (
    Gate("added_p50_ms_plain_c1", "execute_plain p50 - direct_small p50 at c1 (ms)", 0.35, "<="),
    Gate("added_p50_ms_mapped_c1", "execute_mapped p50 - direct_large p50 at c1 (ms)", 0.9, "<="),
    Gate(
        "cpu_ratio_mapped_vs_reference",
        "execute_mapped CPU us/req / reference CPU us/req at c16",
        1.3,
        "<=",
    ),
    Gate("cached_speedup", "execute_cached req/s / execute_mapped req/s at c16", 2.5, ">="),
    Gate("p99_ms_mapped_c16", "execute_mapped p99 at c16 (ms)", 20.0, "<="),
    Gate("rss_growth_mb", "service RSS growth over the memory run (MB)", 10.0, "<="),
    Gate(
        "cpu_ratio_oauth2_vs_plain",
        "execute_oauth2 CPU us/req / execute_plain CPU us/req at c16 (token cached)",
        1.05,
        "<=",
    ),
    Gate(
        "cpu_ratio_graphql_vs_plain",
        "execute_graphql CPU us/req / execute_plain CPU us/req at c16",
        1.1,
        "<=",
    ),
    Gate(
        "cpu_ratio_mcp_vs_plain",
        "mcp_call CPU us/req / execute_plain CPU us/req at c16",
        1.25,
        "<=",
    ),
    Gate(
        "cpu_ratio_plain_vs_reference_plain",
        "execute_plain CPU us/req / reference_plain CPU us/req at c16",
        1.15,
        "<=",
    ),
    Gate(
        "cpu_ratio_full_vs_mapped",
        "execute_full CPU us/req / execute_mapped CPU us/req at c16 (PG logs, Redis limit)",
        1.10,
        "<=",
    ),
    Gate("tail_ratio_mapped_c16", "execute_mapped p99 / p50 at c16", 1.4, "<="),
    Gate(
        "tail_ratio_full_vs_mapped_c16",
        "execute_full p99 / execute_mapped p99 at c16",
        1.15,
        "<=",
    ),
)


REFERENCE_HOP_MS = 0.20
"""What a hand-written FastAPI + aiohttp hop adds (p50, c1) on the machine class the targets
were set on."""

_TIME_GATES = ("added_p50_ms_plain_c1", "added_p50_ms_mapped_c1", "p99_ms_mapped_c16")


def _stats(values: list[float], digits: int) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": [round(value, digits) for value in values],
    }


def summarise_scenario(
    title: str,
    server: str,
    samples: Mapping[int, list[Sample]],
    requests: Mapping[int, int],
) -> dict[str, Any]:
    """The JSON entry of one scenario: per concurrency, each metric's median and spread."""
    entry: dict[str, Any] = {"title": title, "cpu_of": server}
    for concurrency, runs in sorted(samples.items()):
        entry[f"c{concurrency}"] = {
            "requests_per_run": requests[concurrency],
            "gated": concurrency in (1, 16),
            "rps": _stats([sample.rps for sample in runs], 1),
            "p50_ms": _stats([sample.p50_ms for sample in runs], 3),
            "p99_ms": _stats([sample.p99_ms for sample in runs], 3),
            "cpu_us_per_req": _stats([sample.cpu_us_per_req for sample in runs], 1),
            "other_load_service_core": _stats(
                [sample.other_load_service_core for sample in runs], 3
            ),
            "other_load_load_core": _stats([sample.other_load_load_core for sample in runs], 3),
            "steal": _stats([sample.steal for sample in runs], 3),
            "waited_for_quiet_s": _stats([sample.waited_s for sample in runs], 1),
            "calibration_ms": _stats([sample.calibration_ms for sample in runs], 2),
            "p99_over_p50": _stats([sample.p99_over_p50 for sample in runs], 3),
            "slices": [sample.slices for sample in runs],
        }
        shares = [sample.hit_share for sample in runs if sample.hit_share is not None]
        if shares:
            entry[f"c{concurrency}"]["cache_hit_share"] = _stats(shares, 4)
    return entry


def _metric(scenarios: Mapping[str, Any], name: str, concurrency: int, metric: str) -> Any:
    return scenarios[name][f"c{concurrency}"][metric]


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


_FORMULAS: dict[str, tuple[tuple[str, int, str], tuple[str, int, str] | None, str]] = {
    # gate: (left operand, right operand or None, operation)
    "added_p50_ms_plain_c1": (("execute_plain", 1, "p50_ms"), ("direct_small", 1, "p50_ms"), "-"),
    "added_p50_ms_mapped_c1": (
        ("execute_mapped", 1, "p50_ms"),
        ("direct_large", 1, "p50_ms"),
        "-",
    ),
    "cpu_ratio_mapped_vs_reference": (
        ("execute_mapped", 16, "cpu_us_per_req"),
        ("reference", 16, "cpu_us_per_req"),
        "/",
    ),
    "cached_speedup": (("execute_cached", 16, "rps"), ("execute_mapped", 16, "rps"), "/"),
    "p99_ms_mapped_c16": (("execute_mapped", 16, "p99_ms"), None, ""),
    "cpu_ratio_oauth2_vs_plain": (
        ("execute_oauth2", 16, "cpu_us_per_req"),
        ("execute_plain", 16, "cpu_us_per_req"),
        "/",
    ),
    "cpu_ratio_graphql_vs_plain": (
        ("execute_graphql", 16, "cpu_us_per_req"),
        ("execute_plain", 16, "cpu_us_per_req"),
        "/",
    ),
    "cpu_ratio_mcp_vs_plain": (
        ("mcp_call", 16, "cpu_us_per_req"),
        ("execute_plain", 16, "cpu_us_per_req"),
        "/",
    ),
    "cpu_ratio_plain_vs_reference_plain": (
        ("execute_plain", 16, "cpu_us_per_req"),
        ("reference_plain", 16, "cpu_us_per_req"),
        "/",
    ),
    "cpu_ratio_full_vs_mapped": (
        ("execute_full", 16, "cpu_us_per_req"),
        ("execute_mapped", 16, "cpu_us_per_req"),
        "/",
    ),
    "tail_ratio_mapped_c16": (("execute_mapped", 16, "p99_over_p50"), None, ""),
    "tail_ratio_full_vs_mapped_c16": (
        ("execute_full", 16, "p99_ms"),
        ("execute_mapped", 16, "p99_ms"),
        "/",
    ),
}


def gates(scenarios: Mapping[str, Any], memory: Mapping[str, Any]) -> dict[str, Any]:
    """Every gate: value, per-round values, target, and whether it is met.

    `rounds` applies the formula within each round (the points of one concurrency in one
    round took turns slice by slice, so a slow spell of the machine affects both operands
    alike), `value` is their median and `range` their min-max: the spread. `value_from_medians`
    is the formula over the scenarios' medians.
    """
    values: dict[str, tuple[float, list[float]]] = {}
    skipped: dict[str, str] = {}
    for name, (left, right, op) in _FORMULAS.items():
        absent = [
            operand[0]
            for operand in (left, right)
            if operand is not None and "skipped" in scenarios.get(operand[0], {"skipped": ""})
        ]
        if absent:
            skipped[name] = f"{absent[0]} was not run"
            continue
        left_stats = _metric(scenarios, *left)
        if right is None:
            values[name] = (left_stats["median"], list(left_stats["runs"]))
            continue
        right_stats = _metric(scenarios, *right)
        combine: Callable[[float, float], float] = operator.sub if op == "-" else _ratio
        per_round = [
            combine(a, b) for a, b in zip(left_stats["runs"], right_stats["runs"], strict=True)
        ]
        values[name] = (combine(left_stats["median"], right_stats["median"]), per_round)
    growth = float(memory["rss_growth_mb"])
    values["rss_growth_mb"] = (growth, [growth])

    out: dict[str, Any] = {}
    for gate in GATES:
        if gate.name in skipped:
            out[gate.name] = {
                "value": None,
                "range": None,
                "rounds": [],
                "target": f"{gate.op} {gate.target:g}",
                "met": None,
                "skipped": skipped[gate.name],
                "description": gate.description,
            }
            continue
        from_medians, per_round = values[gate.name]
        value = statistics.median(per_round)
        met = value <= gate.target if gate.op == "<=" else value >= gate.target
        out[gate.name] = {
            "value": round(value, 3),
            "value_from_medians": round(from_medians, 3),
            "range": [round(min(per_round), 3), round(max(per_round), 3)],
            "rounds": [round(item, 3) for item in per_round],
            "target": f"{gate.op} {gate.target:g}",
            "met": met,
            "description": gate.description,
        }
    return out


FULL_RATIO_TARGETS = {"events": 1.05, "otel": 1.15}
"""CPU per request of execute_full with EVENTS_URL (a Redis stream) and with OpenTelemetry
(OTLP to a local stand-in), over execute_full without either, in the same run."""


def full_ratios(scenarios: Mapping[str, Any]) -> dict[str, Any]:
    """Each variant's CPU µs/req at c16 over execute_full's: the median of the per-round
    ratios (the value from the medians beside it), and the per-round range."""
    base = _metric(scenarios, "execute_full", 16, "cpu_us_per_req")
    out: dict[str, Any] = {}
    for variant, target in FULL_RATIO_TARGETS.items():
        name = f"execute_full_{variant}"
        if name not in scenarios:
            continue
        mine = _metric(scenarios, name, 16, "cpu_us_per_req")
        rounds = [_ratio(a, b) for a, b in zip(mine["runs"], base["runs"], strict=True)]
        value = statistics.median(rounds)
        out[variant] = {
            "value": round(value, 3),
            "value_from_medians": round(_ratio(mine["median"], base["median"]), 3),
            "range": [round(min(rounds), 3), round(max(rounds), 3)],
            "target": f"<= {target:g}",
            "met": value <= target,
            "description": f"{name} CPU us/req / execute_full CPU us/req at c16",
        }
    return out


PEER_PUBLISHED = "n8n publishes up to 220 executions/s per instance"


def peer_ratios(scenarios: Mapping[str, Any], version: str) -> dict[str, Any]:
    """Each peer scenario's CPU µs/req at c16 over the service's scenario doing the same work
    (plain over execute_plain, mapped over execute_mapped): the median of the per-round ratios
    and their range. No gate."""
    out: dict[str, Any] = {"n8n_version": version, "published": PEER_PUBLISHED, "ratios": {}}
    for name in scenarios:
        if not name.startswith("peer_n8n_"):
            continue
        ours = "execute_plain" if name.endswith("_plain") else "execute_mapped"
        mine = _metric(scenarios, name, 16, "cpu_us_per_req")
        base = _metric(scenarios, ours, 16, "cpu_us_per_req")
        rounds = [_ratio(a, b) for a, b in zip(mine["runs"], base["runs"], strict=True)]
        out["ratios"][f"{name}_cpu_vs_{ours}"] = {
            "value": round(statistics.median(rounds), 1),
            "value_from_medians": round(_ratio(mine["median"], base["median"]), 1),
            "range": [round(min(rounds), 1), round(max(rounds), 1)],
            "rps_c16": _metric(scenarios, name, 16, "rps")["median"],
            "description": f"{name} CPU us/req / {ours} CPU us/req at c16",
        }
    return out


def calibration(
    scenarios: Mapping[str, Any],
    gate_values: Mapping[str, Any],
    machine_tail: Sequence[tuple[float, float]] = (),
) -> dict[str, Any]:
    """This machine's speed relative to the targets' machine class, and the time-based gates
    divided by it (per round too: the factor is measured in each round); and the machine's own
    tail, p99 / p50 of a fixed chunk of work on the idle service core, once per round."""
    hop = _metric(scenarios, "reference_plain", 1, "p50_ms")
    direct = _metric(scenarios, "direct_small", 1, "p50_ms")
    factors = [(a - b) / REFERENCE_HOP_MS for a, b in zip(hop["runs"], direct["runs"], strict=True)]
    factor = (hop["median"] - direct["median"]) / REFERENCE_HOP_MS
    scaled: dict[str, Any] = {}
    for gate in GATES:
        if gate.name not in _TIME_GATES:
            continue
        entry = gate_values[gate.name]
        per_round = [value / f for value, f in zip(entry["rounds"], factors, strict=True)]
        value = entry["value"] / factor
        scaled[gate.name] = {
            "value": round(value, 3),
            "range": [round(min(per_round), 3), round(max(per_round), 3)],
            "target": entry["target"],
            "met": value <= gate.target,
        }
    tails = [p99 / p50 for p50, p99 in machine_tail if p50 > 0]
    machine: dict[str, Any] | None = None
    if tails:
        machine = {
            "p99_over_p50": round(statistics.median(tails), 3),
            "range": [round(min(tails), 3), round(max(tails), 3)],
            "rounds": [round(item, 3) for item in tails],
            "chunk_p50_ms": round(statistics.median(p50 for p50, _ in machine_tail), 3),
            "description": "p99 / p50 of one fixed chunk of work timed on the idle service core",
        }
    return {
        "machine_tail": machine,
        "cpu_self_ratios": cpu_self_ratios(scenarios),
        "reference_hop_ms": round(hop["median"] - direct["median"], 3),
        "reference_hop_ms_on_target_class": REFERENCE_HOP_MS,
        "machine_factor": round(factor, 2),
        "machine_factor_range": [round(min(factors), 2), round(max(factors), 2)],
        "scaled_gates": scaled,
    }


SELF_RATIO_SCENARIOS = ("execute_plain", "execute_mapped", "execute_full")
"""The scenarios whose CPU per request is measured against itself (c16)."""


def _slices_cpu(slices: Sequence[Mapping[str, Any]]) -> float:
    """CPU µs per request of `slices` together (weighted by their requests)."""
    requests = sum(item["requests"] for item in slices)
    return sum(item["cpu_us_per_req"] * item["requests"] for item in slices) / requests


def cpu_self_ratios(scenarios: Mapping[str, Any], concurrency: int = 16) -> dict[str, Any]:
    """The resolution of the CPU gates on this machine: for each scenario of
    `SELF_RATIO_SCENARIOS` that ran, per round, the CPU per request of the point's odd slices
    (1st, 3rd) ÷ that of its even slices (2nd, 4th). It is the same work, so a steady machine
    reads 1.00; the slices are as far apart in time as two scenarios' slices of one round, so
    the spread is what a ratio gate's operands can differ by with nothing changed. Points with
    a single slice are left out."""
    out: dict[str, Any] = {}
    for name in SELF_RATIO_SCENARIOS:
        point = scenarios.get(name, {}).get(f"c{concurrency}")
        if not point:
            continue
        rounds = [
            _slices_cpu(slices[0::2]) / _slices_cpu(slices[1::2])
            for slices in point.get("slices", [])
            if len(slices) >= 2
        ]
        if rounds:
            out[name] = {
                "value": round(statistics.median(rounds), 3),
                "range": [round(min(rounds), 3), round(max(rounds), 3)],
                "rounds": [round(item, 3) for item in rounds],
            }
    return out


# --------------------------------------------------------------------------------------------
# Table


def _cell(stats: Mapping[str, Any], digits: int) -> str:
    return f"{stats['median']:.{digits}f} [{stats['min']:.{digits}f}-{stats['max']:.{digits}f}]"


def _gate_line(name: str, gate: Mapping[str, Any], verdict: str) -> str:
    low, high = gate["range"]
    return (
        f"  {name}  {gate['value']:>9.3f}  [{low:.3f}-{high:.3f}]"
        f"  target {gate['target']:<7}  {verdict}"
    )


def table(results: Mapping[str, Any]) -> str:
    """The human-readable report: scenarios, memory, gates."""
    header = ("scenario", "c", "req/s", "p50 ms", "p99 ms", "CPU us/req", "others")
    rows: list[tuple[str, ...]] = []
    skipped: list[str] = []
    busiest = 0.0
    for name, entry in results["scenarios"].items():
        if "skipped" in entry:
            skipped.append(f"{name}: skipped ({entry['skipped']})")
            continue
        for key in sorted((k for k in entry if k.startswith("c") and k[1:].isdigit()), key=len):
            point = entry[key]
            service_other = point["other_load_service_core"]["median"]
            load_other = point["other_load_load_core"]["median"]
            busiest = max(busiest, service_other, load_other)
            rows.append(
                (
                    name,
                    key[1:],
                    _cell(point["rps"], 0),
                    _cell(point["p50_ms"], 3),
                    _cell(point["p99_ms"], 2),
                    _cell(point["cpu_us_per_req"], 0),
                    f"{service_other:.2f}/{load_other:.2f}",
                )
            )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()

    meta = results.get("meta", {})
    parts = [
        f"Adaptor Service benchmark ({meta.get('mode', '?')}, {meta.get('rounds', '?')} rounds, "
        f"commit {meta.get('commit', '?')}): median [min-max] over rounds",
        line(header),
        line(tuple("-" * width for width in widths)),
    ]
    if meta.get("uncommitted_service_changes"):
        changed = ", ".join(meta["uncommitted_service_changes"])
        parts.insert(1, f"note: the service ran with uncommitted changes in: {changed}")
    previous = ""
    for row in rows:
        if row[0] != previous and previous:
            parts.append("")
        previous = row[0]
        parts.append(line(row))
    parts += [f"{name}" for name in skipped]
    parts.append(
        "others: cores' worth of CPU used by other processes on the service/load core during "
        "the point (median)"
    )
    probes = [
        value
        for entry in results["scenarios"].values()
        for key, point in entry.items()
        if key.startswith("c") and key[1:].isdigit()
        for value in point["calibration_ms"]["runs"]
    ]
    if probes and max(probes) > 0:
        slowest = max(probes) / min(probes)
        parts.append(
            f"speed probe (a fixed loop on the service core before each slice): median "
            f"{statistics.median(probes):.1f} ms [{min(probes):.1f}-{max(probes):.1f}]"
        )
        if slowest > 1.25:
            parts.append(
                f"WARNING: the service core's speed varied {slowest:.1f}x during the run (a "
                "virtual machine's neighbours); per-round gate values are more robust than "
                "cross-round spreads"
            )
    if busiest > 0.1:
        parts.append(
            f"WARNING: other processes used up to {busiest:.2f} of a core during some points: "
            "latencies and CPU figures are inflated; rerun on a quiet machine"
        )

    memory = results.get("memory")
    if memory:
        parts += [
            "",
            f"memory ({memory['scenario']}, c16): RSS {memory['rss_before_mb']:.1f} MB -> "
            f"{memory['rss_after_mb']:.1f} MB over {memory['executions']} executions "
            f"(after {memory['warmup_executions']} warm-up), growth "
            f"{memory['rss_growth_mb']:+.1f} MB",
        ]

    parts += ["", "gates (median of the per-round values [their min-max]):"]
    name_width = max(len(name) for name in results["gates"])
    for name, gate in results["gates"].items():
        if gate["met"] is None:
            parts.append(f"  {name.ljust(name_width)}  skipped ({gate['skipped']})")
            continue
        verdict = "met" if gate["met"] else "MISSED"
        parts.append(_gate_line(name.ljust(name_width), gate, verdict))
    ratios = results.get("full_ratios")
    if ratios:
        parts += ["", "execute_full with events / with OpenTelemetry, CPU per request:"]
        for name, gate in ratios.items():
            verdict = "met" if gate["met"] else "MISSED"
            parts.append(_gate_line(f"cpu_ratio_full_{name}".ljust(name_width), gate, verdict))
    peer = results.get("peer")
    if peer:
        parts += [
            "",
            f"peer: n8n {peer['n8n_version']}, CPU per request over ours at c16 (no gate; "
            f"{peer['published']}):",
        ]
        peer_width = max((len(name) for name in peer["ratios"]), default=0)
        for name, entry in peer["ratios"].items():
            low, high = entry["range"]
            parts.append(
                f"  {name.ljust(peer_width)}  {entry['value']:>7.1f}x  [{low:.1f}-{high:.1f}]"
                f"  at {entry['rps_c16']:.0f} req/s"
            )
    calibrated = results.get("calibration")
    if calibrated:
        low, high = calibrated["machine_factor_range"]
        parts += [
            "",
            f"calibration: the reference hop (reference_plain - direct_small, p50 c1) adds "
            f"{calibrated['reference_hop_ms']:.3f} ms here, {REFERENCE_HOP_MS:.2f} ms on the "
            f"targets' machine class: this machine is {calibrated['machine_factor']:.2f}x "
            f"[{low:.2f}-{high:.2f}] slower. Time-based gates divided by that factor "
            "(informational; the verdicts above are the raw ones):",
        ]
        for name, gate in calibrated["scaled_gates"].items():
            verdict = "met" if gate["met"] else "missed"
            parts.append(_gate_line(name.ljust(name_width), gate, f"{verdict} when scaled"))
        machine = calibrated.get("machine_tail")
        if machine:
            low, high = machine["range"]
            parts.append(
                f"machine tail: the same ~{machine['chunk_p50_ms']:.1f} ms of work, timed again "
                f"and again on the idle service core, has p99 / p50 {machine['p99_over_p50']:.2f} "
                f"[{low:.2f}-{high:.2f}]: the floor under tail_ratio_mapped_c16 on this machine "
                "(informational)"
            )
        selves = calibrated.get("cpu_self_ratios")
        if selves:
            figures = ", ".join(
                f"{name} {entry['value']:.2f} [{entry['range'][0]:.2f}-{entry['range'][1]:.2f}]"
                for name, entry in selves.items()
            )
            parts.append(
                "CPU self-ratios: each scenario's CPU per request at c16, its odd slices / its "
                f"even slices within a round (the same work; 1.00 on a steady machine): {figures}: "
                "a CPU gate nearer its target than these are to 1.00 is within this run's noise "
                "(informational)"
            )
    return "\n".join(parts)
