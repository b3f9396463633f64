"""ASGI and WSGI apps mounted on a Service (``svc.mount_asgi_app`` / ``svc.mount_wsgi_app``).

Each mount becomes a catch-all aiohttp route under its path, registered after the service's
own routes, so those win (as with BentoML 1.1's Starlette ``Mount``). The mounted app sees
what 1.1 gave it: ``root_path`` (WSGI ``SCRIPT_NAME``) is the mount path and ``path``
(``PATH_INFO``) the rest of the URL path. As in 1.1, a mounted ASGI app's lifespan events
are not run; the request body is read whole before the app is called.
"""
from __future__ import annotations

import asyncio
import io
import sys
from concurrent.futures import Executor
from typing import Any, Awaitable, Callable, Iterable

from aiohttp import web

from ..services.service import Mount

__all__ = ["add_mounts"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_mounts(app: web.Application, mounts: Iterable[Mount],
               pool: Callable[[web.Request], Executor]) -> None:
    """Route each mount's paths to it; ``pool(request)`` runs WSGI apps (they block)."""
    for mount in mounts:
        handler = (_asgi_handler(mount) if mount.kind == "asgi"
                   else _wsgi_handler(mount, pool))
        if mount.path == "/":
            app.router.add_route("*", "/{tail:.*}", handler, name=mount.name)
        else:
            app.router.add_route("*", mount.path, handler, name=mount.name)
            app.router.add_route("*", mount.path + "/{tail:.*}", handler)


def _sub_path(mount: Mount, path: str) -> tuple[str, str]:
    """(root_path, path within the mount) for a request path under ``mount``."""
    if mount.path == "/":
        return "", path
    return mount.path, path[len(mount.path):] or "/"


def _asgi_handler(mount: Mount) -> Handler:
    asgi_app = mount.app

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        root_path, path = _sub_path(mount, request.path)
        raw_path = request.raw_path.split("?", 1)[0].encode("latin-1")[len(root_path):] or b"/"
        peer = request.transport.get_extra_info("peername") if request.transport else None
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": f"{request.version.major}.{request.version.minor}",
            "method": request.method, "scheme": request.scheme,
            "path": path, "raw_path": raw_path, "root_path": root_path,
            "query_string": request.query_string.encode("latin-1"),
            "headers": [(k.lower(), v) for k, v in request.raw_headers],
            "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
            "server": tuple(sockname[:2]) if isinstance(sockname, tuple) else None,
        }
        body_sent = False
        disconnected = asyncio.Event()
        response: web.StreamResponse | None = None
        start: dict[str, Any] | None = None

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()  # nothing more to read: wait for the end of the response
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal response, start
            kind = message["type"]
            if kind == "http.response.start":
                if start is not None:
                    raise RuntimeError("ASGI app sent http.response.start twice")
                start = message
            elif kind == "http.response.body":
                if start is None:
                    raise RuntimeError("ASGI app sent a body before http.response.start")
                if response is None:
                    response = web.StreamResponse(status=start["status"])
                    for key, value in start.get("headers", ()):
                        response.headers.add(key.decode("latin-1"), value.decode("latin-1"))
                    await response.prepare(request)
                chunk = message.get("body", b"")
                if chunk:
                    await response.write(chunk)
                if not message.get("more_body", False):
                    await response.write_eof()
                    disconnected.set()

        try:
            await asgi_app(scope, receive, send)
        finally:
            disconnected.set()
        if response is None:
            if start is None:
                raise RuntimeError(f"the ASGI app mounted at {mount.path} sent no response")
            response = web.Response(status=start["status"])  # a start without a body
            for key, value in start.get("headers", ()):
                response.headers.add(key.decode("latin-1"), value.decode("latin-1"))
        return response

    return handle


def _wsgi_handler(mount: Mount, pool: Callable[[web.Request], Executor]) -> Handler:
    wsgi_app = mount.app

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        environ = _environ(mount, request, body)
        loop = asyncio.get_running_loop()
        status, headers, chunks = await loop.run_in_executor(pool(request), _call_wsgi,
                                                             wsgi_app, environ)
        code, _, reason = status.partition(" ")
        response = web.Response(status=int(code), reason=reason or None, body=b"".join(chunks))
        for key, value in headers:
            if key.lower() != "content-length":  # aiohttp sets it for the body it sends
                response.headers.add(key, value)
        return response

    return handle


def _environ(mount: Mount, request: web.Request, body: bytes) -> dict[str, Any]:
    root_path, path = _sub_path(mount, request.path)
    host, _, port = (request.host or "").partition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method, "SCRIPT_NAME": root_path, "PATH_INFO": path,
        "QUERY_STRING": request.query_string, "SERVER_NAME": host or "localhost",
        "SERVER_PORT": port or ("443" if request.scheme == "https" else "80"),
        "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
        "REMOTE_ADDR": request.remote or "", "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0), "wsgi.url_scheme": request.scheme,
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    if "Content-Type" in request.headers:
        environ["CONTENT_TYPE"] = request.headers["Content-Type"]
    for key, value in request.headers.items():
        name = "HTTP_" + key.upper().replace("-", "_")
        if name in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
            continue
        environ[name] = f"{environ[name]},{value}" if name in environ else value
    return environ


def _call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], list[bytes]]:
    """Run a WSGI app to the end (in a pool thread): its status, headers and body chunks."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return written.append

    result = app(environ, start_response)
    try:
        chunks = written + [bytes(chunk) for chunk in result]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    return started[0], list(started[1]), chunks
