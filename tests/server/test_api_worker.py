"""The API worker entry point the production supervisor starts: shared socket, shared metrics."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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
