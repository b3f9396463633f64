"""Start real ``bentolite`` serving commands on 127.0.0.1 and watch their process trees."""
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

__all__ = ["HERE", "Command", "children", "free_port", "alive"]

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name (field 2) may hold spaces: the fields after its ')' are fixed
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.add(int(entry))
    return found


def cmdline(pid: int) -> str:
    """The command line of ``pid``, or "" once it has exited (a child may go at any moment)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Command:
    """A ``bentolite`` child process logging to a file; every PID it started is remembered and
    killed by ``close()`` if still alive."""

    def __init__(self, args: list[str], tmp_path: Path, *, env: dict[str, str] | None = None,
                 port: int | None = None, name: str = "server") -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"{name}-{self.port}.log"
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, "BENTOLITE_HOME": str(tmp_path / "home"), **(env or {})}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if "BENTOLITE_CONFIG" not in (env or {}):
            full_env.pop("BENTOLITE_CONFIG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from bentolite.cli import main; main()", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=HERE)
        self.seen_pids: set[int] = set()

    def children(self) -> set[int]:
        pids = children(self.process.pid)
        self.seen_pids |= pids
        return pids

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.children()
            if self.process.poll() is not None:
                raise AssertionError(f"exited {self.process.returncode}:\n{self.log()}")
            try:
                if self.get("/readyz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"not ready in {timeout_s}s:\n{self.log()}")

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                timeout_s: float = 30.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, data=body, headers=headers or {},
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path, timeout_s=5)
        return _Reply(status, body)

    def post_json(self, path: str, value: Any, timeout_s: float = 30.0) -> Any:
        status, body = self.request("POST", path, json.dumps(value).encode(),
                                    {"Content-Type": "application/json"}, timeout_s)
        return _Reply(status, body)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_exit(self, timeout_s: float = 90.0) -> int:
        """Wait for the command to exit by itself, noting its children meanwhile."""
        deadline = time.monotonic() + timeout_s
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"still running after {timeout_s}s:\n{self.log()}"
            self.children()
            time.sleep(0.05)
        return self.process.returncode

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.process.poll() is None:
            self.children()
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def close(self) -> None:
        """Kill (by PID) whatever is left of this command and its children."""
        if self.process.poll() is None:
            self.children()
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in self.seen_pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()


class _Reply:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def wait_for(condition: Any, what: str, cmd: Command, timeout_s: float = 60.0) -> Any:
    """Poll ``condition()`` until it is truthy (returned); fail if ``cmd`` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert cmd.process.poll() is None, f"server exited while waiting for {what}:\n{cmd.log()}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}:\n{cmd.log()[-4000:]}")
