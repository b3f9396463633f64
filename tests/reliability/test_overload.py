"""Overload: with max_concurrency=N and 4N clients, the excess gets 503 + Retry-After at once.

The admitted requests hold their slots behind a gate file, so the test proves by ordering (not by
timing) that every rejection arrives while the admitted requests are still in flight, i.e. long
before the 30 s request timeout; then the gate opens and every admitted request succeeds.
"""
from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Iterator

import pytest

from tests.reliability.conftest import MAX_CONCURRENCY, start_server
from serve_helpers import Reply, Server

__all__: list[str] = []

CLIENTS = 4 * MAX_CONCURRENCY
ROUNDS = 4
REJECTED_BODY = json.dumps({"pad": "x" * 200_000}).encode()  # rejected bodies must not pile up


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture()
def gated_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    gate = tmp_path / "gate"
    gate.mkdir()
    srv = start_server(tmp_path, gate)
    try:
        yield srv, gate
    finally:
        (gate / "open").write_text("")  # release anything still held
        assert srv.stop() == 0, srv.log()[-2000:]


def one_round(server: Server, gate: Path, round_no: int) -> None:
    replies: queue.Queue[tuple[int, Reply]] = queue.Queue()
    clients = [threading.Thread(target=lambda i=i: replies.put(
        (i, server.post("/gated", json.dumps({"client": i, "round": round_no}).encode()))))
        for i in range(CLIENTS)]
    for client in clients:
        client.start()
    try:
        rejected = [replies.get(timeout=20) for _ in range(CLIENTS - MAX_CONCURRENCY)]
        for _, reply in rejected:
            assert reply.status == 503, reply.body
            assert reply.headers["Retry-After"] == "1"
            error = reply.json()
            assert error["type"] == "ServiceUnavailable"
            assert f"api_server.traffic.max_concurrency={MAX_CONCURRENCY}" in error["error"]
        # the gate is still closed: the admitted requests are still in flight
        assert replies.empty() and sum(c.is_alive() for c in clients) == MAX_CONCURRENCY
        # more load while every slot is held, with bodies, is refused too (and must not pile up)
        for _ in range(25):
            reply = server.post("/gated", REJECTED_BODY)
            assert reply.status == 503, reply.body
        (gate / "open").write_text("")
        admitted = [replies.get(timeout=20) for _ in range(MAX_CONCURRENCY)]
    finally:
        (gate / "open").write_text("")
        for client in clients:
            client.join(30)
        (gate / "open").unlink()
    rejected_ids = {i for i, _ in rejected}
    for i, reply in admitted:
        assert reply.status == 200, reply.body
        assert reply.json() == {"client": i, "round": round_no}
        assert i not in rejected_ids


def test_excess_requests_get_503_at_once_and_admitted_ones_succeed(gated_server: tuple[Server, Path]) -> None:
    server, gate = gated_server
    one_round(server, gate, 0)  # warm up: first-use allocations
    baseline_kib = rss_kib(server.process.pid)
    for round_no in range(1, ROUNDS + 1):
        one_round(server, gate, round_no)
    growth_kib = rss_kib(server.process.pid) - baseline_kib
    assert growth_kib < max(baseline_kib // 10, 8 * 1024), (baseline_kib, growth_kib)
    assert server.get("/readyz").status == 200
    assert server.post("/text", b"still fine", "text/plain").body == b"still fine"
