"""Closed-loop HTTP load generator for the benchmarks (127.0.0.1 only).

``concurrency`` clients each send one request, wait for its response, and send the next,
for ``warmup_s`` (not recorded) and then ``duration_s`` (recorded). Reports requests/s,
latency percentiles and errors counted by HTTP status or exception name.

Each client is one keep-alive HTTP/1.1 connection that writes a request prepared once and
parses the answer itself (Content-Length or chunked). The generator shares the 2-core bench
box with the server it measures, so its own CPU per request matters: about 40 us here, where
an aiohttp client session took 136 us, CPU the server under test would not get.

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
import socket
from urllib.parse import urlsplit

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
    parts = urlsplit(url)
    request = _prepared_request(parts, body, content_type)
    host, port = parts.hostname, parts.port or 80
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s

    async def client() -> None:
        nonlocal completed, answered
        conn: _Connection | None = None
        while True:
            sent = time.perf_counter()
            if sent >= stop_at:
                break
            error: str | None = None
            try:
                if conn is None or conn.closed:
                    conn = await _connect(loop, host, port)
                status, payload = await conn.request(request, request_timeout_s)
                if status != 200:
                    error = f"HTTP {status}"
                elif expected_body is not None and payload != expected_body:
                    error = "wrong body"
            except (OSError, asyncio.TimeoutError, _BadResponse) as exc:
                error = type(exc).__name__
                if conn is not None:
                    conn.close()
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
        if conn is not None:
            conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
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


def _prepared_request(parts: Any, body: bytes, content_type: str) -> bytes:
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {content_type}"
            f"\r\nContent-Length: {len(body)}\r\nAccept: */*\r\n\r\n")
    return head.encode("latin-1") + body


class _BadResponse(Exception):
    """The server's answer is not HTTP/1.x this client can read."""


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> _Connection:
    _, conn = await loop.create_connection(_Connection, host, port)
    return conn


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request at a time, its answer parsed here."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head: tuple[int, int, int | None, bool] | None = None  # status, body start, length, keep

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish(exc=exc or ConnectionResetError("the server closed the connection"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def request(self, raw: bytes, timeout_s: float) -> asyncio.Future[tuple[int, bytes]]:
        """Send ``raw``; the future gets ``(status, body)``."""
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        self._timer = loop.call_later(timeout_s, self._time_out)
        assert self.transport is not None
        self.transport.write(raw)
        return waiter

    def _time_out(self) -> None:
        self._timer = None
        self._finish(exc=asyncio.TimeoutError())
        self.close()

    def _finish(self, result: tuple[int, bytes] | None = None,
                exc: BaseException | None = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(result)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            answer = self._parse()
        except (ValueError, IndexError) as exc:
            self._finish(exc=_BadResponse(str(exc)))
            self.close()
            return
        if answer is not None:
            status, body, keep_alive = answer
            self._finish((status, body))
            if not keep_alive:
                self.close()

    def _parse(self) -> tuple[int, bytes, bool] | None:
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return None
            lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
            if not lines[0].startswith("HTTP/1."):
                raise ValueError(f"not an HTTP/1.x status line: {lines[0][:40]!r}")
            status = int(lines[0][9:12])
            length: int | None = 0
            keep_alive = lines[0].startswith("HTTP/1.1")
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    length = None
                elif name == "connection":
                    keep_alive = value == "keep-alive" or (keep_alive and value != "close")
            self._head = (status, end + 4, length, keep_alive)
        status, start, length, keep_alive = self._head
        if length is not None:
            if len(buffer) < start + length:
                return None
            body = bytes(buffer[start:start + length])
            rest = start + length
        else:
            chunked = _read_chunked(buffer, start)
            if chunked is None:
                return None
            body, rest = chunked
        del buffer[:rest]
        self._head = None
        return status, body, keep_alive


def _read_chunked(buffer: bytearray, pos: int) -> tuple[bytes, int] | None:
    """A whole chunked body from ``pos`` and where it ends, or None while incomplete."""
    pieces = []
    while True:
        line_end = buffer.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
        pos = line_end + 2
        if size == 0:  # no trailers expected: the body ends with an empty line
            if len(buffer) < pos + 2:
                return None
            return b"".join(pieces), pos + 2
        if len(buffer) < pos + size + 2:
            return None
        pieces.append(bytes(buffer[pos:pos + size]))
        pos += size + 2


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
