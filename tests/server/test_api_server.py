"""The API server over real HTTP: descriptors, errors, probes, docs, metrics and limits."""
from __future__ import annotations

import http.client
import io
import json
import threading
import time
import uuid

import pytest
from openapi_spec_validator import validate

from serve_helpers import Server


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (3, 2), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _multipart(parts: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = b""
    for name, (content_type, data) in parts.items():
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n"
                f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_probes_and_request_id(server: Server) -> None:
    ids = set()
    for path in ("/livez", "/healthz", "/readyz", "/nope"):
        reply = server.get(path)
        assert reply.status == (404 if path == "/nope" else 200), path
        ids.add(reply.headers["X-BentoML-Request-ID"])
    assert len(ids) == 4
    assert server.get("/nope").json()["type"] == "NotFound"
    wrong_method = server.get("/echo_text")
    assert (wrong_method.status, wrong_method.json()["type"]) == (405, "MethodNotAllowed")
    assert wrong_method.headers["Allow"] == "POST"


GOOD = [
    ("/echo_text", b"hello", "text/plain", b"hello"),
    ("/echo_json", b'{"a": [1, 2]}', "application/json", {"a": [1, 2]}),
    ("/double", b"[1.5, 2]", "application/json", [3.0, 4.0]),
    ("/frame", b'[{"a": 1, "b": "x"}]', "application/json", [{"a": 1, "b": "x"}]),
    ("/series", b"[1, 2, 3]", "application/json", [1, 2, 3]),
    ("/file", b"\x00\x01raw", "application/octet-stream", b"\x00\x01raw"),
]


@pytest.mark.parametrize("path,body,content_type,expected", GOOD)
def test_good_input(server: Server, path: str, body: bytes, content_type: str, expected: object) -> None:
    reply = server.post(path, body, content_type)
    assert reply.status == 200, reply.body
    assert (reply.body if isinstance(expected, bytes) else reply.json()) == expected


BAD = [
    ("/echo_text", b"\xff\xfe\xfa", "text/plain"),
    ("/echo_json", b'{"a": ', "application/json"),
    ("/double", b'["not", "numbers"]', "application/json"),
    ("/double", b"[[1], [1, 2]]", "application/json"),
    ("/frame", b'"just a string"', "application/json"),
    ("/series", b"{not json", "application/json"),
    ("/image", b"definitely not an image", "image/png"),
    ("/form", b'{"name": "x"}', "application/json"),
    ("/file", b"no parts here", "multipart/form-data; boundary=xyz"),
]


@pytest.mark.parametrize("path,body,content_type", BAD)
def test_bad_input_is_400_naming_the_field(server: Server, path: str, body: bytes, content_type: str) -> None:
    reply = server.post(path, body, content_type)
    assert reply.status == 400, reply.body
    error = reply.json()
    assert error["type"] == "BadInput"
    assert error["field"].startswith("body")
    assert error["error"]


def test_image_round_trip(server: Server) -> None:
    from PIL import Image

    reply = server.post("/image", _png(), "image/png")
    assert reply.status == 200, reply.body
    assert reply.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(reply.body)).size == (3, 2)


def test_multipart(server: Server) -> None:
    body, content_type = _multipart({"name": ("text/plain", b"bob"),
                                     "values": ("application/json", b"[1, 2]")})
    reply = server.post("/form", body, content_type)
    assert reply.status == 200, reply.body
    assert reply.json() == {"name": "bob", "values": [1, 2]}
    body, content_type = _multipart({"name": ("text/plain", b"bob"),
                                     "values": ("application/json", b"[1, ")})
    reply = server.post("/form", body, content_type)
    assert reply.status == 400
    assert "values" in reply.json()["field"]


@pytest.mark.parametrize("path", ["/runner_sync", "/runner_async"])
def test_runner_called_from_api(server: Server, path: str) -> None:
    reply = server.post(path, b"[1, 2, 41]")
    assert reply.status == 200, reply.body
    assert reply.json() == [2, 3, 42]


def test_context_status_headers_cookies_query(server: Server) -> None:
    reply = server.post("/custom/ctx?user=ann", b"{}", headers={"X-In": "hello"})
    assert reply.status == 201
    assert reply.headers["X-Custom"] == "hello"
    assert "session=abc" in reply.headers["Set-Cookie"]
    assert reply.json() == {"started": True, "query": {"user": "ann"}}


def test_user_error_is_500_naming_type_and_message(server: Server) -> None:
    reply = server.post("/fails", b"{}")
    assert reply.status == 500
    error = reply.json()
    assert error["error"] == "RuntimeError: boom in user code"
    assert "traceback" not in error
    assert "Traceback" in server.log()  # the details go to the server log


def test_body_too_large_is_413(server: Server) -> None:
    reply = server.post("/echo_text", b"x" * (1024 * 1024 + 10), "text/plain")
    assert reply.status == 413
    error = reply.json()
    assert error["type"] == "PayloadTooLarge"
    assert "api_server.http.max_request_size_mb" in error["error"]


def test_chunked_bodies_are_read_whole_and_413_past_the_limit(server: Server) -> None:
    def post_chunked(chunks: list[bytes]) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            conn.request("POST", "/echo_text", body=iter(chunks), encode_chunked=True,
                         headers={"Content-Type": "text/plain", "Transfer-Encoding": "chunked"})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    status, body = post_chunked([b"ab" * 100_000, b"c" * 300_000, b"d"])  # under 1 MiB: whole
    assert (status, body) == (200, b"ab" * 100_000 + b"c" * 300_000 + b"d")
    status, body = post_chunked([b"x" * 600_000, b"y" * 600_000])  # no Content-Length to refuse early
    assert status == 413
    assert "api_server.http.max_request_size_mb" in json.loads(body)["error"]


@pytest.mark.parametrize("path", ["/sleep_async", "/sleep_sync"])
def test_timeout_is_504(server: Server, path: str) -> None:
    reply = server.post(path, b'{"seconds": 30}')
    assert reply.status == 504
    error = reply.json()
    assert error["type"] == "GatewayTimeout"
    assert "4 seconds" in error["error"] and "api_server.traffic.timeout" in error["error"]


def _in_progress(server: Server, endpoint: str) -> float:
    for line in server.get("/metrics").body.decode().splitlines():
        if line.startswith("bentoml_api_server_request_in_progress{") and f'endpoint="{endpoint}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_max_concurrency_is_503_with_retry_after(server: Server) -> None:
    # The sleepers hold all 4 slots until the 4 s request timeout ends them.
    replies: list[int] = []
    sleepers = [threading.Thread(target=lambda: replies.append(
        server.post("/sleep_async", b'{"seconds": 30}').status)) for _ in range(4)]
    for t in sleepers:
        t.start()
    try:
        deadline = time.monotonic() + 10
        while _in_progress(server, "/sleep_async") < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _in_progress(server, "/sleep_async") == 4
        reply = server.post("/echo_json", b"{}")
        assert reply.status == 503
        assert reply.headers["Retry-After"] == "1"
        assert "api_server.traffic.max_concurrency=4" in reply.json()["error"]
    finally:
        for t in sleepers:
            t.join(30)
    assert replies == [504] * 4
    assert server.post("/echo_json", b"{}").status == 200


def test_docs_json_is_valid_openapi_with_v1_extensions(server: Server) -> None:
    spec = server.get("/docs.json").json()
    validate(spec)
    assert spec["info"]["title"] == "test_service"
    operation = spec["paths"]["/custom/ctx"]["post"]
    assert operation["x-bentoml-name"] == "with_ctx"
    assert operation["operationId"] == "test_service__with_ctx"
    assert operation["tags"] == ["Service APIs"]
    assert operation["requestBody"]["x-bentoml-io-descriptor"]["id"] == "bentoml.io.JSON"
    assert operation["responses"]["200"]["x-bentoml-io-descriptor"]["id"] == "bentoml.io.JSON"
    assert spec["paths"]["/readyz"]["get"]["tags"] == ["Infrastructure"]
    assert spec["paths"]["/echo_text"]["post"]["description"] == "Echo the text back."


def test_swagger_ui_is_served_offline(server: Server) -> None:
    page = server.get("/").body.decode()
    assert "./docs.json" in page and "static_content/swagger-ui-bundle.js" in page
    asset = server.get("/static_content/swagger-ui-bundle.js")
    assert asset.status == 200 and b"SwaggerUIBundle" in asset.body


def test_metrics_count_requests_per_api_and_status(server: Server) -> None:
    server.post("/echo_json", b'{"x": 1}')
    server.post("/echo_json", b'{"x": ')
    text = server.get("/metrics").body.decode()
    labels = 'endpoint="/echo_json",http_response_code="{}"'
    assert any(line.startswith("bentoml_api_server_request_total{") and labels.format(200) in line
               for line in text.splitlines())
    assert any(labels.format(400) in line for line in text.splitlines()
               if line.startswith("bentoml_api_server_request_duration_seconds_count{"))


def test_access_log_lines_carry_request_id(server: Server) -> None:
    reply = server.post("/echo_text", b"log me", "text/plain")
    request_id = reply.headers["X-BentoML-Request-ID"]
    deadline = time.monotonic() + 5
    while f"request_id={request_id}" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(l for l in server.log().splitlines() if f"request_id={request_id}" in l)
    assert "bentoml.access" in line
    assert "(scheme=http,method=POST,path=/echo_text,type=text/plain,length=6)" in line
    assert "(status=200," in line


def test_user_metrics_declared_at_import_are_exposed(server: Server) -> None:
    for _ in range(3):
        assert server.post("/counted", b"1").status == 200
    lines = server.get("/metrics").body.decode().splitlines()
    assert 'test_service_inference_total{outcome="ok"} 3.0' in lines


def test_runner_call_latency_is_measured(server: Server) -> None:
    assert server.post("/runner_sync", b"[1]").status == 200
    assert server.post("/runner_async", b"[1]").status == 200
    lines = server.get("/metrics").body.decode().splitlines()
    counts = [line for line in lines if line.startswith(
        "bentoml_api_server_runner_call_duration_seconds_count{")
        and 'runner_name="add_one"' in line and 'method_name="add"' in line
        and 'status="ok"' in line]
    assert len(counts) == 1 and float(counts[0].rsplit(" ", 1)[1]) >= 2


def test_streaming_text(server: Server) -> None:
    reply = server.post("/stream_words", b'{"words": ["a", "b", "c"]}')
    assert reply.status == 200
    assert reply.body == b"a b c "
    assert reply.headers.get("Transfer-Encoding") == "chunked"
    with pytest.raises((OSError, http.client.HTTPException)):  # headers were sent: the broken stream is cut, not "200 OK"
        server.post("/stream_words", b'{"words": ["a"], "fail": true}')
    assert "Streaming response on /stream_words broken" in server.log()


def test_monitor_records_carry_the_request_id(server: Server) -> None:
    import json
    from pathlib import Path

    replies = [server.post("/monitored", f'{{"x": {i}}}'.encode()) for i in range(3)]
    assert [r.status for r in replies] == [200] * 3
    log_path = Path(server.config["monitoring"]["options"]["log_path"])
    data = [json.loads(line) for line in
            (log_path / "svc_monitor/data/data.0.log").read_text().splitlines()]
    assert [(r["x"], r["y"]) for r in data] == [(0, 0), (1, 2), (2, 4)]
    assert [r["request_id"] for r in data] == [r.headers["X-BentoML-Request-ID"] for r in replies]
    schema = json.loads((log_path / "svc_monitor/schema/schema.0.log").read_text())
    assert [c["name"] for c in schema["columns"]] == ["x", "y"]


def _raw_request(server: Server, data: bytes) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def test_malformed_requests_are_one_warning_line_each(server: Server) -> None:
    """Issue 13: a 100 kB header, a 100 kB URL, a garbage request line get 400 and one
    WARNING line naming the client, no traceback."""
    before = server.log()
    big = "x" * 100_000
    requests = [
        f"GET /readyz HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n".encode(),
        f"GET /{big} HTTP/1.1\r\nHost: a\r\n\r\n".encode(),
        b"\x16\x03\x01 this is not HTTP at all\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header Line\r\n\r\n",
    ]
    for data in requests:
        assert _raw_request(server, data).split(b" ", 2)[1] == b"400", data[:40]
    assert server.get("/readyz").status == 200  # the server is fine
    deadline = time.monotonic() + 10
    while server.log().count("malformed request from 127.0.0.1") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    added = server.log()[len(before):]
    assert "Traceback" not in added and "Error handling request" not in added, added[-3000:]
    assert added.count("malformed request from 127.0.0.1") >= 3, added[-3000:]
