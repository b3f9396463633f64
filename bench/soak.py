"""Soak test: minutes of mixed load on a production ``bentolite serve`` (127.0.0.1 only).

Starts ``bentolite serve services/soak.py:svc`` (supervisor, API workers, runner workers),
drives a closed loop of mixed requests, each with the status it must get (batched runner
calls, text, short runner naps, 1.2 MB uploads to a runner: 200; malformed bodies: 400; a
raising runner method: 500),
samples the RSS of the server's whole process tree, then stops the server with SIGTERM and
checks that no process of its tree is left. Not part of CI (it runs for minutes):

    python bench/soak.py                      # 5 minutes, 8 clients, 2 API workers
    python bench/soak.py --duration-s 30      # a short validation run

Prints one JSON object; exits 1 if any request got an unexpected answer, the RSS grew by 10 %
or more from the end of warm-up to the end, or a process outlived the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import ServerProcess, become_subreaper, free_port, tree_rss_kb  # noqa: E402

__all__ = ["main", "run_soak"]

SERVICES_DIR = Path(__file__).resolve().parent / "services"
ROOT = Path(__file__).resolve().parents[1]

# (weight, path, content type, body, expected status)
MIX: list[tuple[int, str, str, bytes, int]] = [
    (50, "/add", "application/json", b"[1, 2, 3]", 200),
    (15, "/shout", "text/plain", b"soak", 200),
    (10, "/nap", "application/json", b"0.005", 200),
    (10, "/add", "application/json", b"[1, 2", 400),
    (5, "/add", "application/json", b"\xff[1]", 400),
    (5, "/shout", "text/plain", b"\xff\xfe", 400),
    (5, "/explode", "application/json", b'"expected failure"', 500),
    (4, "/mean", "application/octet-stream", bytes(1_200_000), 200),
    (1, "/mean", "application/octet-stream", bytes(1_200_001), 400),
]


async def _client(session: aiohttp.ClientSession, url: str, stop_at: float, rng: random.Random,
                  outcomes: Counter[str], unexpected: list[str]) -> None:
    weights = [m[0] for m in MIX]
    while time.monotonic() < stop_at:
        _, path, content_type, body, expected = rng.choices(MIX, weights)[0]
        try:
            async with session.post(url + path, data=body,
                                    headers={"Content-Type": content_type}) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            outcomes[f"{path} {type(e).__name__}"] += 1
            unexpected.append(f"{path}: {type(e).__name__}: {e}")
            continue
        outcomes[f"{path} {status}"] += 1
        if status != expected:
            unexpected.append(f"{path} {body[:30]!r}: {status}, expected {expected}")


async def _drive(url: str, duration_s: float, concurrency: int, server: ServerProcess,
                 warmup_s: float, sample_s: float) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    stop_at = start + duration_s
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        clients = [asyncio.ensure_future(_client(session, url, stop_at, random.Random(i),
                                                 outcomes, unexpected))
                   for i in range(concurrency)]
        while time.monotonic() < stop_at:
            await asyncio.sleep(min(sample_s, max(stop_at - time.monotonic(), 0.01)))
            samples.append((time.monotonic() - start, (await asyncio.to_thread(server.rss))[0]))
        await asyncio.gather(*clients)
    after_warmup = [kib for t, kib in samples if t >= warmup_s] or [samples[-1][1]]
    baseline_kib, end_kib = after_warmup[0], after_warmup[-1]
    return {
        "requests": sum(outcomes.values()),
        "outcomes": dict(sorted(outcomes.items())),
        "unexpected": len(unexpected),
        "unexpected_examples": unexpected[:10],
        "rss_baseline_kib": baseline_kib,
        "rss_end_kib": end_kib,
        "rss_max_kib": max(after_warmup),
        "rss_growth_pct": round(100.0 * (end_kib - baseline_kib) / baseline_kib, 2),
    }


def run_soak(duration_s: float, concurrency: int, api_workers: int, warmup_s: float,
             sample_s: float) -> dict[str, Any]:
    """Serve, load, measure, stop; returns the report."""
    become_subreaper()  # workers orphaned by a dying server are reaped here
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    env = {**os.environ, "BENTOLITE_HOME": str(work / "home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("BENTOLITE_CONFIG", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = ServerProcess(
        [sys.executable, "-c", "from bentolite.cli import main; main()", "serve", "soak:svc", "--production",
         "--host", "127.0.0.1", "--port", str(port), "--api-workers", str(api_workers),
         "--working-dir", str(SERVICES_DIR)],
        env=env, cwd=SERVICES_DIR, log_path=work / "server.log", port=port)
    server.start()
    try:
        ready_s = server.wait_ready()
        report = asyncio.run(_drive(f"http://127.0.0.1:{port}", duration_s, concurrency, server,
                                    warmup_s, sample_s))
        report["processes"] = tree_rss_kb(server.pid)[1]
    finally:
        leftovers = server.stop(grace_s=30.0)
    report.update(duration_s=duration_s, concurrency=concurrency, api_workers=api_workers,
                  ready_s=round(ready_s, 2), processes_killed_after_sigterm=leftovers,
                  server_exit_code=server.process.returncode if server.process else None,
                  log=str(work / "server.log"))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", "--duration", type=float, default=300.0)
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--warmup-s", type=float, default=None,
                        help="RSS baseline taken after this long [default: 10%% of the duration]")
    parser.add_argument("--sample-s", type=float, default=2.0, help="RSS sampling period")
    args = parser.parse_args(argv)
    warmup_s = args.warmup_s if args.warmup_s is not None else args.duration_s / 10
    report = run_soak(args.duration_s, args.concurrency, args.api_workers, warmup_s, args.sample_s)
    ok = (report["unexpected"] == 0 and report["rss_growth_pct"] < 10.0
          and not report["processes_killed_after_sigterm"] and report["server_exit_code"] == 0)
    if ok:  # keep the server log only when something went wrong
        shutil.rmtree(Path(report.pop("log")).parent, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
