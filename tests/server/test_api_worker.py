"""The API worker entry point the production supervisor starts: shared socket, shared metrics."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from serve_helpers import HERE, Server


class _Workers(Server):
    """Several ``bentolite.server.api_worker`` processes serving one inherited socket."""

    def __init__(self, tmp_path: Path, count: int) -> None:  # noqa: D107 - no super().__init__
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "workers.log"
        self._log = self.log_path.open("wb")
        prometheus_dir = tmp_path / "prometheus"
        prometheus_dir.mkdir()
        env = {**os.environ, "BENTOLITE_HOME": str(tmp_path / "home")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "bentolite.server.api_worker", "--target", "svc.py:svc",
                 "--working-dir", str(HERE), "--fd", str(self.sock.fileno()), "--runner-map", "{}",
                 "--worker-id", str(index), "--prometheus-dir", str(prometheus_dir)],
                pass_fds=[self.sock.fileno()], stdout=self._log, stderr=subprocess.STDOUT, env=env,
            )
            for index in range(count)
        ]
        self.process = self.processes[0]

    def stop(self) -> int:
        codes = []
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=15))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait(timeout=5))
        self.sock.close()
        self._log.close()
        return max(codes)


def test_workers_share_a_socket_and_aggregate_metrics(tmp_path: Path) -> None:
    workers = _Workers(tmp_path, count=2)
    try:
        workers.wait_ready()
        deadline = time.monotonic() + 60
        while not all(f"[api:{i}] bentolite.server: Serving" in workers.log() for i in (0, 1)):
            assert time.monotonic() < deadline, workers.log()
            time.sleep(0.1)
        sent = 0
        # Keep sending (bounded) until both workers have answered some, as the log shows.
        while sent < 12 or not all(f"[api:{i}] bentoml.access" in workers.log() for i in (0, 1)):
            assert sent < 300, "one worker never got a request"
            assert workers.post("/runner_sync", f"[{sent}]").json() == [sent + 1]
            sent += 1
        for process in workers.processes:
            assert process.poll() is None, workers.log()
        total = 0.0
        for line in workers.get("/metrics").body.decode().splitlines():
            if (line.startswith("bentoml_api_server_request_total{")
                    and 'endpoint="/runner_sync"' in line):
                total += float(line.rsplit(" ", 1)[1])
        assert total == sent  # the sum over both workers, whichever answered /metrics
    finally:
        assert workers.stop() == 0


def test_worker_calls_runner_worker_processes_from_runner_map(tmp_path: Path) -> None:
    """What the production supervisor does: runner workers first, then API workers."""
    import asyncio
    import json

    process = __import__("pytest").importorskip("bentolite.runner.process")
    sys.path.insert(0, str(HERE))
    try:
        from bentolite.services.loader import load

        service = load("svc.py:svc", HERE)
    finally:
        sys.path.remove(str(HERE))
    runner = service.runners[0]

    async def scenario() -> None:
        group = process.RunnerWorkerGroup(runner, "svc:svc", tmp_path / "run", working_dir=str(HERE),
                                          worker_count=1)
        async with group:
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sock.listen(16)
            port = sock.getsockname()[1]
            log = (tmp_path / "api.log").open("wb")
            api = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bentolite.server.api_worker", "--target", "svc.py:svc",
                "--working-dir", str(HERE), "--fd", str(sock.fileno()),
                "--runner-map", json.dumps({runner.name: group.addresses}),
                pass_fds=[sock.fileno()], stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "BENTOLITE_HOME": str(tmp_path / "home")})
            try:
                from aiohttp import ClientSession

                async with ClientSession() as session:
                    for _ in range(600):
                        assert api.returncode is None, (tmp_path / "api.log").read_text()
                        try:
                            async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                                if r.status == 200:
                                    break
                        except OSError:
                            pass
                        await asyncio.sleep(0.05)
                    for path in ("/runner_sync", "/runner_async"):
                        async with session.post(f"http://127.0.0.1:{port}{path}", json=[1, 2]) as r:
                            assert (r.status, await r.json()) == (200, [2, 3])
            finally:
                api.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(api.wait(), 15) == 0
                sock.close()
                log.close()

    asyncio.run(scenario())
