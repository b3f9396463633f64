"""Benchmark: a large array across the runner hop, through the socket or a shared-memory ring.

Starts one worker of the ``payloads`` runner (``bench/services/payloads.py``) by hand and
calls ``summarize`` with a 1x3x224x224 float32 tensor (602 KB) at each concurrency, with
the rings off (``BENTOLITE_SHM_RING_MB=0``, every byte through the Unix socket) and on,
alternating, ``--rounds`` times each. Reports the medians of CPU microseconds per call in
the caller and the worker, and calls/s; the ratio is ring / socket in the same run.

Run: ``PYTHONPATH=. python bench/payload_hop.py [--calls 3000] [--rounds 3]``.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runner_cost import _measure, worker_process  # noqa: E402

SERVICES = Path(__file__).resolve().parent / "services"


async def _one(ring_mb: str, concurrency: list[int], calls: int) -> dict[int, dict]:
    import numpy as np

    from bentolite.runner import shm
    from bentolite.runner.remote import RemoteRunnerHandle

    sys.path.insert(0, str(SERVICES))
    os.environ["BENCH_IMPL"] = "bentolite"
    from payloads import TENSOR_SHAPE, payload_runner

    shm.RING_BYTES = int(float(ring_mb) * (1 << 20))  # our side; the worker's from its env
    env = dict(os.environ, BENTOLITE_SHM_RING_MB=ring_mb, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="bl-hop-") as run_dir:
        sock = os.path.join(run_dir, "w.sock")
        cmd = [sys.executable, "-m", "bentolite.runner.worker", "--target", "payloads:svc",
               "--runner-name", payload_runner.name, "--socket", sock,
               "--working-dir", str(SERVICES)]
        async with worker_process(cmd, env, sock) as proc:
            handle = RemoteRunnerHandle(payload_runner, [sock])
            method = next(m for m in payload_runner.runner_methods if m.name == "summarize")
            x = np.random.default_rng(1).random(TENSOR_SHAPE, dtype=np.float32)
            out = {c: await _measure(handle, method, x, c, calls, proc.pid) for c in concurrency}
            await handle.aclose()
            return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    runs: dict[str, list[dict[int, dict]]] = {"0": [], "8": []}
    for _ in range(args.rounds):
        for ring_mb in runs:
            runs[ring_mb].append(asyncio.run(_one(ring_mb, args.concurrency, args.calls)))
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: 602 KB float32 tensor to "
          f"`summarize`, {args.calls} calls per level, medians of {args.rounds} alternating runs")
    print("\n| concurrency | metric | socket | ring | ring / socket |\n|---:|---|---:|---:|---:|")
    for c in args.concurrency:
        for key, label in (("caller_us", "caller CPU us/call"), ("worker_us", "worker CPU us/call"),
                           ("rows_s", "calls/s")):
            sock_v, ring_v = (statistics.median(r[c][key] for r in runs[mb]) for mb in runs)
            print(f"| {c} | {label} | {sock_v:,.0f} | {ring_v:,.0f} | {ring_v / sock_v:.2f}x |")


if __name__ == "__main__":
    main()
