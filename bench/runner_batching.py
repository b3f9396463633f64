"""Benchmark: adaptive batching through a runner worker vs the model's in-process limit.

The model is CPU-bound numpy costing about 5 ms + 0.1 ms per row (calibrated at start).
Measures (a) in-process rows/s per batch size (the limit is the best), (b) rows/s through
one runner worker with 1-row calls at concurrency 1, 8, 32, 64, 128, 256, (c) p50/p99 latency, and
the latency a runner call adds over a direct call at concurrency 1. Writes the
"Runner batching" section of bench/RESULTS.md.

Run: ``./scripts/test`` venv, then ``PYTHONPATH=. python bench/runner_batching.py [--seconds 5]``.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import bentolite  # noqa: E402

__all__ = ["CostlyModel", "runner"]

ROW_DIM = 256
LEVELS = (1, 8, 32, 64, 128, 256)
FIXED_DIM = 192


class CostlyModel(bentolite.Runnable):
    """About 5 ms per call plus 0.1 ms per row of real matrix work."""

    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        # std 1/sqrt(dim) keeps activations from vanishing into (slow) denormal floats
        self.fixed = (rng.standard_normal((FIXED_DIM, FIXED_DIM)) / FIXED_DIM ** 0.5
                      ).astype(np.float32)
        self.weights = (rng.standard_normal((ROW_DIM, ROW_DIM)) / ROW_DIM ** 0.5
                        ).astype(np.float32)
        self.fixed_reps = int(os.environ.get("BENCH_FIXED_REPS", "20"))
        self.row_reps = int(os.environ.get("BENCH_ROW_REPS", "20"))

    @bentolite.Runnable.method(batchable=True)
    def predict(self, x: np.ndarray) -> np.ndarray:
        m = self.fixed
        for _ in range(self.fixed_reps):
            m = np.tanh(m @ self.fixed)
        for _ in range(self.row_reps):
            x = np.tanh(x @ self.weights)
        return x[:, :4] + m[0, 0]

    @bentolite.Runnable.method(batchable=False)
    def echo(self, x: np.ndarray) -> np.ndarray:
        """No model work: the round trip alone."""
        return x


runner = bentolite.Runner(CostlyModel, name="bench_model", max_batch_size=100)


def _time_call(model: CostlyModel, rows: int, repeat: int = 20) -> float:
    x = np.random.default_rng(1).standard_normal((rows, ROW_DIM)).astype(np.float32)
    model.predict(x)
    start = time.perf_counter()
    for _ in range(repeat):
        model.predict(x)
    return (time.perf_counter() - start) / repeat


def calibrate() -> tuple[int, int]:
    """Repetitions giving ~5 ms fixed and ~0.1 ms per row on this machine."""
    os.environ["BENCH_FIXED_REPS"], os.environ["BENCH_ROW_REPS"] = "10", "10"
    model = CostlyModel()
    model.row_reps = 0
    fixed_10 = _time_call(model, 1)
    model.fixed_reps, model.row_reps = 0, 10
    per_row_10 = (_time_call(model, 64) - _time_call(model, 1)) / 63
    fixed_reps = max(1, round(10 * 0.005 / fixed_10))
    row_reps = max(1, round(10 * 0.0001 / per_row_10))
    return fixed_reps, row_reps


def in_process(seconds: float) -> dict[int, float]:
    """rows/s per batch size: best of three short rounds (neighbours' load only slows)."""
    model = CostlyModel()
    rates: dict[int, float] = {}
    for _ in range(3):
        for size in (1, 8, 32, 64, 100):
            x = np.random.default_rng(1).standard_normal((size, ROW_DIM)).astype(np.float32)
            n = 0
            start = time.perf_counter()
            while time.perf_counter() - start < seconds / 3:
                model.predict(x)
                n += 1
            rates[size] = max(rates.get(size, 0.0), n * size / (time.perf_counter() - start))
    return rates


async def added_latency(pairs: int = 150) -> tuple[float, float]:
    """Median direct 1-row call and median (runner call - direct call), interleaved pairs."""
    model = CostlyModel()
    x = np.random.default_rng(1).standard_normal((1, ROW_DIM)).astype(np.float32)
    direct, extra = [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        model.predict(x)
        t1 = time.perf_counter()
        await runner.predict.async_run(x)
        t2 = time.perf_counter()
        direct.append(t1 - t0)
        extra.append((t2 - t1) - (t1 - t0))
    return statistics.median(direct), statistics.median(extra)


async def wake_up_cost(calls: int = 200) -> dict[float, float]:
    """Median round trip of a 1-row call to a near-free model after the caller was busy for
    0, 1 or 5 ms: what waking an idle worker costs on this machine, apart from our code."""
    x = np.zeros((1, ROW_DIM), dtype=np.float32)
    out = {}
    for gap_ms in (0.0, 1.0, 5.0):
        times = []
        for _ in range(calls):
            until = time.perf_counter() + gap_ms / 1000
            while time.perf_counter() < until:  # the caller computes; the worker sits idle
                pass
            start = time.perf_counter()
            await runner.echo.async_run(x)
            times.append(time.perf_counter() - start)
        out[gap_ms] = statistics.median(times)
    return out


async def through_runner(concurrency: int, seconds: float) -> tuple[float, list[float]]:
    x = np.random.default_rng(1).standard_normal((1, ROW_DIM)).astype(np.float32)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    warm_until = time.perf_counter() + min(1.0, seconds / 4)

    async def client() -> None:
        while (now := time.perf_counter()) < stop_at:
            await runner.predict.async_run(x)
            if now > warm_until:
                latencies.append(time.perf_counter() - now)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(latencies) / (stop_at - warm_until), latencies


def batch_stats(metrics_dir: str) -> tuple[float, float, float]:
    """(batches, items, total queue wait s) so far, from the worker's multiprocess metrics."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)
    values = {}
    for family in registry.collect():
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return (values.get("bentoml_runner_adaptive_batch_size_count", 0.0),
            values.get("bentoml_runner_adaptive_batch_size_sum", 0.0),
            values.get("bentoml_runner_queue_wait_seconds_sum", 0.0))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_all(seconds: float) -> str:
    fixed_reps, row_reps = calibrate()
    os.environ["BENCH_FIXED_REPS"], os.environ["BENCH_ROW_REPS"] = str(fixed_reps), str(row_reps)
    rates = in_process(min(1.5, seconds / 3))
    limit_size = max(rates, key=rates.get)  # type: ignore[arg-type]
    limit = rates[limit_size]
    cost_1, cost_100 = 1 / rates[1], 100 / rates[100]
    lines = [
        "## Runner batching",
        "",
        f"`python bench/runner_batching.py --seconds {seconds:g}` on {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"Model: numpy, 1 thread, {cost_1 * 1000:.2f} ms for 1 row, {cost_100 * 1000:.2f} ms "
        f"for 100 rows (target 5 ms + 0.1 ms/row). One runner worker, max_batch_size=100, "
        "default max_wait_ms=10; the caller is one asyncio process sending 1-row calls "
        "(closed loop) over the framed Unix-socket protocol.",
        "",
        "(a) In-process (direct calls, no runner; best of 3 rounds):",
        "",
        "| batch size | rows/s |",
        "|---:|---:|",
        *[f"| {size} | {rate:,.0f} |" for size, rate in rates.items()],
        "",
        f"Limit = {limit:,.0f} rows/s (batch {limit_size}). At concurrency c a batch holds at "
        f"most c rows, so the best possible at concurrency 64 is the batch-64 rate "
        f"({rates[64]:,.0f} rows/s).",
        "",
        "(b, c) Through a runner worker, 1-row calls:",
        "",
        "| concurrency | rows/s | vs limit | vs batch-c in-process | p50 ms | p99 ms "
        "| mean batch | mean queue wait ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="bl-bench-") as run_dir:
        from bentolite.runner.process import RunnerWorkerGroup

        root = str(Path(__file__).resolve().parents[1])
        metrics_dir = os.path.join(run_dir, "metrics")
        os.mkdir(metrics_dir)
        async with RunnerWorkerGroup(runner, "bench.runner_batching:runner", run_dir,
                                     working_dir=root, worker_count=1,
                                     extra_env={"PROMETHEUS_MULTIPROC_DIR": metrics_dir}) as group:
            runner.init_client(group.addresses)
            try:
                wake = [await wake_up_cost()]
                rounds = [await added_latency(100)]  # one round before each level, one after
                results = {}
                for concurrency in LEVELS:
                    if concurrency > 1:
                        rounds.append(await added_latency(100))
                    before = batch_stats(metrics_dir)
                    rate, lat = await through_runner(concurrency, seconds)
                    after = batch_stats(metrics_dir)
                    batches, items, wait_s = (a - b for a, b in zip(after, before))
                    results[concurrency] = (rate, lat)
                    ref = rates[min(rates, key=lambda s: abs(s - concurrency))]
                    lines.append(
                        f"| {concurrency} | {rate:,.0f} | {rate / limit:.0%} | {rate / ref:.0%} | "
                        f"{pct(lat, 0.5) * 1000:.2f} | {pct(lat, 0.99) * 1000:.2f} | "
                        f"{items / max(batches, 1):.1f} | {wait_s / max(items, 1) * 1000:.2f} |")
                rounds.append(await added_latency(100))
                wake.append(await wake_up_cost())
            finally:
                runner.destroy()
    added = sorted(r[1] * 1000 for r in rounds)
    c64 = results[64][0] / limit
    wake_text = "; ".join(
        f"{gap:g} ms: " + " / ".join(f"{w[gap] * 1e6:.0f}" for w in wake) + " us"
        for gap in wake[0])
    lines += [
        "",
        f"Added latency at concurrency 1: **{statistics.median(added):.2f} ms** median of "
        f"{len(rounds)} rounds, best round {added[0]:.2f} ms (each round: the median over 100 "
        "interleaved pairs of (runner call - direct call); rounds taken before, between and "
        "after the concurrency levels: "
        + ", ".join(f"{r[1] * 1000:.2f}" for r in rounds)
        + f" ms; the direct 1-row call's median is {rounds[0][0] * 1000:.2f} ms; "
        "target <= 1 ms).",
        f"Wake-up cost of this machine: median round trip of a call to a near-free method "
        f"after the caller computed for 0, 1 or 5 ms (the worker idle meanwhile), at the "
        f"start / end of the run: {wake_text}. The growth with the idle gap is the time an "
        "idle virtual CPU takes to wake, not code: an interleaved pair pays it twice (the "
        "worker idles through the direct call, the caller through the model call).",
        f"Concurrency 64: **{results[64][0] / rates[64]:.0%}** of the in-process batch-64 "
        f"rate (target >= 90%), {c64:.0%} of the limit: in a closed loop of 64 callers no "
        f"batch can exceed 64 rows, so {rates[64] / limit:.0%} of the limit (the batch-64 rate "
        "over the batch-100 rate) is its ceiling. "
        f"Concurrency 128 and 256, where batches can fill to 100: "
        f"**{results[128][0] / limit:.0%}** and **{results[256][0] / limit:.0%}** of the limit "
        "(target >= 85%).",
        "",
        "Wall-clock rates on this shared box swing by 2x between runs; see the next section "
        "(`bench/runner_cost.py`) for the CPU per call of the hop, which is steadier.",
        "",
        "Reading these: the mean batch reaches the concurrency (the dispatcher forms full "
        "batches and adds well under 1 ms of queue wait). The caller's calls made in one "
        "event-loop turn are coalesced into one call on the wire and the worker splits such "
        "a call by rows to fill a batch, so the hop costs about one frame per batch, not one "
        "per call; what is left between model calls is the caller's own per-call work "
        "(futures, slicing its rows) and two cross-process wake-ups. Run-to-run spread on "
        "this shared box is large; compare the 1-row cost in the Model line (tight loop, "
        "alone) with the direct call's median in the added-latency line (interleaved with "
        "runner calls): the same in-process call runs slower once the worker process is "
        "active, so part of any gap is the model itself slowing down on this VM's CPUs.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path) -> None:
    """Replace (or append) the '## Runner batching' section of RESULTS.md."""
    old = path.read_text() if path.exists() else "# Benchmark results\n\n"
    start = old.find("## Runner batching")
    if start == -1:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = old.find("\n## ", start + 1)
        new = old[:start] + text.rstrip("\n") + ("\n" if end == -1 else "\n\n" + old[end + 1:])
    path.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=6.0, help="per concurrency level")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    try:
        import uvloop

        text = uvloop.run(run_all(args.seconds))
    except ImportError:
        text = asyncio.run(run_all(args.seconds))
    print(text)
    if not args.no_write:
        write_section(text, Path(__file__).with_name("RESULTS.md"))


if __name__ == "__main__":
    sys.exit(main())
