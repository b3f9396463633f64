"""Descriptors behind a real aiohttp server on 127.0.0.1."""
from __future__ import annotations

import asyncio
import io
import json
import threading
from types import SimpleNamespace
from typing import Any, Awaitable, Callable

import aiohttp
from blockbuster import blockbuster_ctx
import numpy as np
from aiohttp import web

from bentolite.exceptions import BentoMLException
from bentolite.io import JSON, HTTPMessage, IODescriptor, Multipart, NumpyNdarray, Text
from bentolite.io.base import OFFLOAD_DECODE_BYTES
from bentolite.services.context import Cookie, ResponseContext


def endpoint(
    input_: IODescriptor[Any], output: IODescriptor[Any], func: Callable[..., Any], with_ctx: bool = False
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A minimal API route: decode, call, encode; BentoMLException -> its status and JSON body."""

    async def handle(request: web.Request) -> web.StreamResponse:
        ctx = SimpleNamespace(response=ResponseContext()) if with_ctx else None
        try:
            value = await input_.from_http_request(request)
            result = func(value, ctx) if with_ctx else func(value)
            return await output.to_http_response(result, ctx)
        except BentoMLException as exc:
            return web.json_response(exc.to_json(), status=int(exc.error_code))

    return handle


async def serve(routes: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]], client_calls):
    app = web.Application(client_max_size=8 << 20)
    for path, handler in routes.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        # fails the test if anything blocks the event loop (file or socket I/O, sleep, ...)
        with blockbuster_ctx():
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
                return await client_calls(session)
    finally:
        await runner.cleanup()


def test_numpy_round_trip_and_400_over_http():
    async def calls(session: aiohttp.ClientSession):
        async with session.post("/double", data=b"[[1, 2], [3, 4]]") as ok:
            ok_body = (ok.status, await ok.read())
        async with session.post("/double", data=b"[[1, 2], [3]]") as bad:
            bad_body = (bad.status, await bad.json())
        async with session.post("/double", data=b"[1, 2") as malformed:
            malformed_status = malformed.status
        return ok_body, bad_body, malformed_status

    ndarray = NumpyNdarray(dtype="float32")
    routes = {"/double": endpoint(ndarray, ndarray, lambda arr: arr * 2)}
    ok_body, bad_body, malformed_status = asyncio.run(serve(routes, calls))
    assert ok_body == (200, b"[[2.0, 4.0], [6.0, 8.0]]")
    assert bad_body[0] == 400
    assert bad_body[1]["type"] == "BadInput" and bad_body[1]["field"] == "body"
    assert "rectangular" in bad_body[1]["error"]
    assert malformed_status == 400


def test_context_sets_status_headers_and_cookies():
    def func(value: Any, ctx: Any) -> Any:
        ctx.response.status_code = 201
        ctx.response.headers["X-Custom"] = "yes"
        ctx.response.cookies.append(Cookie("session", "abc", max_age=60, httponly=True))
        return {"got": value}

    async def calls(session: aiohttp.ClientSession):
        async with session.post("/echo", json={"a": 1}) as response:
            return response.status, dict(response.headers), await response.read(), response.cookies

    routes = {"/echo": endpoint(JSON(), JSON(), func, with_ctx=True)}
    status, headers, body, cookies = asyncio.run(serve(routes, calls))
    assert status == 201 and headers["X-Custom"] == "yes"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"got": {"a": 1}}
    assert cookies["session"].value == "abc" and cookies["session"]["max-age"] == "60"


def test_streamed_text_arrives_in_order():
    async def tokens(prompt: str):
        for word in prompt.split():
            await asyncio.sleep(0)
            yield word + " "

    async def calls(session: aiohttp.ClientSession):
        async with session.post("/stream", data="a b c") as response:
            return response.status, response.headers["Content-Type"], await response.text()

    routes = {"/stream": endpoint(Text(), Text(content_type="text/event-stream"), tokens)}
    status, content_type, text = asyncio.run(serve(routes, calls))
    assert status == 200 and content_type.startswith("text/event-stream")
    assert text == "a b c "


def test_multipart_from_a_real_client_form():
    async def calls(session: aiohttp.ClientSession):
        data = aiohttp.FormData()
        data.add_field("arr", b"[1, 2, 3]", content_type="application/json", filename="arr.json")
        data.add_field("note", "hello", content_type="text/plain")
        async with session.post("/form", data=data) as response:
            ok = response.status, await response.text()
        async with session.post("/form", json={"arr": [1]}) as response:
            refused = response.status, await response.json()
        return ok, refused

    descriptor = Multipart(arr=NumpyNdarray(), note=Text())
    routes = {"/form": endpoint(descriptor, Text(), lambda v: f"{v['note']}:{int(v['arr'].sum())}")}
    ok, refused = asyncio.run(serve(routes, calls))
    assert ok == (200, "hello:6")
    assert refused[0] == 400 and "multipart/form-data" in refused[1]["error"]


class _ThreadRecordingNdarray(NumpyNdarray):
    """Records which thread decoded each body."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []

    def _decode(self, msg: HTTPMessage, field: str) -> Any:
        self.threads.append(threading.current_thread())
        return super()._decode(msg, field)


def test_large_bodies_are_decoded_off_the_loop_and_arrive_whole():
    big = np.arange(200_000, dtype=np.int64)
    big_body = json.dumps(big.tolist()).encode()
    assert len(big_body) > OFFLOAD_DECODE_BYTES

    async def calls(session: aiohttp.ClientSession):
        async with session.post("/sum", data=b"[1, 2]") as response:
            small = await response.json()
        async with session.post("/sum", data=io.BytesIO(big_body)) as response:
            return small, await response.json()

    descriptor = _ThreadRecordingNdarray()
    routes = {"/sum": endpoint(descriptor, JSON(), lambda arr: int(arr.sum()))}
    assert asyncio.run(serve(routes, calls)) == (3, int(big.sum()))
    small_thread, big_thread = descriptor.threads
    assert small_thread is threading.main_thread() and big_thread is not threading.main_thread()
