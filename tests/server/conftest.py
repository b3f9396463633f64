"""Fixtures: a real ``bentolite serve --development`` of svc.py for the module's tests."""
from __future__ import annotations

from typing import Iterator

import pytest
from serve_helpers import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The test service, with small traffic limits so the limit tests run fast."""
    tmp_path = tmp_path_factory.mktemp("server")
    config = {"api_server": {"traffic": {"timeout": 4, "max_concurrency": 4},
                             "http": {"max_request_size_mb": 1}},
              "monitoring": {"options": {"log_path": str(tmp_path / "monitoring")}}}
    srv = Server("svc.py:svc", tmp_path, config)
    try:
        srv.wait_ready()
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()[-2000:]
