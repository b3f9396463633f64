"""``bentolite serve --development``: readiness while runners load, start-up failures, CORS."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from serve_helpers import HERE, Server


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GATE_DIR", str(tmp_path))
    return tmp_path


def _wait_alive(server: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.log()
        try:
            if server.get("/livez").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(server.log())


CORS = {"api_server": {"http": {"cors": {
    "enabled": True, "access_control_allow_origins": ["http://ui.example"],
    "access_control_allow_methods": ["POST"], "access_control_allow_headers": ["Content-Type"],
    "access_control_max_age": 60}}}}


def test_readyz_waits_for_runners_then_serves(gate: Path, tmp_path: Path) -> None:
    server = Server("svc_gated:svc", tmp_path, CORS)
    try:
        _wait_alive(server)
        reply = server.get("/readyz")
        assert reply.status == 503
        assert reply.json()["runners_not_ready"] == ["gated_model"]
        early = server.post("/predict", b"1")
        assert early.status == 503 and early.headers["Retry-After"] == "1"
        assert "gated_model" in early.json()["error"]
        (gate / "open").touch()
        server.wait_ready()
        assert server.post("/predict", b"[7]").json() == [7]

        preflight = server.request("OPTIONS", "/predict", headers={
            "Origin": "http://ui.example", "Access-Control-Request-Method": "POST"})
        assert preflight.status == 200
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://ui.example"
        assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
        assert preflight.headers["Access-Control-Max-Age"] == "60"
        simple = server.post("/predict", b"1", headers={"Origin": "http://ui.example"})
        assert simple.headers["Access-Control-Allow-Origin"] == "http://ui.example"
        other = server.post("/predict", b"1", headers={"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
        refused = server.request("OPTIONS", "/predict", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
        assert refused.status == 400 and refused.json()["type"] == "CORSError"
    finally:
        assert server.stop() == 0
    assert (gate / "shutdown-ran").read_text() == "yes"


def test_runner_failing_to_load_stops_the_server(gate: Path, tmp_path: Path) -> None:
    (gate / "fail").touch()
    server = Server("svc_gated:svc", tmp_path)
    try:
        assert server.process.wait(timeout=60) == 1
    finally:
        server.stop()
    log = server.log()
    assert "runner 'gated_model' failed to start: RuntimeError: model file is corrupt" in log
    assert "Traceback" in log


@pytest.mark.parametrize("target,message", [
    ("svc_unlisted:svc", "calls runner 'forgotten', which is not in Service('unlisted', runners=[...])"),
    ("no_such_module:svc", "'no_such_module:svc' is neither a module in"),  # nor a bento
    ("svc_gated", "GATE_DIR"),  # an error inside the user's module keeps its own message
])
def test_unservable_targets_exit_with_a_clear_error(tmp_path: Path, target: str, message: str) -> None:
    server = Server(target, tmp_path, working_dir=HERE)
    try:
        assert server.process.wait(timeout=60) != 0
    finally:
        server.stop()
    assert message in server.log()


def test_reload_restarts_on_source_change(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    source = (
        "import bentolite\nfrom bentolite.io import Text\n"
        "svc = bentolite.Service('reloading')\n\n"
        "@svc.api(input=Text(), output=Text())\ndef greet(text):\n    return {!r} + text\n"
    )
    (project / "reload_svc.py").write_text(source.format("hello "))
    server = Server("reload_svc:svc", tmp_path, working_dir=project, extra_args=["--reload"])
    try:
        server.wait_ready()
        assert server.post("/greet", b"ann", "text/plain").body == b"hello ann"
        (project / "reload_svc.py").write_text(source.format("bye "))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if server.post("/greet", b"ann", "text/plain", timeout_s=5).body == b"bye ann":
                    break
            except OSError:  # the old server is gone and the new one is not listening yet
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(server.log())
    finally:
        assert server.stop() == 0


def test_failing_startup_hook_stops_the_server(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "hook_svc.py").write_text(
        "import bentolite\nfrom bentolite.io import Text\n"
        "svc = bentolite.Service('hooked')\n\n"
        "@svc.on_startup\nasync def connect(ctx):\n    raise ConnectionError('database is down')\n\n"
        "@svc.api(input=Text(), output=Text())\ndef echo(text):\n    return text\n"
    )
    server = Server("hook_svc:svc", tmp_path, working_dir=project)
    try:
        assert server.process.wait(timeout=60) != 0
    finally:
        server.stop()
    assert "on_startup hook 'connect' failed: ConnectionError: database is down" in server.log()
