"""Markdown report of a benchmark run: a header (date, machine, commit), a table per scenario
(bentolite against its baseline), one per new-style scenario against bentolite's v1 path on
the same work, and the target verdicts."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

__all__ = ["format_value", "render_report"]

REPO_ROOT = Path(__file__).resolve().parent.parent
LABELS = {"bentoml": "BentoML 1.1.11", "bentoml14": "BentoML 1.4.39", "litserve": "LitServe 0.2.19",
          "bentolite": "bentolite"}


def _median(values: Iterable[float | None]) -> float | None:
    values = [v for v in values if v is not None and v == v]  # drop missing and NaN
    return statistics.median(values) if values else None


def format_value(value: float | None, digits: int) -> str:
    """``value`` with ``digits`` decimals, or a dash when missing."""
    return "–" if value is None else f"{value:.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "–"
    return f"{ours / theirs:.2f}x"


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = ""
    cpus = f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))})"
    return f"{cpus}, {model}{memory}, {platform.platform()}"


def _commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" (with uncommitted changes)" if dirty else "")


# The project's targets (issue 6: v1; issue 12: new style), as (scenario, what, metric picker,
# comparison, ratio bound); the ratio is bentolite / the scenario's baseline.
_TARGETS: list[tuple[str, str, Callable[[Any], float], str, float]] = [
    (
        "echo",
        "echo, no runner: req/s at the highest level",
        lambda r: _top_load(r, "requests_per_s"),
        ">=",
        4.0,
    ),
    (
        "echo_runner",
        "echo through a runner: req/s at the highest level",
        lambda r: _top_load(r, "requests_per_s"),
        ">=",
        5.0,
    ),
    ("batching", "batching c=64: req/s", lambda r: _load_at(r, 64, "requests_per_s"), ">=", 8.0),
    ("batching", "batching c=64: p99 latency", lambda r: _load_at(r, 64, "p99_ms"), "<", 1.0),
    ("echo", "cold start (echo)", lambda r: r.cold_start_s, "<=", 0.5),
    ("batching", "RSS after ready (batching)", lambda r: r.rss_ready_kb, "<=", 0.6),
    (
        "v2_echo",
        "new-style echo: req/s at the highest level",
        lambda r: _top_load(r, "requests_per_s"),
        ">=",
        5.0,
    ),
    (
        "v2_graph",
        "new-style graph: req/s at the highest level",
        lambda r: _top_load(r, "requests_per_s"),
        ">=",
        5.0,
    ),
    (
        "v2_batching",
        "new-style batching c=64: req/s",
        lambda r: _load_at(r, 64, "requests_per_s"),
        ">=",
        3.0,
    ),
    (
        "v2_batching",
        "new-style batching c=64: p99 latency",
        lambda r: _load_at(r, 64, "p99_ms"),
        "<=",
        0.3,
    ),
    # issue 17: modern peers
    (
        "v2_batching",
        "new-style batching c=64 vs BentoML 1.4.39: req/s (issue 17)",
        lambda r: _load_at(r, 64, "requests_per_s"),
        ">=",
        5.0,
    ),
    ("ls_batching", "batching c=64 vs LitServe: req/s", lambda r: _load_at(r, 64, "requests_per_s"),
     ">=", 3.0),
    ("ls_batching", "batching c=64 vs LitServe: p99 latency", lambda r: _load_at(r, 64, "p99_ms"),
     "<", 1.0),
]
#: the new-style path against bentolite's v1 path on the same work: req/s at the highest level
_SAME_WORK_BOUND = 0.9


def _load_at(record: Any, concurrency: int, key: str) -> float:
    value = record.loads.get(concurrency, {}).get(key)
    return float("nan") if value is None else value


def _top_load(record: Any, key: str) -> float:
    return _load_at(record, max(record.loads), key) if record.loads else float("nan")


def _bentolite(results: Mapping[str, list[Any]], name: str) -> list[Any]:
    return [r for r in results.get(name, []) if r.impl == "bentolite"]


def _verdict(what: str, ours: float | None, theirs: float | None, comparison: str,
             bound: float) -> list[str]:
    if theirs is None or ours is None or theirs == 0:
        return []
    ratio = ours / theirs
    met = {">=": ratio >= bound, "<": ratio < bound, "<=": ratio <= bound}[comparison]
    verdict = "met" if met else "NOT met"
    return [f"- {what}: {ratio:.2f}x (target {comparison} {bound:g}x): {verdict}"]


def _target_lines(results: Mapping[str, list[Any]], scenarios: Mapping[str, Any]) -> list[str]:
    lines = []
    for name, what, pick, comparison, bound in _TARGETS:
        if name not in results:
            continue
        baseline = scenarios[name].baseline
        theirs = _median(pick(r) for r in results[name] if r.impl == baseline)
        ours = _median(pick(r) for r in _bentolite(results, name))
        lines += _verdict(what, ours, theirs, comparison, bound)
    for name, v1 in _same_work_pairs(results, scenarios):
        pick = lambda r: _top_load(r, "requests_per_s")  # noqa: E731
        lines += _verdict(
            f"{name} vs {v1} on bentolite (new-style / v1 path): req/s at the highest level",
            _median(pick(r) for r in _bentolite(results, name)),
            _median(pick(r) for r in _bentolite(results, v1)),
            ">=",
            _SAME_WORK_BOUND,
        )
    return ["### Targets", "", *lines, ""] if lines else []


def _same_work_pairs(
    results: Mapping[str, list[Any]], scenarios: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(new-style scenario, v1 scenario) pairs that bentolite ran both of in this run."""
    return [
        (name, scenarios[name].same_work_as)
        for name in results
        if scenarios[name].same_work_as
        and _bentolite(results, name)
        and _bentolite(results, scenarios[name].same_work_as)
    ]


def render_report(
    results: Mapping[str, list[Any]],
    scenarios: Mapping[str, Any],
    args: Any,
) -> str:
    """Markdown: a header, then one table per scenario (medians over rounds)."""
    lines = [
        f"## Benchmark {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- machine: {_machine()}",
        f"- commit: {_commit()}; Python {platform.python_version()}",
        f"- load: closed loop, {args.server_warmup_s:g} s warm-up per launch at the highest "
        f"concurrency, then per concurrency {args.warmup_s:g} s warm-up + {args.duration_s:g} s "
        f"measured; {args.rounds} round(s) per implementation, alternating; one API worker; "
        f"config bench/config.yaml; load generator on the same machine",
        "- cells are medians over rounds; ratio = bentolite / BentoML 1.1.11 for v1 scenarios, "
        "bentolite / BentoML 1.4.39 for new-style (`v2_*`) ones, bentolite / LitServe 0.2.19 for "
        "`ls_batching`, new-style / v1 for bentolite's "
        "two paths on the same work (higher is better for req/s, lower for latency, bytes, CPU, "
        "cold start and RSS); CPU per request is the server's whole process tree's user + "
        "system time over the level (warm-up included) divided by the requests answered",
        "",
    ]
    for name, records in results.items():
        scenario = scenarios[name]
        baseline = scenario.baseline
        lines += [f"### {name}: {scenario.description}", ""]
        lines += _table(
            [r for r in records if r.impl == baseline],
            _bentolite(results, name),
            (LABELS[baseline], "bentolite", f"bentolite / {LABELS[baseline].split()[0]}"),
            args.concurrency.get(name, scenario.concurrencies),
        )
    for name, v1 in _same_work_pairs(results, scenarios):
        lines += [f"### bentolite: {name} (new style) against {v1} (v1 path), same work", ""]
        levels = args.concurrency.get(name, scenarios[name].concurrencies)
        v1_levels = args.concurrency.get(v1, scenarios[v1].concurrencies)
        lines += _table(
            _bentolite(results, v1),
            _bentolite(results, name),
            (f"{v1} (v1)", f"{name} (new style)", "new style / v1"),
            [c for c in levels if c in v1_levels],
        )
    lines += _target_lines(results, scenarios)
    return "\n".join(lines)


def _table(
    theirs: list[Any], ours: list[Any], headers: tuple[str, str, str], levels: Iterable[int]
) -> list[str]:
    """Rows of medians for two sets of runs and their ratio ``ours / theirs``."""
    lines = [f"| metric | {' | '.join(headers)} |", "|---|---:|---:|---:|"]

    def row(label: str, digits: int, pick: Callable[[Any], float]) -> None:
        a = _median([pick(r) for r in theirs])
        b = _median([pick(r) for r in ours])
        cells = [label, format_value(a, digits), format_value(b, digits), _ratio(b, a)]
        lines.append("| " + " | ".join(cells) + " |")

    for concurrency in levels:

        def load(key: str, c: int = concurrency) -> Callable[[Any], float]:
            return lambda r: r.loads[c][key] if c in r.loads else float("nan")

        row(f"c={concurrency} req/s", 1, load("requests_per_s"))
        row(f"c={concurrency} p50 ms", 2, load("p50_ms"))
        row(f"c={concurrency} p90 ms", 2, load("p90_ms"))
        row(f"c={concurrency} p99 ms", 2, load("p99_ms"))
        row(f"c={concurrency} errors", 0, load("error_count"))
        if any("io_bytes_per_request" in r.loads.get(concurrency, {}) for r in [*theirs, *ours]):
            row(f"c={concurrency} KB through syscalls per request (all server processes)", 0,
                lambda r, c=concurrency: r.loads[c].get("io_bytes_per_request", float("nan")) / 1e3
                if c in r.loads else float("nan"))
        if any("cpu_ms_per_request" in r.loads.get(concurrency, {}) for r in [*theirs, *ours]):
            row(f"c={concurrency} CPU ms per request (all server processes)", 2,
                lambda r, c=concurrency: r.loads[c].get("cpu_ms_per_request", float("nan"))
                if c in r.loads else float("nan"))
    row("cold start s (launch to /readyz 200)", 2, lambda r: r.cold_start_s)
    row("RSS MiB after ready (all server processes)", 0, lambda r: r.rss_ready_kb / 1024)
    row("RSS MiB after load", 0, lambda r: r.rss_after_load_kb / 1024)
    row("server processes", 0, lambda r: r.processes_ready)
    lines.append("")
    return lines
