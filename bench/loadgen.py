"""Closed-loop HTTP load generator for the benchmarks (127.0.0.1 only).

``concurrency`` clients each send one request, wait for its response, and send the next,
for ``warmup_s`` (not recorded) and then ``duration_s`` (recorded). Reports requests/s,
latency percentiles and errors counted by HTTP status or exception name.

    python bench/loadgen.py http://127.0.0.1:3000/echo --body hello -c 8 -d 5
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import aiohttp

__all__ = ["LoadResult", "check_local_url", "percentile", "run_load", "run_load_sync"]

_LOCAL_HOSTS = {"localhost"}


class LoadResult(dict):
    """Outcome of one load run: a plain dict (JSON-ready) with attribute access."""

    __getattr__ = dict.__getitem__


def check_local_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` is http on a loopback address."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"load target must be an http:// URL, got {url!r}")
    host = parts.hostname
    if host in _LOCAL_HOSTS:
        return
    try:
        is_loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise ValueError(f"load target must be on 127.0.0.1 (loopback only), got host {host!r}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (NaN when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


async def run_load(
    url: str,
    body: bytes,
    *,
    content_type: str = "application/json",
    concurrency: int = 1,
    duration_s: float = 5.0,
    warmup_s: float = 1.0,
    request_timeout_s: float = 30.0,
    expected_body: bytes | None = None,
) -> LoadResult:
    """Drive ``url`` with POSTs of ``body`` from ``concurrency`` closed-loop clients."""
    check_local_url(url)
    if concurrency < 1 or duration_s <= 0 or warmup_s < 0:
        raise ValueError("need concurrency >= 1, duration_s > 0, warmup_s >= 0")
    latencies_ms: list[float] = []
    errors: Counter[str] = Counter()
    warmup_errors: Counter[str] = Counter()
    completed = 0
    answered = 0  # every request that got an answer, warm-up included
    headers = {"Content-Type": content_type}
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal completed, answered
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                return
            error: str | None = None
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    payload = await response.read()
                    if response.status != 200:
                        error = f"HTTP {response.status}"
                    elif expected_body is not None and payload != expected_body:
                        error = "wrong body"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                error = type(exc).__name__
                await asyncio.sleep(0.01)  # a refused connection must not spin the loop
            done = time.perf_counter()
            answered += error is None or error.startswith("HTTP")
            # a request counts in the window it was sent in, and only if it ended in time
            if sent < measure_from or done > stop_at:
                if error and sent < measure_from:
                    warmup_errors[error] += 1
                continue
            if error:
                errors[error] += 1
            else:
                completed += 1
                latencies_ms.append((done - sent) * 1000.0)

    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    latencies_ms.sort()

    def stat(fraction: float) -> float | None:  # None (JSON null) when nothing succeeded
        return percentile(latencies_ms, fraction) if latencies_ms else None

    return LoadResult(
        url=url,
        concurrency=concurrency,
        duration_s=duration_s,
        warmup_s=warmup_s,
        requests=completed,
        requests_per_s=completed / duration_s,
        p50_ms=stat(0.50),
        p90_ms=stat(0.90),
        p99_ms=stat(0.99),
        max_ms=stat(1.0),
        errors=dict(errors),
        error_count=sum(errors.values()),
        warmup_errors=dict(warmup_errors),
        answered=answered,
    )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_load_sync(url: str, body: bytes, **options: Any) -> LoadResult:
    """``run_load`` on a fresh event loop (uvloop when installed)."""
    loop = _new_event_loop()
    try:
        return loop.run_until_complete(run_load(url, body, **options))
    finally:  # interrupted (KeyboardInterrupt): cancel the clients and close the session cleanly
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def main(argv: list[str] | None = None) -> int:
    """CLI: print one JSON result line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="http://127.0.0.1:PORT/route")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--body", help="request body text")
    source.add_argument("--body-file", help="file holding the request body")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-d", "--duration-s", type=float, default=5.0)
    parser.add_argument("-w", "--warmup-s", type=float, default=1.0)
    parser.add_argument("--request-timeout-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.body is not None:
        body = args.body.encode()
    else:
        with open(args.body_file, "rb") as file:
            body = file.read()
    try:
        result = run_load_sync(
            args.url,
            body,
            content_type=args.content_type,
            concurrency=args.concurrency,
            duration_s=args.duration_s,
            warmup_s=args.warmup_s,
            request_timeout_s=args.request_timeout_s,
        )
    except ValueError as exc:
        parser.error(str(exc))
    print(json.dumps(result))
    return 0 if result.error_count == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
