"""svc.mount_asgi_app / svc.mount_wsgi_app over real HTTP (``bentolite serve --development``)."""
from __future__ import annotations

from typing import Iterator

import pytest

import bentolite
from serve_helpers import Server


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server("mount_svc.py:svc", tmp_path_factory.mktemp("mounts"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()[-2000:]


def test_the_service_routes_win_over_a_root_mount(mounted: Server) -> None:
    assert mounted.get("/readyz").status == 200
    assert "/double" in mounted.get("/docs.json").json()["paths"]
    assert mounted.post("/double", "21").json() == 42  # the API, not the mounted /double
    assert b"swagger-ui" in mounted.get("/").body


def test_asgi_app_gets_path_query_body_and_headers(mounted: Server) -> None:
    reply = mounted.post("/things/1?a=b&c=d", b"hello", "text/plain", headers={"X-Test": "yes"})
    assert reply.status == 201
    assert reply.json() == {"path": "/things/1", "root_path": "", "method": "POST",
                            "query": "a=b&c=d", "body": "hello", "x_test": "yes"}
    assert reply.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert mounted.get("/nope").json()["path"] == "/nope"  # every other path is the app's


def test_asgi_streaming_response_and_errors(mounted: Server) -> None:
    reply = mounted.get("/stream")
    assert (reply.status, reply.body) == (200, b"one two three")
    boom = mounted.get("/boom")
    assert boom.status == 500
    assert boom.json()["error"] == "RuntimeError: the mounted app failed"


def test_wsgi_app_under_its_path(mounted: Server) -> None:
    reply = mounted.post("/wsgi/echo?x=1", b'{"k": 1}', headers={"X-Test": "w"})
    assert reply.status == 202
    assert reply.headers["X-From"] == "wsgi"
    assert reply.json() == {"script_name": "/wsgi", "path_info": "/echo", "query": "x=1",
                            "body": '{"k": 1}', "content_type": "application/json",
                            "x_test": "w"}
    assert mounted.get("/wsgi").json()["path_info"] == "/"


def test_mounted_apps_call_the_service_runner(mounted: Server) -> None:
    assert mounted.post("/double", "4").json() == 8  # API route (sanity)
    assert mounted.post("/wsgi/double", "5").json() == 10  # runner.run from a WSGI thread
    assert mounted.post("/twice", "6").json() == 12  # runner.async_run from the ASGI app


def test_mount_arguments_are_checked() -> None:
    svc = bentolite.Service("mount_check")
    with pytest.raises(TypeError, match="expected an ASGI app"):
        svc.mount_asgi_app("not an app")
    with pytest.raises(ValueError, match="must start with '/'"):
        svc.mount_wsgi_app(lambda e, s: [], path="wsgi")


@pytest.fixture(scope="module")
def web_frameworks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pytest.importorskip("fastapi")
    pytest.importorskip("flask")
    srv = Server("web_frameworks_svc:svc", tmp_path_factory.mktemp("web"),
                 extra_args=["--api-workers", "1"], production=True)
    try:
        srv.wait_ready()
        yield srv
    finally:
        assert srv.stop() == 0, srv.log()[-2000:]


def test_fastapi_and_flask_apps_call_the_runner_in_production(web_frameworks: Server) -> None:
    server = web_frameworks
    assert server.post("/scale", "[1, 2]").json() == [10, 20]  # the bentolite API
    assert server.get("/metadata").json() == {"name": "web_frameworks"}
    assert server.post("/fastapi/scale", '{"values": [0.5]}').json() == {"scaled": [5.0]}
    assert server.post("/fastapi/scale_sync", '{"values": [3]}').json() == {"scaled": [30.0]}
    invalid = server.post("/fastapi/scale", '{"values": "x"}')
    assert invalid.status == 422 and invalid.json()["detail"]  # FastAPI's own validation
    flask = server.post("/flask/scale", '{"values": [4]}').json()
    assert flask == {"scaled": [40], "path": "/scale", "script_root": "/flask"}
    assert server.get("/docs.json").status == 200  # bentolite's own routes still win
