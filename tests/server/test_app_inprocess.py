"""The app in-process under blockbuster: no request path blocks the event loop."""
from __future__ import annotations

import asyncio
import json

from aiohttp import ClientSession, web
from blockbuster import blockbuster_ctx

import bentolite
from bentolite.config import build_config
from bentolite.io import JSON, NumpyNdarray, Text
from bentolite.server.app import build_app


class Square(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method(batchable=False)
    def square(self, values):
        return [v * v for v in values]


def _service() -> bentolite.Service:
    runner = bentolite.Runner(Square, name="square_inproc")
    svc = bentolite.Service("inprocess", runners=[runner])

    @svc.api(input=JSON(), output=JSON())
    async def squares(values):
        return await runner.square.async_run(values)

    @svc.api(input=JSON(), output=JSON())
    def squares_sync(values):
        return runner.square.run(values)

    @svc.api(input=NumpyNdarray(), output=Text())
    async def shape(arr):
        return str(arr.shape)

    return svc


async def _exercise() -> dict[str, object]:
    app = build_app(_service(), config=build_config({}))
    app_runner = web.AppRunner(app)
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the ephemeral port
    base = f"http://127.0.0.1:{port}"
    results: dict[str, object] = {}
    try:
        async with ClientSession() as session:
            for _ in range(200):
                async with session.get(base + "/readyz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.05)
            with blockbuster_ctx():
                async with session.post(base + "/squares", json=[1, 2, 3]) as r:
                    results["squares"] = await r.json()
                async with session.post(base + "/squares_sync", json=[4]) as r:
                    results["squares_sync"] = await r.json()
                big = json.dumps([[0.5] * 100] * 400).encode()  # > 256 KiB: decoded off the loop
                async with session.post(base + "/shape", data=big,
                                        headers={"Content-Type": "application/json"}) as r:
                    results["shape"] = await r.text()
                async with session.post(base + "/squares", data=b"{",
                                        headers={"Content-Type": "application/json"}) as r:
                    results["bad"] = (r.status, (await r.json())["type"])
                for path in ("/readyz", "/metrics", "/docs.json", "/"):
                    async with session.get(base + path) as r:
                        results[path] = r.status
    finally:
        await app_runner.cleanup()
    return results


def test_request_paths_do_not_block_the_loop() -> None:
    results = asyncio.run(_exercise())
    assert results == {
        "squares": [1, 4, 9], "squares_sync": [16], "shape": "(400, 100)",
        "bad": (400, "BadInput"), "/readyz": 200, "/metrics": 200, "/docs.json": 200, "/": 200,
    }


def test_debug_mode_adds_the_traceback(monkeypatch) -> None:
    svc = bentolite.Service("debugging")

    @svc.api(input=Text(), output=Text())
    def explode(text):
        raise KeyError(text)

    async def call() -> dict[str, object]:
        app_runner = web.AppRunner(build_app(svc, config=build_config({})))
        await app_runner.setup()
        site = web.TCPSite(app_runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        try:
            async with ClientSession() as session:
                async with session.post(f"http://127.0.0.1:{port}/explode", data="k") as r:
                    return await r.json()
        finally:
            await app_runner.cleanup()

    assert "traceback" not in asyncio.run(call())
    monkeypatch.setenv("BENTOLITE_DEBUG", "1")
    body = asyncio.run(call())
    assert body["error"] == "KeyError: 'k'"
    assert "raise KeyError(text)" in body["traceback"]
