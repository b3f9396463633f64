"""A service with a raw ASGI app mounted at / and a raw WSGI app at /wsgi, next to an API and
a runner (no FastAPI or Flask needed: the apps speak the protocols directly)."""
from __future__ import annotations

import json

import bentolite
from bentolite.io import JSON


class Doubler(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method(batchable=False)
    def double(self, x: int) -> int:
        return 2 * x


doubler = bentolite.Runner(Doubler, name="doubler")
svc = bentolite.Service("mount_svc", runners=[doubler])


@svc.api(input=JSON(), output=JSON())
async def double(x: int) -> int:
    return await doubler.double.async_run(x)


async def asgi_app(scope: dict, receive, send) -> None:  # noqa: ANN001
    assert scope["type"] == "http"
    message = await receive()
    body = message["body"]
    if scope["path"] == "/boom":
        raise RuntimeError("the mounted app failed")
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/twice":  # a mounted route that calls the service's runner
        value = await doubler.double.async_run(json.loads(body))
        payload = json.dumps(value).encode()
    else:
        payload = json.dumps({
            "path": scope["path"], "root_path": scope["root_path"], "method": scope["method"],
            "query": scope["query_string"].decode(), "body": body.decode(),
            "x_test": dict(scope["headers"]).get(b"x-test", b"").decode(),
        }).encode()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"),
                            (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]})
    await send({"type": "http.response.body", "body": payload})


def wsgi_app(environ: dict, start_response):  # noqa: ANN001, ANN201
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if environ["PATH_INFO"] == "/double":  # a blocking runner call, as Flask code makes it
        payload = json.dumps(doubler.double.run(json.loads(body))).encode()
    else:
        payload = json.dumps({
            "script_name": environ["SCRIPT_NAME"], "path_info": environ["PATH_INFO"],
            "query": environ["QUERY_STRING"], "body": body.decode(),
            "content_type": environ.get("CONTENT_TYPE", ""),
            "x_test": environ.get("HTTP_X_TEST", ""),
        }).encode()
    start_response("202 Accepted", [("Content-Type", "application/json"), ("X-From", "wsgi")])
    return [payload]


svc.mount_asgi_app(asgi_app)
svc.mount_wsgi_app(wsgi_app, path="/wsgi/")
