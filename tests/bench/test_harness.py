"""The benchmark harness's own parts: load generator and server-process handling."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from loadgen import check_local_url, percentile, run_load  # noqa: E402
from procs import ServerProcess, become_subreaper, descendants, free_port, tree_rss_kb  # noqa: E402

__all__: list[str] = []


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:80/x", "http://example.com/x", "https://127.0.0.1/x", "ftp://127.0.0.1/"]
)
def test_load_targets_off_loopback_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="127.0.0.1|http://"):
        check_local_url(url)


def test_loopback_targets_are_accepted() -> None:
    for url in ("http://127.0.0.1:1/x", "http://localhost:1/x", "http://[::1]:1/x"):
        check_local_url(url)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.9) == 7.0


async def _serve_and_load(**options: object) -> dict:
    calls = {"n": 0}

    async def handler(request: web.Request) -> web.Response:
        calls["n"] += 1
        body = await request.read()
        if calls["n"] % 5 == 0:
            return web.Response(status=503, text="busy")
        return web.Response(body=body)

    app = web.Application()
    app.router.add_post("/echo", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        return await run_load(f"http://127.0.0.1:{port}/echo", b"ping", **options)
    finally:
        await runner.cleanup()


def test_load_counts_successes_and_errors_by_status() -> None:
    result = asyncio.run(
        _serve_and_load(
            content_type="text/plain", concurrency=4, duration_s=0.5, warmup_s=0.1, expected_body=b"ping"
        )
    )
    assert result["requests"] > 0
    assert set(result["errors"]) == {"HTTP 503"}
    assert result["error_count"] > 0
    assert result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]


def test_load_flags_wrong_bodies() -> None:
    result = asyncio.run(
        _serve_and_load(concurrency=1, duration_s=0.3, warmup_s=0, expected_body=b"pong")
    )
    assert result["requests"] == 0
    assert result["errors"].get("wrong body", 0) > 0
    assert result["p50_ms"] is None


async def _load_against(handler: object, **options: object) -> dict:
    app = web.Application()
    app.router.add_post("/x", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        return await run_load(f"http://127.0.0.1:{port}/x", b"ping", **options)
    finally:
        await runner.cleanup()


def test_load_reads_chunked_answers_and_reconnects_after_close() -> None:
    """The generator parses HTTP itself: a chunked body comes back whole, and a server that
    closes each connection (``Connection: close``) gets a new one for the next request."""
    async def chunked(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for piece in (b"po", b"", b"ng"):
            await response.write(piece)
        await response.write_eof()
        return response

    async def closing(request: web.Request) -> web.Response:
        await request.read()
        response = web.Response(body=b"pong")
        response.force_close()
        return response

    for handler in (chunked, closing):
        result = asyncio.run(_load_against(handler, concurrency=2, duration_s=0.3, warmup_s=0,
                                           expected_body=b"pong"))
        assert result["requests"] > 10 and result["errors"] == {}, (handler, result)


def test_load_times_out_a_silent_server() -> None:
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=b"late")

    result = asyncio.run(_load_against(silent, concurrency=1, duration_s=0.5, warmup_s=0,
                                       request_timeout_s=0.1))
    assert result["requests"] == 0 and result["errors"].get("TimeoutError", 0) >= 2, result


SERVER_TREE = textwrap.dedent("""
    import http.server, signal, subprocess, sys
    port = int(sys.argv[1])
    # a grandchild that ignores SIGTERM: stop() must SIGKILL it by PID
    subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)"])
    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/readyz" else 404)
            self.end_headers()
        def log_message(self, *args):
            pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever()
    """)


def test_server_process_ready_rss_and_stop_leaves_nothing(tmp_path: Path) -> None:
    assert become_subreaper()  # as compare.py does: orphaned workers come back to us to reap
    script = tmp_path / "server.py"
    script.write_text(SERVER_TREE)
    port = free_port()
    server = ServerProcess(
        [sys.executable, str(script), str(port)],
        env=dict(os.environ),
        cwd=tmp_path,
        log_path=tmp_path / "server.log",
        port=port,
    )
    server.start()
    try:
        assert server.wait_ready(timeout_s=60) > 0
        while len(descendants(server.pid)) < 1:  # the grandchild may still be starting
            time.sleep(0.01)
        tree = [server.pid, *descendants(server.pid)]
        rss_kb, processes = tree_rss_kb(server.pid)
        assert processes == 2 and rss_kb > 0
    finally:
        killed = server.stop(grace_s=1.0)
    assert len(killed) == 1 and killed[0] in tree[1:]
    for pid in tree:  # gone: neither running nor left as a zombie
        assert not Path(f"/proc/{pid}").exists()
    assert server.process is not None and server.process.returncode == 0


def test_server_that_dies_before_ready_is_reported(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-c", "raise SystemExit(3)"],
        env=dict(os.environ),
        cwd=tmp_path,
        log_path=tmp_path / "server.log",
        port=port,
    )
    server.start()
    try:
        with pytest.raises(RuntimeError, match="exited with 3"):
            server.wait_ready(timeout_s=60)
    finally:
        server.stop(grace_s=1.0)


def _record(impl: str, rps: float, p99_ms: float, cold_s: float, rss_kb: int) -> object:
    from compare import RunRecord

    record = RunRecord(impl, 0, cold_start_s=cold_s, rss_ready_kb=rss_kb, processes_ready=3)
    record.loads[64] = {"requests_per_s": rps, "p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": p99_ms, "error_count": 0}
    return record


def test_report_has_both_systems_ratio_and_target_verdicts() -> None:
    import argparse

    from compare import SCENARIOS
    from report import render_report

    args = argparse.Namespace(
        server_warmup_s=1, warmup_s=1, duration_s=1, rounds=1, concurrency={"batching": (64,)}
    )
    results = {
        "batching": [
            _record("bentoml", rps=250.0, p99_ms=350.0, cold_s=2.5, rss_kb=250 * 1024),
            _record("bentolite", rps=2500.0, p99_ms=400.0, cold_s=1.0, rss_kb=100 * 1024),
        ]
    }
    report = render_report(results, SCENARIOS, args)
    assert "| c=64 req/s | 250.0 | 2500.0 | 10.00x |" in report
    assert "| c=64 p99 ms | 350.00 | 400.00 | 1.14x |" in report
    assert "batching c=64: req/s: 10.00x (target >= 8x): met" in report
    assert "batching c=64: p99 latency: 1.14x (target < 1x): NOT met" in report
    assert "RSS after ready (batching): 0.40x (target <= 0.6x): met" in report
    assert "- commit: " in report and "- machine: " in report


def test_each_scenario_runs_on_its_own_baseline_and_bentolite() -> None:
    from compare import SCENARIOS, plan

    runs = plan(["bentoml", "bentoml14", "bentolite"], list(SCENARIOS))
    assert runs["echo"] == ["bentoml", "bentolite"]
    assert runs["v2_graph"] == ["bentoml14", "bentolite"]
    assert plan(["bentolite"], ["echo", "v2_echo"]) == {"echo": ["bentolite"], "v2_echo": ["bentolite"]}
    assert plan(["bentoml"], ["v2_batching"]) == {"v2_batching": []}
    for name, scenario in SCENARIOS.items():
        module, _, attr = scenario.target.partition(":")
        assert (Path(__file__).resolve().parents[2] / "bench" / "services" / f"{module}.py").is_file()
        assert attr, name
        if scenario.same_work_as:  # a new-style scenario and the v1 one doing the same work
            v1 = SCENARIOS[scenario.same_work_as]
            assert scenario.baseline == "bentoml14" and v1.baseline == "bentoml"
            assert scenario.concurrencies == v1.concurrencies


def test_report_compares_new_style_with_bentoml14_and_with_the_v1_path() -> None:
    import argparse

    from compare import SCENARIOS
    from report import render_report

    args = argparse.Namespace(server_warmup_s=1, warmup_s=1, duration_s=1, rounds=1, concurrency={})
    results = {
        "batching": [_record("bentolite", rps=2000.0, p99_ms=50.0, cold_s=1.0, rss_kb=140 * 1024)],
        "v2_batching": [
            _record("bentoml14", rps=400.0, p99_ms=200.0, cold_s=3.0, rss_kb=200 * 1024),
            _record("bentolite", rps=1700.0, p99_ms=40.0, cold_s=1.0, rss_kb=100 * 1024),
        ],
    }
    report = render_report(results, SCENARIOS, args)
    assert "| metric | BentoML 1.4.39 | bentolite | bentolite / BentoML |" in report
    assert "| c=64 req/s | 400.0 | 1700.0 | 4.25x |" in report
    assert "### bentolite: v2_batching (new style) against batching (v1 path), same work" in report
    assert "| metric | batching (v1) | v2_batching (new style) | new style / v1 |" in report
    assert "| c=64 req/s | 2000.0 | 1700.0 | 0.85x |" in report
    assert "new-style batching c=64: req/s: 4.25x (target >= 3x): met" in report
    assert "new-style batching c=64: p99 latency: 0.20x (target <= 0.3x): met" in report
    assert ("v2_batching vs batching on bentolite (new-style / v1 path): req/s at the highest "
            "level: 0.85x (target >= 0.9x): NOT met") in report
    assert "| c=64 req/s | – | 2000.0 | – |" in report  # BentoML 1.1.11 was not run


def _bench_args(name: str) -> object:
    import argparse

    return argparse.Namespace(
        ready_timeout_s=120, settle_s=0, server_warmup_s=0, warmup_s=0, duration_s=1.0,
        stop_grace_s=15, concurrency={name: (2,)},
    )


@pytest.mark.parametrize("name", ["v2_echo", "v2_batching", "v2_graph"])
def test_new_style_scenario_serves_on_bentolite(name: str, tmp_path: Path) -> None:
    from compare import SCENARIOS, _bentolite_impl, run_once

    assert become_subreaper()
    impl = _bentolite_impl(tmp_path, None)
    record = run_once(impl, name, SCENARIOS[name], 0, _bench_args(name), tmp_path)
    assert record.loads[2]["requests"] > 0 and record.loads[2]["error_count"] == 0
    assert record.killed_pids == []  # stopped by SIGTERM alone


def test_same_new_style_code_serves_on_bentoml14(tmp_path: Path) -> None:
    """The graph (dependencies, to_async, gather) on BentoML 1.4.39 itself, in its own venv."""
    from compare import SCENARIOS, _bentoml_impl, run_once

    assert become_subreaper()
    impl = _bentoml_impl(tmp_path, "bentoml14")
    record = run_once(impl, "v2_graph", SCENARIOS["v2_graph"], 0, _bench_args("v2_graph"), tmp_path)
    # answered right (run_once checks one answer first); no zero-error check: BentoML 1.4.39's
    # entry service now and then gets ServerDisconnectedError from a dependency (HTTP 500)
    assert record.loads[2]["requests"] > 0
    assert record.processes_ready == 5  # the supervisor and one process per service


def test_litserve_serves_the_batching_work_in_its_own_venv(tmp_path: Path) -> None:
    """The LitServe peer (scripts/peer_venv.sh litserve-0.2.19) answers like bentolite does,
    each level records the bytes its processes moved through system calls, and it stops on
    its own signal (SIGINT: it ignores SIGTERM) with nothing left to SIGKILL, even when the
    harness itself was started with SIGINT ignored."""
    from compare import SCENARIOS, _litserve_impl, run_once

    assert become_subreaper()
    impl = _litserve_impl()
    # as in a background job, where SIGINT is inherited as ignored: the server must still get it
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        record = run_once(impl, "ls_batching", SCENARIOS["ls_batching"], 0,
                          _bench_args("ls_batching"), tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    load = record.loads[2]
    assert load["requests"] > 0 and load["error_count"] == 0
    assert load["io_bytes_per_request"] > len(SCENARIOS["ls_batching"].body)
    assert record.killed_pids == [] and record.stop_s < 10, (record.killed_pids, record.stop_s)


def test_a_large_payload_is_counted_through_every_process_it_crosses(tmp_path: Path) -> None:
    """602 KB posted to the API and handed to the runner: through system calls once (the API
    worker reads the HTTP body; the hop goes through shared memory); with the rings off
    (BENTOLITE_SHM_RING_MB=0) also written to the runner and read there: three times."""
    from compare import SCENARIOS, _bentolite_impl, run_once

    assert become_subreaper()
    size = len(SCENARIOS["tensor_bin"].body)
    for ring_mb, at_least, below in (("8", 1, 2), ("0", 3, None)):
        impl = _bentolite_impl(tmp_path / ring_mb, None)
        impl.env["BENTOLITE_SHM_RING_MB"] = ring_mb
        record = run_once(impl, "tensor_bin", SCENARIOS["tensor_bin"], 0,
                          _bench_args("tensor_bin"), tmp_path / ring_mb)
        load = record.loads[2]
        assert load["requests"] > 0 and load["error_count"] == 0
        moved = load["io_bytes_per_request"]
        assert moved >= at_least * size and (below is None or moved < below * size), ring_mb
        assert 0 < load["cpu_ms_per_request"] < 1000  # the server tree's CPU, per request
