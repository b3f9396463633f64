"""Production mode (``bentolite serve``: supervisor, API workers, runner workers) under faults.

Complements tests/e2e/test_production.py (one runner SIGKILL, SIGTERM drain of API-only
requests) with: repeated runner SIGKILLs under continuous HTTP load (restarts with doubling
backoff, only calls in flight fail, no API worker hangs), a raising and a hanging runner method
over HTTP, SIGTERM with runner calls in flight leaving no process, socket or temp dir,
abandoned requests, and an API worker SIGKILLed under load (only its connections fail).
"""
from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import re
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

pytest.importorskip("bentolite.server.supervisor", reason="production serving is not merged yet")

from tests.e2e.prod_helpers import (  # noqa: E402
    Command, alive, children, cmdline, free_port, wait_for,
)

__all__: list[str] = []

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
REQUEST_BOUND_S = 30.0  # a request taking longer than this is a hang
LOAD_CLIENTS = 4
KILLS = 3


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children, ...)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def bentolite_temp_dirs() -> set[str]:
    root = Path(tempfile.gettempdir())
    return {str(p) for p in root.glob("bentolite-*")}


@pytest.fixture()
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Command] = []

    def start(config: dict[str, Any] | None = None, api_workers: int = 1) -> Command:
        port = free_port()
        args = ["serve", "rel_prod_svc:svc", "--host", "127.0.0.1", "--port", str(port),
                "--api-workers", str(api_workers), "--graceful-shutdown-timeout", "20",
                "--working-dir", str(HERE)]
        if config is not None:
            path = tmp_path / f"config-{port}.yaml"
            path.write_text(json.dumps(config))
            args += ["--config", str(path)]
        cmd = Command(args, tmp_path, port=port)
        started.append(cmd)
        cmd.wait_ready()
        return cmd

    try:
        yield start
    finally:
        for cmd in started:
            cmd.close()


def runner_worker_pids(cmd: Command) -> set[int]:
    return {pid for pid in cmd.children()
            if "bentolite.runner.worker" in cmdline(pid)}


def test_repeated_runner_kills_under_http_load(serve: Any) -> None:
    cmd = serve()
    results: list[tuple[float, float, int, bytes]] = []  # (start, end, status, body)
    outages: list[tuple[float, float]] = []
    stop = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            start = time.monotonic()
            if i % 2:
                status, body = cmd.request("POST", "/nap", b"0.05", {"Content-Type": "application/json"},
                                           REQUEST_BOUND_S)
            else:
                status, body = cmd.request("POST", "/add", json.dumps([n, i]).encode(),
                                           {"Content-Type": "application/json"}, REQUEST_BOUND_S)
                assert status != 200 or json.loads(body) == [n + 1, i + 1]
            results.append((start, time.monotonic(), status, body))

    with concurrent.futures.ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        clients = [pool.submit(client, n) for n in range(LOAD_CLIENTS)]
        try:
            for _ in range(KILLS):
                before = len(results)
                wait_for(lambda: len(results) >= before + 20, "load to flow", cmd)
                workers = runner_worker_pids(cmd)
                victim = json.loads(cmd.post_json("/runner_pid", None).body)
                assert victim in workers
                killed_at = time.monotonic()
                os.kill(victim, signal.SIGKILL)  # a runner worker this test's server started
                wait_for(lambda: len(runner_worker_pids(cmd) - {victim}) == len(workers),
                         "the replacement worker", cmd)
                new_pid = (runner_worker_pids(cmd) - workers).pop()
                wait_for(lambda: f"pid {new_pid})" in cmd.log(), "the replacement to be ready", cmd)
                outages.append((killed_at, time.monotonic()))
            before = len(results)
            wait_for(lambda: len(results) >= before + 20, "load after the last restart", cmd)
        finally:
            stop.set()
            for future in clients:
                future.result(timeout=REQUEST_BOUND_S + 10)  # no client hung

    statuses = {status for _, _, status, _ in results}
    assert statuses <= {200, 503}, statuses
    failures = [(s, e, json.loads(body)) for s, e, status, body in results if status == 503]
    for start, end, error in failures:
        assert "rel_model" in error["error"], error  # names the runner
        assert any(start <= ready and end >= killed for killed, ready in outages), error
    assert len(failures) <= KILLS * LOAD_CLIENTS
    assert sum(status == 200 for _, _, status, _ in results) > 5 * max(len(failures), 1)
    # each restart waited, and a worker's consecutive crashes double its wait
    log = cmd.log()
    assert len(re.findall(r"runner:rel_model:\d \(pid \d+\) exited with signal SIGKILL", log)) == KILLS
    delays: dict[str, list[float]] = {}
    for name, delay in re.findall(r"restarting (runner:rel_model:\d) in ([0-9.]+) s", log):
        delays.setdefault(name, []).append(float(delay))
    assert sum(map(len, delays.values())) == KILLS
    for sequence in delays.values():
        assert sequence == [sequence[0] * 2 ** k for k in range(len(sequence))], delays
        assert sequence[0] > 0
    assert cmd.get("/readyz").status == 200
    assert cmd.terminate() == 0, cmd.log()[-3000:]


def test_raising_and_hanging_runner_methods_over_http(serve: Any) -> None:
    cmd = serve({"runners": {"traffic": {"timeout": 1}}})
    pid = json.loads(cmd.post_json("/runner_pid", None).body)
    for _ in range(3):
        reply = cmd.post_json("/explode", "the weights are stale")
        assert reply.status == 500, reply.body
        error = reply.json()
        assert error["error"] == "runner 'rel_model' raised ValueError: the weights are stale", error
        assert "Traceback" not in reply.body.decode()
    assert "Traceback" in cmd.log()  # the details go to the log
    # a hung call is answered with a timeout naming the setting, after runners.traffic.timeout
    reply = cmd.post_json("/nap", 3.0)
    assert reply.status == 504, reply.body
    assert "runners.traffic.timeout" in reply.json()["error"]
    # the worker lives on: once the hung call ends, calls are served by the same process
    wait_for(lambda: cmd.post_json("/add", [1]).status == 200, "the worker to serve again", cmd)
    pids = {json.loads(cmd.post_json("/runner_pid", None).body) for _ in range(6)}
    assert pid in pids and pids <= runner_worker_pids(cmd)
    assert "exited with" not in cmd.log()
    assert cmd.terminate() == 0, cmd.log()[-3000:]


def test_sigterm_drains_then_leaves_nothing_behind(serve: Any) -> None:
    cmd = serve(api_workers=2)
    tree = descendants(cmd.process.pid)
    assert len(tree) >= 3, tree  # 2 API workers and at least one runner worker
    new_temp = set(re.findall(r"ready on (/\S+?)/runners/", cmd.log()))
    assert len(new_temp) == 1 and new_temp <= bentolite_temp_dirs(), new_temp
    sockets = [p for d in new_temp for p in Path(d).rglob("*.sock")]
    assert sockets, new_temp  # the runner workers' Unix sockets live in the run dir
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        in_flight = [pool.submit(cmd.post_json, "/nap", 1.5) for _ in range(2)]
        in_flight += [pool.submit(cmd.post_json, "/add", [i]) for i in range(2)]
        wait_for(lambda: "bentoml_api_server_request_in_progress" in (m := cmd.get("/metrics").body.decode())
                 and _in_progress(m, "/nap") >= 2, "the naps to be in flight", cmd)
        code = cmd.terminate(timeout_s=60)
        answers = [f.result(timeout=REQUEST_BOUND_S) for f in in_flight]
    assert [a.status for a in answers] == [200] * 4, [a.body for a in answers]
    assert [a.json() for a in answers[:2]] == [1.5, 1.5]
    assert code == 0, cmd.log()[-3000:]
    assert not [pid for pid in tree | cmd.seen_pids if alive(pid)]  # no orphans
    assert not any(Path(d).exists() for d in new_temp)  # run dir, sockets, metrics: gone
    assert not [s for s in sockets if s.exists()]
    with socket.socket() as probe:  # no listening socket is left: the port binds again
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (TIME_WAIT is fine)
        probe.bind(("127.0.0.1", cmd.port))
        probe.listen()


def _in_progress(metrics: str, endpoint: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("bentoml_api_server_request_in_progress{") and f'endpoint="{endpoint}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_clients_that_disconnect_leave_nothing_in_flight(serve: Any) -> None:
    cmd = serve()
    body = b"0.5"
    request = (f"POST /nap HTTP/1.1\r\nHost: 127.0.0.1:{cmd.port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    for _ in range(8):  # each gives up as soon as its request is sent
        with socket.create_connection(("127.0.0.1", cmd.port), timeout=5) as conn:
            conn.sendall(request)
    # (like BentoML 1.1, the server finishes an abandoned request; it must not stay stuck)
    wait_for(lambda: cmd.log().count("path=/nap,") >= 8, "every abandoned request to end", cmd)
    assert _in_progress(cmd.get("/metrics").body.decode(), "/nap") == 0
    assert cmd.post_json("/add", [1, 2]).json() == [2, 3]
    assert cmd.post_json("/nap", 0.0).json() == 0.0
    assert cmd.get("/readyz").status == 200
    assert "Traceback" not in cmd.log() and "exited with" not in cmd.log()
    assert cmd.terminate() == 0, cmd.log()[-3000:]


def test_api_worker_killed_under_load_is_replaced(serve: Any) -> None:
    cmd = serve(api_workers=2)
    api_workers = {pid for pid in cmd.children()
                   if "bentolite.server.api_worker" in cmdline(pid)}
    assert len(api_workers) == 2
    victim = min(api_workers)
    outcomes: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                status, body = cmd.request("POST", "/nap", b"0.02", {"Content-Type": "application/json"},
                                           REQUEST_BOUND_S)
                outcomes.append(str(status) if status == 200 else f"{status} {body[:200]!r}")
            except (OSError, http.client.HTTPException) as e:  # a connection the killed worker held
                outcomes.append(type(e).__name__)

    with concurrent.futures.ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        clients = [pool.submit(client) for _ in range(LOAD_CLIENTS)]
        try:
            wait_for(lambda: len(outcomes) >= 20, "load to flow", cmd)
            os.kill(victim, signal.SIGKILL)  # an API worker this test's server started
            wait_for(lambda: re.search(rf"api:\d \(pid {victim}\) exited with signal SIGKILL", cmd.log()),
                     "the crash log line", cmd)
            wait_for(lambda: len({pid for pid in cmd.children() if pid != victim} - api_workers) >= 1,
                     "a replacement API worker", cmd)
            before = len(outcomes)
            wait_for(lambda: len(outcomes) >= before + 40, "load after the restart", cmd)
        finally:
            stop.set()
            for future in clients:
                future.result(timeout=REQUEST_BOUND_S + 10)  # no client hung
    assert outcomes.count("200") > 0.9 * len(outcomes), outcomes
    assert set(outcomes) - {"200"} <= {"ConnectionResetError", "RemoteDisconnected", "URLError",
                                       "BadStatusLine", "ConnectionRefusedError"}, set(outcomes)
    assert len(outcomes) - outcomes.count("200") <= LOAD_CLIENTS
    assert cmd.get("/readyz").status == 200
    assert cmd.terminate() == 0, cmd.log()[-3000:]
