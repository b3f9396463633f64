"""Run an example end to end: save its models, serve it with ``bentolite serve``, call it."""
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

__all__ = ["EXAMPLES", "ExampleServer", "save_models", "free_port"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ROOT = EXAMPLES.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, extra: dict[str, str] | None, checkout: bool = True) -> dict[str, str]:
    env = {**os.environ, "BENTOLITE_HOME": str(home), **(extra or {})}
    for name in ("BENTOLITE_CONFIG", "BENTOML_CONFIG", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    if not extra or "BENTOLITE_CONFIG_OPTIONS" not in extra:
        env.pop("BENTOLITE_CONFIG_OPTIONS", None)
    if not checkout:  # an installed bentolite (tests/bentos/test_portability.py)
        env.pop("PYTHONPATH", None)
        return env
    # the example's own folder is the working dir: keep this checkout importable
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def save_models(example: str, home: Path, timeout_s: float = 300.0) -> str:
    """Run ``examples/<example>/save_models.py`` into ``home``; returns its output."""
    result = subprocess.run(
        [sys.executable, "save_models.py"], cwd=EXAMPLES / example, env=_env(home, None),
        capture_output=True, text=True, timeout=timeout_s)
    assert result.returncode == 0, f"save_models.py failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


class ExampleServer:
    """``bentolite serve service:svc --production`` of one example, on 127.0.0.1.

    ``target`` and ``cwd`` serve something else (a bento); ``bentolite`` is the command to
    run instead of this checkout's (an installed one, run without the checkout on the path).
    """

    def __init__(self, example: str, home: Path, log_dir: Path,
                 env: dict[str, str] | None = None, *, target: str = "service:svc",
                 cwd: Path | None = None, bentolite: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"{example}-{self.port}.log"
        self._log = self.log_path.open("wb")
        program = bentolite or [sys.executable, "-c", "from bentolite.cli import main; main()"]
        command = [*program, "serve", *([target] if target else []), "--production",
                   "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(command, cwd=cwd or EXAMPLES / example,
                                        env=_env(home, env, checkout=bentolite is None),
                                        stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def __enter__(self) -> ExampleServer:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    def wait_ready(self, timeout_s: float = 240.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready in {timeout_s:g} s:\n{self.log()[-4000:]}")

    def post(self, path: str, body: bytes, content_type: str,
             headers: dict[str, str] | None = None, timeout_s: float = 120.0
             ) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST",
            headers={"Content-Type": content_type, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def post_json(self, path: str, body: bytes, content_type: str, **kw: Any) -> Any:
        status, data = self.post(path, body, content_type, **kw)
        assert status == 200, f"{status}: {data[:500]!r}\n{self.log()[-3000:]}"
        return json.loads(data)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, grace_s: float = 20.0) -> int:
        """SIGTERM by PID, SIGKILL after ``grace_s``; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return self.process.returncode
