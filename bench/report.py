"""Markdown report of a benchmark run: a header (date, machine, commit) and a table per scenario."""

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
IMPLS = ("bentoml", "bentolite")


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


# The project's targets (issue 6), as (scenario, what, metric picker, comparison, ratio bound).
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
]


def _load_at(record: Any, concurrency: int, key: str) -> float:
    value = record.loads.get(concurrency, {}).get(key)
    return float("nan") if value is None else value


def _top_load(record: Any, key: str) -> float:
    return _load_at(record, max(record.loads), key) if record.loads else float("nan")


def _target_lines(results: Mapping[str, list[Any]]) -> list[str]:
    lines = []
    for name, what, pick, comparison, bound in _TARGETS:
        records = results.get(name, [])
        theirs = _median(pick(r) for r in records if r.impl == "bentoml")
        ours = _median(pick(r) for r in records if r.impl == "bentolite")
        if theirs is None or ours is None or theirs == 0:
            continue
        ratio = ours / theirs
        met = {">=": ratio >= bound, "<": ratio < bound, "<=": ratio <= bound}[comparison]
        verdict = "met" if met else "NOT met"
        lines.append(f"- {what}: {ratio:.2f}x (target {comparison} {bound:g}x): {verdict}")
    return ["### Targets", "", *lines, ""] if lines else []


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
        "- cells are medians over rounds; ratio = bentolite / BentoML (higher is better for "
        "req/s, lower for latency, cold start and RSS)",
        "",
    ]
    for name, records in results.items():
        scenario = scenarios[name]
        by_impl = {impl: [r for r in records if r.impl == impl] for impl in IMPLS}
        lines += [f"### {name}: {scenario.description}", ""]
        lines += [
            "| metric | BentoML 1.1.11 | bentolite | bentolite / BentoML |",
            "|---|---:|---:|---:|",
        ]

        def row(label: str, digits: int, pick: Callable[[Any], float]) -> None:
            theirs = _median([pick(r) for r in by_impl["bentoml"]])
            ours = _median([pick(r) for r in by_impl["bentolite"]])
            cells = [
                label,
                format_value(theirs, digits),
                format_value(ours, digits),
                _ratio(ours, theirs),
            ]
            lines.append("| " + " | ".join(cells) + " |")

        for concurrency in args.concurrency.get(name, scenario.concurrencies):

            def load(key: str, c: int = concurrency) -> Callable[[Any], float]:
                return lambda r: r.loads[c][key] if c in r.loads else float("nan")

            row(f"c={concurrency} req/s", 1, load("requests_per_s"))
            row(f"c={concurrency} p50 ms", 2, load("p50_ms"))
            row(f"c={concurrency} p90 ms", 2, load("p90_ms"))
            row(f"c={concurrency} p99 ms", 2, load("p99_ms"))
            row(f"c={concurrency} errors", 0, load("error_count"))
        row("cold start s (launch to /readyz 200)", 2, lambda r: r.cold_start_s)
        row("RSS MiB after ready (all server processes)", 0, lambda r: r.rss_ready_kb / 1024)
        row("RSS MiB after load", 0, lambda r: r.rss_after_load_kb / 1024)
        row("server processes", 0, lambda r: r.processes_ready)
        lines.append("")
    lines += _target_lines(results)
    return "\n".join(lines)
