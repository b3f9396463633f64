"""bentoml.HTTPServer / bentoml.serve: a real production server started from Python."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

import bentolite
from bentolite.exceptions import BentoMLException

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_start_as_a_context_gives_a_client_and_stops_the_server() -> None:
    server = bentolite.HTTPServer("prod_svc:svc", port=None, working_dir=str(HERE),
                                  api_workers=1, timeout=60)
    assert "--production" in server.args()
    with server.start() as client:
        assert _listening(server.port)
        assert client.add([1, 2]) == [2, 3]
        assert server.get_client().shout("hi") == {"shout": "HI"}
    assert server.process is not None and server.process.returncode == 0
    assert not _listening(server.port)


def test_serve_returns_a_running_server(tmp_path: Path) -> None:
    server = bentolite.serve("prod_svc.py", port=None, working_dir=str(HERE), timeout=60,
                             production=False)
    try:
        assert "--development" in server.args()
        assert server.get_client().add([5]) == [6]
    finally:
        assert server.stop() == 0


def test_a_server_that_cannot_start_says_so() -> None:
    server = bentolite.server.HTTPServer("prod_svc:svc", port=None, working_dir=str(HERE),
                                         timeout=60, env={"PROD_SVC_FAIL_IMPORT": "1"})
    with pytest.raises(BentoMLException, match="exited with code 1 before it was ready"):
        server.start()
    with pytest.raises(BentoMLException, match="SSL options are not supported"):
        bentolite.HTTPServer("prod_svc:svc", ssl_certfile="cert.pem")
