"""API server middlewares: request id, errors as JSON, metrics, CORS, traffic limits, access log."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import random
import time
import traceback
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..exceptions import (
    BentoMLException,
    GatewayTimeout,
    PayloadTooLarge,
    ServiceUnavailable,
    StateException,
)
from ..logs import info_fast
from ..services.context import request_id_var

if TYPE_CHECKING:  # pragma: no cover
    from ..config import AccessLogConfig, CorsConfig
    from .metrics import ApiServerMetrics

__all__ = [
    "ACCESS_LOG_SUFFIX",
    "CLIENT_CLOSED_REQUEST",
    "REQUEST_ID_HEADER",
    "STREAM_KEY",
    "AccessLogger",
    "error_response",
    "make_observe_middleware",
    "make_traffic_middleware",
]

REQUEST_ID_HEADER = "X-BentoML-Request-ID"
#: the status metrics record for a request whose client disconnected first (nginx's 499)
CLIENT_CLOSED_REQUEST = 499
#: request key of a streaming response whose headers may already be sent
STREAM_KEY = web.RequestKey("bentolite_stream", web.StreamResponse)
#: request key of text appended to the access log line (the trace ids, set by bentolite.tracing)
ACCESS_LOG_SUFFIX = web.RequestKey("bentolite_access_log_suffix", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

logger = logging.getLogger("bentolite.server")
access_logger = logging.getLogger("bentoml.access")
# request ids need to be unique, not secret: no system call per request
_random_bits = random.Random().getrandbits  # seeded from os.urandom: differs per worker


def _json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None
                ) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def error_response(request: web.Request, exc: BaseException, *, max_request_size_mb: float
                   ) -> web.Response:
    """Turn any exception into a JSON error response with the right status."""
    if isinstance(exc, BentoMLException):
        headers = None
        if isinstance(exc, ServiceUnavailable) and exc.retry_after_s is not None:
            headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
        status = int(exc.error_code)
        if status >= 500:
            logger.error("%s on %s [%s]: %s", type(exc).__name__, request.path,
                         request.method, exc.message)
        return _json_error(status, exc.to_json(), headers)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        too_large = PayloadTooLarge(
            f"request body is larger than api_server.http.max_request_size_mb="
            f"{max_request_size_mb:g}; raise that setting to accept it", field="body"
        )
        return _json_error(413, too_large.to_json())
    if isinstance(exc, web.HTTPException):
        text = exc.text or exc.reason
        if text and text.startswith(f"{exc.status}: "):
            text = text[len(f"{exc.status}: "):]
        allow = exc.headers.get("Allow")
        return _json_error(exc.status, {"error": text, "type": type(exc).__name__[4:] or "HTTPError"},
                           {"Allow": allow} if allow else None)
    # A server-side fault: log with the traceback, answer with the type and message.
    logger.error("Exception on %s [%s]", request.path, request.method, exc_info=exc)
    name = type(exc).__name__
    body: dict[str, Any] = {
        "error": f"{name}: {exc}",
        "type": "StateException" if isinstance(exc, StateException) else "InternalServerError",
    }
    if os.environ.get("BENTOLITE_DEBUG"):
        body["traceback"] = "".join(traceback.format_exception(exc))
    return _json_error(500, body)


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _cors_headers(request: web.Request, cors: CorsConfig) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if not origin:
        return {}
    allowed = _as_list(cors.access_control_allow_origins)
    if not ("*" in allowed or origin in allowed or (
        cors.access_control_allow_origin_regex
        and re.fullmatch(cors.access_control_allow_origin_regex, origin)
    )):
        return {}
    headers = {"Access-Control-Allow-Origin": "*" if "*" in allowed and not
               cors.access_control_allow_credentials else origin, "Vary": "Origin"}
    if cors.access_control_allow_credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    if cors.access_control_expose_headers:
        headers["Access-Control-Expose-Headers"] = ", ".join(
            _as_list(cors.access_control_expose_headers))
    return headers


def _preflight(request: web.Request, cors: CorsConfig, cors_headers: dict[str, str]) -> web.Response:
    if not cors_headers:
        return _json_error(400, {
            "error": f"origin {request.headers.get('Origin')!r} is not allowed by "
                     "api_server.http.cors.access_control_allow_origins",
            "type": "CORSError",
        })
    headers = dict(cors_headers)
    methods = _as_list(cors.access_control_allow_methods) or ["GET", "POST"]
    headers["Access-Control-Allow-Methods"] = ", ".join(methods)
    requested = request.headers.get("Access-Control-Request-Headers")
    allow_headers = _as_list(cors.access_control_allow_headers)
    if "*" in allow_headers and requested:
        headers["Access-Control-Allow-Headers"] = requested
    elif allow_headers:
        headers["Access-Control-Allow-Headers"] = ", ".join(allow_headers)
    if cors.access_control_max_age is not None:
        headers["Access-Control-Max-Age"] = str(cors.access_control_max_age)
    return web.Response(status=200, headers=headers)


def make_observe_middleware(
    *, metrics: ApiServerMetrics | None, api_routes: frozenset[str], cors: CorsConfig,
    max_request_size_mb: float,
) -> Any:
    """Outermost middleware: request id, CORS, JSON errors and request metrics."""

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = str(_random_bits(63))
        request_id_var.set(request_id)  # for bentoml.monitor records
        cors_headers = _cors_headers(request, cors) if cors.enabled else {}
        if (cors.enabled and request.method == "OPTIONS"
                and "Access-Control-Request-Method" in request.headers):
            response: web.StreamResponse = _preflight(request, cors, cors_headers)
            response.headers[REQUEST_ID_HEADER] = request_id
            return response
        endpoint = request.path if request.path in api_routes else None
        start = time.perf_counter()
        if metrics is not None and endpoint is not None:
            metrics.start(endpoint)
        status = 500
        try:
            try:
                response = await handler(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a JSON response
                streaming = request.get(STREAM_KEY)
                if streaming is None or not streaming.prepared:
                    response = error_response(request, exc, max_request_size_mb=max_request_size_mb)
                else:  # headers already sent: cut the stream so the client sees it broken
                    logger.error("Streaming response on %s broken", request.path, exc_info=exc)
                    if request.transport is not None:
                        request.transport.close()
                    response = streaming
            status = response.status
        except asyncio.CancelledError:  # the client left (cancel_on_disconnect), or a stop
            status = CLIENT_CLOSED_REQUEST
            logger.info("%s %s cancelled after %.3f ms: the client disconnected or the server "
                        "is stopping (request_id=%s)", request.method, request.path,
                        (time.perf_counter() - start) * 1000, request_id)
            raise
        finally:
            if metrics is not None and endpoint is not None:
                metrics.finish(endpoint, status, time.perf_counter() - start)
        response.headers[REQUEST_ID_HEADER] = request_id
        response.headers.update(cors_headers)
        return response

    return observe


class _Limits:
    __slots__ = ("in_flight",)

    def __init__(self) -> None:
        self.in_flight = 0


def make_traffic_middleware(
    *, api_routes: frozenset[str], timeout_s: float, max_concurrency: int | None,
    max_request_size_mb: float,
) -> Any:
    """Per-request timeout (504), concurrency limit (503 + Retry-After) and early 413 on APIs."""
    limits = _Limits()
    max_bytes = int(max_request_size_mb * 1024 * 1024)

    @web.middleware
    async def traffic(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in api_routes:
            return await handler(request)
        if request.content_length is not None and request.content_length > max_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=max_bytes,
                                                actual_size=request.content_length)
        if max_concurrency is not None and limits.in_flight >= max_concurrency:
            raise ServiceUnavailable(
                f"{limits.in_flight} requests already in progress, the limit set by "
                f"api_server.traffic.max_concurrency={max_concurrency}; retry later",
                retry_after_s=1,
            )
        limits.in_flight += 1
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                return await handler(request)
        except TimeoutError:
            if not deadline.expired():
                raise  # the API's own TimeoutError: a 500 like any other error
            raise GatewayTimeout(
                f"Not able to process the request in {timeout_s:g} seconds "
                "(api_server.traffic.timeout); raise that setting for slower APIs"
            ) from None
        finally:
            limits.in_flight -= 1

    return traffic


class AccessLogger(AbstractAccessLogger):
    """One ``bentoml.access`` line per request, in BentoML v1's format plus the request id."""

    config: AccessLogConfig | None = None

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_s: float) -> None:
        cfg = self.config
        peer = request.transport.get_extra_info("peername") if request.transport else None
        address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer or "-")
        req = [f"scheme={request.scheme}", f"method={request.method}", f"path={request.path}"]
        if cfg is None or cfg.request_content_type:
            req.append(f"type={request.headers.get('Content-Type', '')}")
        if cfg is None or cfg.request_content_length:
            req.append(f"length={request.headers.get('Content-Length', '')}")
        res = [f"status={response.status}"]
        if cfg is None or cfg.response_content_type:
            res.append(f"type={response.headers.get('Content-Type', '')}")
        if cfg is None or cfg.response_content_length:
            res.append(f"length={response.body_length}")
        request_id = response.headers.get(REQUEST_ID_HEADER, "-")
        info_fast(self.logger, f"{address} ({','.join(req)}) ({','.join(res)}) "
                               f"{time_s * 1000:.3f}ms (request_id={request_id})"
                               f"{request.get(ACCESS_LOG_SUFFIX, '')}")
