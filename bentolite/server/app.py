"""The API server's aiohttp application: one POST route per API plus docs, probes and metrics."""
from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, AsyncIterator, Awaitable, Callable

from aiohttp import web

from .. import tracing
from ..config import BentoliteConfig, get_config
from ..exceptions import BadInput, BentoMLException, ServiceUnavailable
from ..io.base import OFFLOAD_DECODE_BYTES, HTTPMessage
from ..logs import ServerLogger
from .metrics import ApiServerMetrics, exposition, instrument_runner
from .middlewares import (
    STREAM_KEY, AccessLogger, make_observe_middleware, make_traffic_middleware,
)
from .openapi import openapi_spec

if TYPE_CHECKING:  # pragma: no cover
    from ..services.context import ResponseContext
    from ..services.service import InferenceAPI, Service

__all__ = ["API_THREAD_PREFIX", "build_app", "serve_app", "start_app_runner", "init_runners_locally",
           "RunnerInit"]

#: name prefix of the threads that run sync API functions and hooks
API_THREAD_PREFIX = "bentolite-api"

logger = logging.getLogger("bentolite.server")

#: Prepares one runner in this process (local init or remote client); may be sync or async.
RunnerInit = Callable[[Any], Any]

_SERVICE = web.AppKey("service", object)
_RUNNERS_PENDING = web.AppKey("runners_pending", set)
_STARTUP_FAILED = web.AppKey("startup_failed", asyncio.Future)
_RUNNERS_STARTED = web.AppKey("runners_started", asyncio.Event)
_POOL = web.AppKey("pool", ThreadPoolExecutor)
_MAX_BODY_BYTES = web.AppKey("max_body_bytes", int)


def init_runners_locally(runner: Any) -> Any:
    """Development mode: run the runner's Runnable inside this process."""
    return runner.init_local(quiet=True)


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _swagger_index() -> str:
    return """<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8"><title>Swagger UI</title>
<link rel="stylesheet" href="./static_content/swagger-ui.css">
<link rel="icon" type="image/png" href="./static_content/favicon-32x32.png" sizes="32x32">
</head><body><div id="swagger-ui"></div>
<script src="./static_content/swagger-ui-bundle.js"></script>
<script src="./static_content/swagger-ui-standalone-preset.js"></script>
<script>
window.onload = function () {
  window.ui = SwaggerUIBundle({url: "./docs.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"});
};
</script></body></html>
"""


def _apply_context(response: web.StreamResponse, ctx: ResponseContext) -> None:
    if ctx.status_code != 200:
        response.set_status(ctx.status_code)
    for key, value in ctx.headers.items():
        response.headers[key] = value
    for c in ctx.cookies:
        response.set_cookie(
            c.key, c.value, max_age=c.max_age,
            expires=None if c.expires is None else formatdate(c.expires, usegmt=True),
            path=c.path, domain=c.domain, secure=c.secure, httponly=c.httponly, samesite=c.samesite,
        )


async def _read_body(request: web.Request) -> bytes:
    """The whole request body, joined once (``request.read()`` grows a ``bytearray`` and copies
    it to ``bytes``: two more copies of a large upload); 413 past ``max_request_size_mb``."""
    limit = request.app[_MAX_BODY_BYTES]
    chunks = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _decode(api: InferenceAPI, body: bytes, headers: Any) -> Any:
    try:
        return api.input.decode(HTTPMessage(body=body, headers=headers))
    except BentoMLException:
        raise
    except Exception as exc:  # noqa: BLE001 - undecodable input is the client's error, not a 500
        raise BadInput(f"cannot decode the request body: {type(exc).__name__}: {exc}",
                       field="body") from exc


def _call_args(api: InferenceAPI, value: Any, ctx: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    kwargs: dict[str, Any] = {}
    if api.multipart_fields is not None:
        kwargs.update(value)
        args: tuple[Any, ...] = ()
    else:
        args = (value,)
    if api.ctx_param is not None:
        kwargs[api.ctx_param] = ctx
    return args, kwargs


def _make_handler(
    service: Service, api: InferenceAPI
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    context = service.context

    output = api.output

    decode_off_loop = getattr(api.input, "decode_blocks", False)

    def run_sync(body: bytes, headers: Any) -> tuple[Any, Any]:
        value = _decode(api, body, headers)
        args, kwargs = _call_args(api, value, context)
        result = api.func(*args, **kwargs)
        return value, result if output.is_streaming(result) else output.encode(result)

    async def handle(request: web.Request) -> web.StreamResponse:
        pending = request.app[_RUNNERS_PENDING]
        if pending:
            raise ServiceUnavailable(
                f"runners still starting: {', '.join(sorted(pending))}; retry when /readyz is 200",
                retry_after_s=1,
            )
        body = await _read_body(request)
        response_ctx = context.begin_request(request.headers, request.query)
        loop = asyncio.get_running_loop()
        value = None
        try:
            if api.is_async:
                # keep the event loop free for others: large bodies, files and images
                if decode_off_loop or len(body) >= OFFLOAD_DECODE_BYTES:
                    value = await loop.run_in_executor(
                        request.app[_POOL], _decode, api, body, request.headers)
                else:
                    value = _decode(api, body, request.headers)
                args, kwargs = _call_args(api, value, context)
                result = await api.func(*args, **kwargs)
                if output.is_streaming(result):
                    message = result
                elif output.encode_blocks(result):
                    message = await loop.run_in_executor(request.app[_POOL], output.encode, result)
                else:
                    message = output.encode(result)
            else:
                call = functools.partial(contextvars.copy_context().run, run_sync, body,
                                         request.headers)
                value, message = await loop.run_in_executor(request.app[_POOL], call)
            if not isinstance(message, HTTPMessage):  # a stream: send chunks as they come
                stream = web.StreamResponse(headers=output.stream_headers())
                _apply_context(stream, response_ctx)
                request[STREAM_KEY] = stream  # errors from here on cannot change the status
                await stream.prepare(request)
                async for chunk in output.encode_stream(message):
                    await stream.write(chunk)
                await stream.write_eof()
                return stream
            response = web.Response(body=message.body, headers=message.headers)
            _apply_context(response, response_ctx)
            return response
        finally:
            cleanup = getattr(value, "cleanup", None)  # a typed input's uploaded files
            if cleanup is not None:
                cleanup()

    return handle


async def _run_hooks(hooks: list[Callable[..., Any]], service: Service, pool: ThreadPoolExecutor,
                     when: str) -> None:
    loop = asyncio.get_running_loop()
    for hook in hooks:
        try:
            if inspect.iscoroutinefunction(hook):
                await hook(service.context)
            else:
                await _maybe_await(await loop.run_in_executor(pool, hook, service.context))
        except Exception as exc:
            name = getattr(hook, "__qualname__", repr(hook))
            logger.error("%s hook %s failed", when, name, exc_info=exc)
            raise BentoMLException(
                f"{when} hook {name!r} failed: {type(exc).__name__}: {exc}") from exc


async def _start_runners(app: web.Application, runner_init: RunnerInit,
                         metrics_namespace: str | None) -> None:
    service = app[_SERVICE]
    loop = asyncio.get_running_loop()
    for runner in service.runners:
        try:
            await _maybe_await(await loop.run_in_executor(app[_POOL], runner_init, runner))
        except Exception as exc:  # noqa: BLE001 - reported, then the server stops
            logger.error("Runner %r failed to start", runner.name, exc_info=exc)
            if not app[_STARTUP_FAILED].done():
                app[_STARTUP_FAILED].set_exception(
                    BentoMLException(f"runner {runner.name!r} failed to start: "
                                     f"{type(exc).__name__}: {exc}")
                )
            return
        if metrics_namespace is not None:
            instrument_runner(runner, metrics_namespace)
        if tracing.ACTIVE:
            tracing.instrument_runner(runner)
        app[_RUNNERS_PENDING].discard(runner.name)
        logger.info("Runner %r is ready", runner.name)
    app[_RUNNERS_STARTED].set()


def _make_lifecycle(
    runner_init: RunnerInit, pool_size: int, metrics_namespace: str | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        service = app[_SERVICE]
        pool = ThreadPoolExecutor(pool_size, thread_name_prefix=API_THREAD_PREFIX)
        app[_POOL] = pool
        app[_STARTUP_FAILED] = asyncio.get_running_loop().create_future()
        app[_RUNNERS_STARTED] = asyncio.Event()
        try:
            await _run_hooks(service.startup_hooks, service, pool, "on_startup")
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        # Runners load in the background so /livez and /readyz answer while models load.
        starting = asyncio.create_task(_start_runners(app, runner_init, metrics_namespace))
        try:
            yield
        finally:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            try:
                await _run_hooks(service.shutdown_hooks, service, pool, "on_shutdown")
            finally:
                for runner in service.runners:
                    destroy = getattr(runner, "destroy", None)
                    if destroy is None:
                        continue
                    try:
                        await _maybe_await(destroy())
                    except Exception:  # noqa: BLE001 - keep shutting the others down
                        logger.exception("Runner %r failed to shut down", runner.name)
                pool.shutdown(wait=False, cancel_futures=True)

    return lifecycle


def build_app(
    service: Service,
    *,
    config: BentoliteConfig | None = None,
    runner_init: RunnerInit = init_runners_locally,
) -> web.Application:
    """The aiohttp app serving ``service``; ``runner_init`` prepares each runner at start-up."""
    import swagger_ui_bundle

    service.check_runners_listed()
    config = config or get_config()
    api_cfg = config.api_server
    api_routes = frozenset(api.route for api in service.apis.values())
    metrics = None
    if api_cfg.metrics.enabled:
        metrics = ApiServerMetrics(api_cfg.metrics.namespace, api_cfg.metrics.duration.buckets,
                                   service.name, service.version)
    max_mb = api_cfg.http.max_request_size_mb
    traffic = getattr(service, "traffic", None) or {}  # a new-style root's own settings win
    app = web.Application(
        client_max_size=int(max_mb * 1024 * 1024),  # for mounted apps' request.read()
        middlewares=[
            make_observe_middleware(metrics=metrics, api_routes=api_routes, cors=api_cfg.http.cors,
                                    max_request_size_mb=max_mb),
            make_traffic_middleware(api_routes=api_routes,
                                    timeout_s=traffic.get("timeout", api_cfg.traffic.timeout),
                                    max_concurrency=traffic.get(
                                        "max_concurrency", api_cfg.traffic.max_concurrency),
                                    max_request_size_mb=max_mb),
        ],
    )
    if tracing.setup(config.tracing, service_name=service.name,
                     log_format=api_cfg.logging.access.format):
        app.middlewares.insert(0, tracing.server_middleware(api_routes))
    app[_SERVICE] = service
    app[_MAX_BODY_BYTES] = int(max_mb * 1024 * 1024)
    app[_RUNNERS_PENDING] = {runner.name for runner in service.runners}
    pool_size = max(8, min(api_cfg.traffic.max_concurrency or 64, 256))
    metrics_namespace = api_cfg.metrics.namespace if api_cfg.metrics.enabled else None
    app.cleanup_ctx.append(_make_lifecycle(runner_init, pool_size, metrics_namespace))

    spec = openapi_spec(service)
    index_html = _swagger_index()
    probe_timeout_s = api_cfg.runner_probe.timeout

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=index_html, content_type="text/html")

    async def docs(_: web.Request) -> web.Response:
        return web.json_response(spec)

    schema = None
    if getattr(service, "definition", None) is not None:  # a new-style service
        from ..services.engine import schema_json

        schema = schema_json(service)

    async def schema_handler(_: web.Request) -> web.Response:
        return web.json_response(schema)

    async def alive(_: web.Request) -> web.Response:
        return web.Response(text="\n")

    async def ready(request: web.Request) -> web.Response:
        pending = sorted(request.app[_RUNNERS_PENDING])
        if not pending and api_cfg.runner_probe.enabled:
            for runner in service.runners:
                probe = getattr(runner, "runner_handle_is_ready", None)
                if probe is not None and not await _probe(probe, probe_timeout_s):
                    pending.append(runner.name)
        if pending:
            return web.json_response(
                {"error": f"Runners are not ready: {', '.join(pending)}", "type": "ServiceUnavailable",
                 "runners_not_ready": pending},
                status=503,
            )
        return web.Response(text="\n")

    async def metrics_handler(request: web.Request) -> web.Response:
        # Multiprocess mode reads every worker's files: keep that off the event loop.
        loop = asyncio.get_running_loop()
        body, content_type = await loop.run_in_executor(request.app[_POOL], exposition)
        return web.Response(body=body, headers={"Content-Type": content_type})

    app.router.add_get("/", index)
    app.router.add_get("/docs.json", docs)
    if schema is not None:
        app.router.add_get("/schema.json", schema_handler)
    app.router.add_get("/healthz", alive)
    app.router.add_get("/livez", alive)
    app.router.add_get("/readyz", ready)
    app.router.add_route("*", "/metrics", metrics_handler)
    app.router.add_static("/static_content/", str(swagger_ui_bundle.swagger_ui_path))
    for api in service.apis.values():
        app.router.add_post(api.route, _make_handler(service, api), name=f"api_{api.name}")
    if service.mount_apps:  # after every route of ours: those win
        from .mounts import add_mounts

        add_mounts(app, service.mount_apps, lambda request: request.app[_POOL])
    return app


async def _probe(probe: Callable[[float], Any], timeout_s: float) -> bool:
    try:
        return bool(await asyncio.wait_for(_maybe_await(probe(timeout_s)), timeout_s + 0.5))
    except Exception:  # noqa: BLE001 - a failing probe means "not ready"
        return False


async def start_app_runner(app: web.Application, *, config: BentoliteConfig | None = None,
                           shutdown_timeout_s: float = 30.0) -> web.AppRunner:
    """Set ``app`` up (its start-up runs) with our access log; add a site to serve it."""
    api_cfg = (config or get_config()).api_server
    access_cfg = api_cfg.logging.access
    AccessLogger.config = access_cfg
    app_runner = web.AppRunner(
        app,
        handle_signals=False,
        handler_cancellation=api_cfg.traffic.cancel_on_disconnect,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("bentoml.access") if access_cfg.enabled else None,
        shutdown_timeout=shutdown_timeout_s,
        logger=ServerLogger(logging.getLogger("aiohttp.server")),
    )
    await app_runner.setup()
    return app_runner


async def serve_app(
    app: web.Application,
    *,
    host: str | None = None,
    port: int | None = None,
    sock: socket.socket | None = None,
    shutdown_timeout_s: float = 30.0,
    config: BentoliteConfig | None = None,
    listen_when_ready: bool = False,
) -> None:
    """Serve ``app`` on ``host:port`` or an inherited ``sock`` until SIGINT/SIGTERM.

    With ``listen_when_ready`` the socket is served only once every runner is ready (API
    workers sharing a socket), else at once, with ``/readyz`` 503 while runners load.
    Raises the start-up error (e.g. a runner that failed to load) after a clean shut-down.
    """
    app_runner = await start_app_runner(app, config=config, shutdown_timeout_s=shutdown_timeout_s)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    failed = app[_STARTUP_FAILED]
    stopping = asyncio.ensure_future(stop.wait())
    try:
        if listen_when_ready:
            started = asyncio.ensure_future(app[_RUNNERS_STARTED].wait())
            await asyncio.wait({failed, started, stopping}, return_when=asyncio.FIRST_COMPLETED)
            started.cancel()
        if failed.done():
            failed.result()
        if not stopping.done():
            site: web.BaseSite
            if sock is not None:
                site = web.SockSite(app_runner, sock)
            else:
                site = web.TCPSite(app_runner, host, port)
            await site.start()
            logger.info("Serving %r on %s (Press CTRL+C to quit)", app[_SERVICE].name, site.name)
            await asyncio.wait({failed, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if failed.done():
            failed.result()
    finally:
        stopping.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await app_runner.cleanup()
