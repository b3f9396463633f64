"""``api_server.traffic.cancel_on_disconnect``: a client that leaves takes its queued runner
call with it (on), or the call runs anyway, as in BentoML 1.1 (off, the default).

One production server per case (1 API worker, 1 runner worker); real sockets on 127.0.0.1.
"""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from .prod_helpers import Command, free_port, wait_for

pytestmark = pytest.mark.slow


def _send_nap(port: int, seconds: float) -> socket.socket:
    """POST /runner_nap on a raw socket; the caller reads the answer or closes the socket."""
    body = json.dumps(seconds).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /runner_nap HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(body), body))
    return sock


def _naps(marks: Path) -> int:
    return len(list(marks.glob("nap-*")))


@pytest.mark.parametrize("cancel", [True, False], ids=["cancel_on_disconnect", "default"])
def test_a_client_that_leaves_takes_its_queued_runner_call_along(tmp_path: Path,
                                                                 cancel: bool) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "api_server": {"traffic": {"cancel_on_disconnect": cancel}},
        "runners": {"adder": {"resources": {"cpu": 1}}},  # one worker: the naps queue up
    }))
    port = free_port()
    cmd = Command(["serve", "prod_svc:svc", "--host", "127.0.0.1", "--port", str(port),
                   "--api-workers", "1", "--config", str(config), "--working-dir", "."],
                  tmp_path, env={"PROD_SVC_MARK_DIR": str(marks)}, port=port)
    try:
        cmd.wait_ready()
        first = _send_nap(port, 1.5)
        wait_for(lambda: _naps(marks) == 1, "the first nap to start", cmd)
        second = _send_nap(port, 0.1)  # queued in the runner worker behind the first
        time.sleep(0.3)
        second.close()  # the client gives up
        answer = first.recv(4096)
        first.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer
        time.sleep(0.5)  # time enough for a second nap to start, had it not been cancelled
        assert _naps(marks) == (1 if cancel else 2)
        metrics = cmd.get("/metrics").body.decode()
        cancelled = [line for line in metrics.splitlines()
                     if line.startswith("bentoml_api_server_request_total{")
                     and 'endpoint="/runner_nap"' in line and 'http_response_code="499"' in line]
        if cancel:
            assert cancelled and float(cancelled[0].rsplit(" ", 1)[1]) == 1.0, cancelled
            assert "POST /runner_nap cancelled after" in cmd.log()
        else:
            assert not cancelled, cancelled
        assert cmd.post_json("/add", [1]).json() == [2]  # the server carries on
    finally:
        cmd.close()
