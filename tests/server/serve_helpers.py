"""Helpers to start real ``bentolite serve --development`` processes on 127.0.0.1 and talk HTTP to them."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


__all__ = ["HERE", "Reply", "Server", "free_port"]

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reply:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class Server:
    """A ``bentolite serve`` child process; ``stop()`` ends it by PID and returns its log."""

    def __init__(self, target: str, tmp_path: Path, config: dict[str, Any] | None = None,
                 working_dir: Path = HERE, extra_args: list[str] | None = None,
                 production: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        args = [sys.executable, "-c", "from bentolite.cli import main; main()", "serve", target,
                "--production" if production else "--development",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--working-dir", str(working_dir), *(extra_args or [])]
        self.config = config or {}
        if config is not None:
            config_path = tmp_path / f"config-{self.port}.yaml"
            config_path.write_text(json.dumps(config))
            args += ["--config", str(config_path)]
        env = {**os.environ, "BENTOLITE_HOME": str(tmp_path / "home")}
        env.pop("BENTOLITE_CONFIG", None)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}:\n{self.log()}")
            try:
                if self.get("/readyz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready in {timeout_s}s:\n{self.log()}")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout_s: float = 30.0) -> Reply:
        req = urllib.request.Request(self.url + path, data=body, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as response:
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.headers, exc.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path, timeout_s=5)

    def post(self, path: str, body: bytes | str, content_type: str = "application/json",
             **kw: Any) -> Reply:
        data = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": content_type, **kw.pop("headers", {})}
        return self.request("POST", path, data, headers, **kw)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        return self.process.returncode
