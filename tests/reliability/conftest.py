"""Fixtures: a real ``bentolite serve --development`` of rel_svc.py (helpers from tests/server)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from serve_helpers import Server  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_CONCURRENCY = 2
MAX_REQUEST_SIZE_MB = 1


def start_server(tmp_path: Path, gate_dir: Path, monkeypatch: pytest.MonkeyPatch | None = None) -> Server:
    """Serve rel_svc with small limits; the caller stops it."""
    config = {"api_server": {"traffic": {"timeout": 30, "max_concurrency": MAX_CONCURRENCY},
                             "http": {"max_request_size_mb": MAX_REQUEST_SIZE_MB}}}
    import os

    os.environ["RELIABILITY_GATE_DIR"] = str(gate_dir)
    try:
        server = Server("rel_svc.py:svc", tmp_path, config, working_dir=HERE)
    finally:
        del os.environ["RELIABILITY_GATE_DIR"]
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("reliability")
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "open").write_text("")
    srv = start_server(tmp_path, gate)
    try:
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()[-2000:]
