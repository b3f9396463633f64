"""Split deployment: ``start-runner-server`` + ``start-http-server --remote-runner`` end to end."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bentolite.runner.container import encode_payload
from bentolite.runner.protocol import CALL, pack_frame

from .prod_helpers import Command, free_port

pytestmark = pytest.mark.slow

TOKEN = "split-test-secret"


class _OpensAFile:
    """Unpickling this creates ``path``: proof of whether a body was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _call_runner_server(port: int, body: bytes, token: str | None) -> int:
    headers = {"Content-Type": "application/vnd.bentolite.frame"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/call/add_one", data=body,
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_http_ok(cmd: Command, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert cmd.process.poll() is None, cmd.log()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready:\n{cmd.log()}")


def test_runner_server_and_http_server(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"runners": {"auth_token": TOKEN}}))
    runner_port = free_port()
    runner = Command(["start-runner-server", "prod_svc:svc", "--runner-name", "adder",
                      "--host", "127.0.0.1", "--port", str(runner_port), "--config", str(config),
                      "--working-dir", "."], tmp_path, port=runner_port, name="runner")
    api = None
    try:
        _wait_http_ok(runner, f"http://127.0.0.1:{runner_port}/readyz")
        api_port = free_port()
        api = Command(["start-http-server", "prod_svc:svc", "--remote-runner",
                       f"adder=tcp://127.0.0.1:{runner_port}", "--host", "127.0.0.1", "--port",
                       str(api_port), "--api-workers", "1", "--config", str(config),
                       "--working-dir", "."], tmp_path, port=api_port, name="api")
        api.wait_ready()
        assert api.post_json("/add", [1, 2]).json() == [2, 3]
        assert api.post_json("/runner_pid", None).json() == runner.process.pid  # exec'd worker

        # Without or with a wrong token: 401, and the body is never unpickled.
        marker = tmp_path / "unpickled"
        body = b"".join(bytes(p) for p in pack_frame(
            CALL, 1, {"m": "add_one"}, encode_payload(_OpensAFile(str(marker)))))
        assert _call_runner_server(runner_port, body, None) == 401
        assert _call_runner_server(runner_port, body, "wrong-token") == 401
        assert not marker.exists()
        # The same body with the right token is unpickled (so the check above means something).
        _call_runner_server(runner_port, body, TOKEN)
        assert marker.exists()

        assert api.terminate() == 0, api.log()
        assert runner.terminate() == 0, runner.log()
    finally:
        if api is not None:
            api.close()
        runner.close()


def test_runner_server_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    cmd = Command(["start-runner-server", "prod_svc:svc", "--runner-name", "adder",
                   "--working-dir", "."], tmp_path, name="runner")
    try:
        assert cmd.process.wait(timeout=60) != 0
        assert "runners.auth_token" in cmd.log()
    finally:
        cmd.close()


def test_http_server_names_runners_without_an_address(tmp_path: Path) -> None:
    cmd = Command(["start-http-server", "prod_svc:svc", "--working-dir", "."], tmp_path,
                  name="api")
    try:
        assert cmd.process.wait(timeout=60) != 0
        log = cmd.log()
        assert "['adder']" in log and "--remote-runner" in log, log
    finally:
        cmd.close()
