"""HTTP front of a runner worker on TCP (``start-runner-server``, split deployments).

Every call must carry the shared secret (config ``runners.auth_token``) as
``Authorization: Bearer <token>``; it is checked before the body is even read, so nothing
from an unauthenticated caller is ever unpickled. Bodies are frames of the local protocol.
"""
from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..exceptions import BentoMLConfigException, BentoMLException
from .container import decode_payload, encode_payload
from .protocol import CALL, ERROR, RESULT, error_meta, pack_frame, parse_frame

if TYPE_CHECKING:  # pragma: no cover
    from .worker import RunnerWorker

__all__ = ["FRAME_CONTENT_TYPE", "start_http_server"]

logger = logging.getLogger(__name__)

FRAME_CONTENT_TYPE = "application/vnd.bentolite.frame"
_MAX_BODY_BYTES = 2 * 1024 * 1024 * 1024


def _frame_response(pieces: list[Any], status: int = 200) -> web.Response:
    return web.Response(body=b"".join(bytes(p) for p in pieces), status=status,
                        content_type=FRAME_CONTENT_TYPE)


async def start_http_server(worker: RunnerWorker, host: str, port: int,
                            auth_token: str | None) -> web.AppRunner:
    """Serve ``worker`` over HTTP on ``host:port``; refuses to start without a token."""
    if not auth_token:
        raise BentoMLConfigException(
            "a runner server on TCP needs a shared secret: set runners.auth_token (or "
            f"runners.{worker.runner.name}.auth_token) for the runner server and its callers")
    expected = f"Bearer {auth_token}".encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in ("/healthz", "/livez", "/readyz"):
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "missing or wrong runner auth token (Authorization: Bearer ...)",
                 "type": "Unauthorized"}, status=401)
        return await handler(request)

    async def call(request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        body = bytearray(await request.read())
        try:
            frame = parse_frame(body)
            if frame.kind != CALL:
                raise BentoMLException("expected a CALL frame")
            args, kwargs = decode_payload(frame.buffers)
            result = await worker.call(method, args, kwargs, frame.meta.get("trace"))
            return _frame_response(pack_frame(RESULT, frame.request_id, None,
                                              encode_payload(result)))
        except Exception as e:  # noqa: BLE001 - errors travel back as ERROR frames
            if not isinstance(e, BentoMLException):
                logger.exception("runner %s method %s failed", worker.runner.name, method)
            return _frame_response(pack_frame(ERROR, 0, error_meta(e)))

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="\n")

    app = web.Application(middlewares=[require_token], client_max_size=_MAX_BODY_BYTES)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/livez", ok)
    app.router.add_get("/readyz", ok)
    app.router.add_post("/call/{method}", call)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("runner %s worker %d serving HTTP on %s:%d", worker.runner.name,
                worker.worker_index, host, port)
    return runner
