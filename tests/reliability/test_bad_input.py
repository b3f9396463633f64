"""Malformed bodies for every IO descriptor, over real HTTP: a 4xx JSON error, never a 500.

Complements tests/server/test_api_server.py (one bad body per descriptor) and
tests/io/test_properties.py (descriptors in-process) with the full matrix of issue 7 and a
property-based run generated from the server's own /docs.json.
"""
from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import MAX_REQUEST_SIZE_MB
from serve_helpers import Server

__all__: list[str] = []


def png(size: tuple[int, int] = (3, 2)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def form_data(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    out = b""
    for name, content_type, data in parts:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n'.encode()
        if content_type:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


TOO_BIG = b"[" + b"1," * (MAX_REQUEST_SIZE_MB * 1024 * 1024 // 2 + 10) + b"1]"
CORRUPT_PNG = png()[:40] + b"\x00garbage\x00" * 8
GOOD_FORM = form_data([("meta", "application/json", b'{"k": 1}'), ("picture", "image/png", png())])

# (path, body, content type, what is wrong): every case is a client error
BAD_BODIES: list[tuple[str, bytes, str, str]] = [
    # Text
    ("/text", b"\xff\xfe\xfa not utf-8", "text/plain", "non-UTF-8 text"),
    ("/text", b"\xff\xfe", "text/plain; charset=utf-8", "non-UTF-8 text, charset given"),
    ("/text", TOO_BIG, "text/plain", "over the size limit"),
    # JSON
    ("/json_any", b'{"a": [1, 2', "application/json", "truncated JSON"),
    ("/json_any", b"\xff\xfe{}", "application/json", "non-UTF-8 JSON"),
    # (v1 does not check the content type of Text, JSON and NumpyNdarray: a body that parses is used)
    ("/json_any", png(), "image/png", "wrong content type"),
    ("/json_any", b"NaN", "application/json", "bare NaN"),
    ("/json_any", b'{"a": -Infinity}', "application/json", "Infinity"),
    ("/json_any", b"[1e400]", "application/json", "number too large for a float"),
    ("/json_any", b"[" * 100_000 + b"]" * 100_000, "application/json", "nesting too deep"),
    ("/json_any", TOO_BIG, "application/json", "over the size limit"),
    ("/json_model", b'{"x": "abc", "y": 1}', "application/json", "wrong field type"),
    ("/json_model", b'{"x": 1.5}', "application/json", "missing field"),
    ("/json_model", b"[1, 2]", "application/json", "array for an object"),
    # NumpyNdarray (float32, shape (-1, 2), enforced)
    ("/ndarray", b'[["a", "b"]]', "application/json", "wrong dtype"),
    ("/ndarray", b"[[1, 2, 3]]", "application/json", "wrong shape"),
    ("/ndarray", b"[[1], [1, 2]]", "application/json", "ragged"),
    ("/ndarray", b"[[1e400, 1]]", "application/json", "out of range for float32"),
    ("/ndarray", b'{"a": 1}', "application/json", "object for an array"),
    ("/ndarray", b"[[1, 2]", "application/json", "truncated JSON"),
    ("/ndarray", b"\x00\x01\x02", "application/octet-stream", "wrong content type"),
    # PandasDataFrame (records, int64/float64 enforced)
    ("/frame", b'[{"a": "x", "b": 1.0}]', "application/json", "wrong dtype"),
    ("/frame", b'"a string"', "application/json", "wrong shape"),
    ("/frame", b'[{"a": 1, "b": 2.0}', "application/json", "truncated JSON"),
    ("/frame", b"a,b\n1,\xff\xfe\n", "text/csv", "non-UTF-8 CSV"),
    ("/frame", b'a,b\n1,2,3,4\n"unterminated', "text/csv", "malformed CSV"),
    ("/frame", b"PAR1garbage", "application/octet-stream", "corrupt parquet"),
    ("/frame", b"<a/>", "application/xml", "unsupported content type"),
    # PandasSeries (int64 enforced)
    ("/series", b'["x", "y"]', "application/json", "wrong dtype"),
    ("/series", b"[[1, 2], [3]]", "application/json", "wrong shape"),
    ("/series", b"[1, 2", "application/json", "truncated JSON"),
    # Image
    ("/image", CORRUPT_PNG, "image/png", "corrupt image"),
    ("/image", b"", "image/png", "empty image"),
    ("/image", png(), "text/plain", "wrong content type"),
    ("/image", b"GIF89a" + b"\x00" * 20, "image/gif", "truncated GIF"),
    ("/image", TOO_BIG, "image/png", "over the size limit"),
    # File
    ("/file", b"no parts here", "multipart/form-data; boundary=xyz", "broken form"),
    ("/file", b"x", "multipart/form-data", "form without a boundary"),
    ("/file", TOO_BIG, "application/octet-stream", "over the size limit"),
    # Multipart(meta=JSON, picture=Image)
    ("/form", *form_data([("meta", "application/json", b"{}")]), "missing field"),
    ("/form", *form_data([("meta", "application/json", b"{}"), ("picture", "image/png", png()),
                          ("extra", "text/plain", b"x")]), "unexpected field"),
    ("/form", *form_data([("meta", "application/json", b'{"k": '), ("picture", "image/png", png())]),
     "truncated JSON part"),
    ("/form", *form_data([("meta", "application/json", b"{}"), ("picture", "image/png", CORRUPT_PNG)]),
     "corrupt image part"),
    ("/form", *form_data([("meta", "application/json", b"\xff\xfe"), ("picture", "image/png", png())]),
     "non-UTF-8 part"),
    ("/form", GOOD_FORM[0][: len(GOOD_FORM[0]) // 2], GOOD_FORM[1], "truncated form"),
    ("/form", b'{"meta": {}}', "application/json", "wrong content type"),
    ("/form", b"--x\r\nno headers\r\n--x--", "multipart/form-data; boundary=x", "part without a name"),
]


def assert_client_error(reply: Any, what: str) -> dict[str, Any]:
    assert 400 <= reply.status < 500, f"{what}: {reply.status} {reply.body[:300]!r}"
    assert reply.headers["Content-Type"].startswith("application/json"), what
    error = reply.json()
    assert error["type"] and error["error"], (what, error)
    return error


@pytest.mark.parametrize("path,body,content_type,what", BAD_BODIES,
                         ids=[f"{case[0][1:]}-{case[3]}" for case in BAD_BODIES])
def test_malformed_body_is_a_4xx_json_error(server: Server, path: str, body: bytes,
                                            content_type: str, what: str) -> None:
    error = assert_client_error(server.post(path, body, content_type), what)
    if error["type"] == "BadInput":  # names the offending field: the body or a form field
        assert error["field"].startswith("body") or path == "/form", error
        assert path != "/form" or error["field"] in ("body", "meta", "picture", "extra"), error


GOOD_BODIES = [
    ("/text", b"hi", "text/plain"),
    ("/json_any", b'{"a": 1}', "application/json"),
    ("/json_model", b'{"x": 1.5, "y": 2}', "application/json"),
    ("/ndarray", b"[[1, 2]]", "application/json"),
    ("/frame", b'[{"a": 1, "b": 2.5}]', "application/json"),
    ("/series", b"[1, 2]", "application/json"),
    ("/image", png(), "image/png"),
    ("/file", b"\x00raw", "application/octet-stream"),
    ("/form", *GOOD_FORM),
]


def test_server_stays_healthy_after_bad_input(server: Server) -> None:
    for path, body, content_type, what in BAD_BODIES:
        assert_client_error(server.post(path, body, content_type), what)
    assert server.get("/readyz").status == 200
    for path, body, content_type in GOOD_BODIES:
        reply = server.post(path, body, content_type)
        assert reply.status == 200, (path, reply.body[:300])
    assert "Traceback" not in server.log()  # no bad input reached an unexpected-error path


# -- property-based: bodies generated from /docs.json, plus junk --------------------------------

json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
any_json = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


def from_schema(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped by an OpenAPI schema (loosely: wrong-typed leaves are mixed in on purpose)."""
    if "$ref" in schema:
        return from_schema(components[schema["$ref"].rsplit("/", 1)[1]], components, depth)
    kind = schema.get("type")
    if depth > 3 or kind is None:
        return any_json
    if kind == "object":
        props = schema.get("properties", {})
        fixed = st.fixed_dictionaries(
            {}, optional={k: from_schema(v, components, depth + 1) for k, v in props.items()})
        return st.one_of(fixed, st.dictionaries(st.text(max_size=6), any_json, max_size=3))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), components, depth + 1), max_size=5)
    if kind == "number":
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2**70, 2**70))
    if kind == "integer":
        return st.integers(-2**70, 2**70)
    if kind == "string" and schema.get("format") == "binary":
        return st.one_of(st.binary(max_size=200), st.just(png()), st.just(CORRUPT_PNG))
    if kind == "string":
        return st.text(max_size=30)
    return any_json


def encode_value(value: Any) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


junk = st.one_of(st.binary(max_size=300), any_json.map(lambda v: json.dumps(v).encode()),
                 st.lists(st.sampled_from([b"--b", b"\r\n", b'name="meta"', b"[1,2]", b"\x89PNG", b"{"]))
                 .map(b"".join))
junk_content_types = st.sampled_from(["application/json", "text/plain", "image/png", "text/csv",
                                      "application/octet-stream", "multipart/form-data; boundary=b",
                                      "application/x-parquet", "bogus/type; x", ""])


@pytest.fixture(scope="module")
def requests_from_docs(server: Server) -> st.SearchStrategy[tuple[str, bytes, str]]:
    spec = server.get("/docs.json").json()
    components = spec.get("components", {}).get("schemas", {})
    choices = []
    for path, item in spec["paths"].items():
        operation = item.get("post")
        if operation is None or path == "/gated":
            continue
        for content_type, media in operation["requestBody"]["content"].items():
            schema = media.get("schema", {})
            if content_type == "multipart/form-data":
                parts = {name: from_schema(sub, components) for name, sub in schema["properties"].items()}
                body = st.fixed_dictionaries({}, optional=parts).map(lambda fields: form_data(
                    [(k, "image/png" if isinstance(v, bytes) else "application/json", encode_value(v))
                     for k, v in fields.items()]))
                choices.append(st.tuples(st.just(path), body).map(lambda t: (t[0], *t[1])))
            else:
                sent_type = "application/octet-stream" if content_type == "*/*" else content_type
                choices.append(st.tuples(st.just(path), from_schema(schema, components).map(encode_value),
                                         st.just(sent_type)))
        choices.append(st.tuples(st.just(path), junk, junk_content_types))
    return st.one_of(choices)


def test_generated_bodies_never_give_a_500(server: Server, requests_from_docs: Any) -> None:
    seen: dict[int, int] = {}

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(requests_from_docs)
    def check(request: tuple[str, bytes, str]) -> None:
        path, body, content_type = request
        reply = server.post(path, body, content_type)
        seen[reply.status] = seen.get(reply.status, 0) + 1
        assert reply.status < 500, (path, content_type, body[:200], reply.status, reply.body[:300])
        if reply.status >= 400:
            assert_client_error(reply, f"{path} {content_type}")

    check()
    assert server.get("/readyz").status == 200
    assert seen.get(200, 0) > 0 and sum(v for k, v in seen.items() if k >= 400) > 0, seen
