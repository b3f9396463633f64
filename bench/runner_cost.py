"""Benchmark: CPU cost per runner call (caller and worker), robust to a shared, busy machine.

Wall-clock throughput swings with neighbours' load; CPU seconds spent per call do not (much).
Starts one worker of ``bench.runner_batching:runner`` by hand, sends ``--calls`` 1-row calls
at each concurrency, and reports CPU microseconds per call in the caller (getrusage) and the
worker (/proc/PID/stat), the worker's model share, and batches formed.
``--model-free`` makes the model nearly free (BENCH_FIXED_REPS=BENCH_ROW_REPS=0), leaving
the hop's own cost. ``--profile DIR`` writes cProfile stats of both sides.

Run: ``PYTHONPATH=. python bench/runner_cost.py [--calls 3000] [--model-free]``.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import AsyncIterator

__all__ = ["main"]

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy: one BLAS thread, as in the worker


_PROFILE_WORKER = """
import cProfile, sys, time
from bentolite.runner import worker
profiler = cProfile.Profile(time.thread_time)
profiler.enable()
try:
    worker.main(sys.argv[1:])
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats({out!r})
"""


def _proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _model_cpu_us(reps: tuple[str, str], rows: int, calls: int = 20) -> float:
    """CPU us per row of the bench model run in-process in batches of ``rows``."""
    import numpy as np

    from bench.runner_batching import ROW_DIM, CostlyModel

    os.environ["BENCH_FIXED_REPS"], os.environ["BENCH_ROW_REPS"] = reps
    model = CostlyModel()
    x = np.random.default_rng(1).standard_normal((rows, ROW_DIM)).astype(np.float32)
    model.predict(x)
    start = time.thread_time()
    for _ in range(calls):
        model.predict(x)
    return (time.thread_time() - start) / (calls * rows) * 1e6


async def _measure(handle, method, x, concurrency: int, calls: int, pid: int) -> dict:
    sent = 0

    async def client() -> None:
        nonlocal sent
        while sent < calls:
            sent += 1
            await handle.async_run_method(method, (x,), {})

    await asyncio.gather(*(client() for _ in range(min(concurrency, 8))))  # warm-up
    sent = 0
    c0, w0, t0 = _self_cpu_s(), _proc_cpu_s(pid), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    c1, w1, t1 = _self_cpu_s(), _proc_cpu_s(pid), time.perf_counter()
    return {"caller_us": (c1 - c0) / calls * 1e6, "worker_us": (w1 - w0) / calls * 1e6,
            "rows_s": calls / (t1 - t0)}


async def run(args: argparse.Namespace) -> None:
    import numpy as np

    from bench.runner_batching import ROW_DIM, calibrate, runner
    from bentolite.runner.process import RunnerWorkerGroup  # noqa: F401 - config side effects
    from bentolite.runner.remote import RemoteRunnerHandle

    if args.model_free:
        reps = ("0", "0")
    elif args.reps:
        reps = tuple(args.reps)
    else:
        reps = tuple(map(str, calibrate()))
    env = dict(os.environ, BENCH_FIXED_REPS=reps[0], BENCH_ROW_REPS=reps[1],
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="bl-cost-") as run_dir:
        sock = os.path.join(run_dir, "w.sock")
        metrics_dir = os.path.join(run_dir, "metrics")
        os.mkdir(metrics_dir)
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        cmd = [sys.executable]
        worker_args = ["--target", "bench.runner_batching:runner", "--runner-name", runner.name,
                       "--socket", sock, "--working-dir", os.getcwd()]
        if args.profile:  # CPU time of the loop thread (wall time would count preemption)
            out = os.path.join(args.profile, "worker.prof")
            cmd += ["-c", _PROFILE_WORKER.format(out=out), *worker_args]
        else:
            cmd += ["-m", "bentolite.runner.worker", *worker_args]
        async with worker_process(cmd, env, sock) as proc:
            handle = RemoteRunnerHandle(runner, [sock])
            method = runner.runner_methods[0]
            x = np.random.default_rng(1).standard_normal((1, ROW_DIM)).astype(np.float32)
            profiler = cProfile.Profile(time.thread_time) if args.profile else None
            for concurrency in args.concurrency:
                if profiler is not None:
                    profiler.enable()
                r = await _measure(handle, method, x, concurrency, args.calls, proc.pid)
                if profiler is not None:
                    profiler.disable()
                model_us = _model_cpu_us(reps, min(concurrency, runner.runner_methods[0]
                                                   .limits.max_batch_size))
                print(f"c={concurrency:3d}  caller {r['caller_us']:7.1f} us/call  "
                      f"worker {r['worker_us']:7.1f} us/call, of which model ~{model_us:.1f} "
                      f"(hop {r['worker_us'] - model_us:.1f})  "
                      f"({r['rows_s']:,.0f} rows/s wall)", flush=True)
            if profiler is not None:
                profiler.dump_stats(os.path.join(args.profile, "caller.prof"))
            await handle.aclose()


@contextlib.asynccontextmanager
async def worker_process(cmd: list[str], env: dict[str, str],
                         sock: str) -> AsyncIterator[subprocess.Popen]:
    """A runner worker started by ``cmd``, once its socket exists; terminated on exit."""
    proc = subprocess.Popen(cmd, env=env)
    try:
        while not os.path.exists(sock):
            await asyncio.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--model-free", action="store_true")
    parser.add_argument("--reps", nargs=2, metavar=("FIXED", "ROW"),
                        help="model repetitions (default: calibrate, which is noisy here)")
    parser.add_argument("--profile", metavar="DIR")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
