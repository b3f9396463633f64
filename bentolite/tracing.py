"""OpenTelemetry tracing (optional extra ``tracing``), configured by ``tracing.*``.

When ``tracing.exporter_type`` is set, each process sets itself up with :func:`setup`:

* the API server opens a SERVER span per API request (:func:`server_middleware`), continuing
  a W3C ``traceparent`` sent by the client, and puts the ids in its access log line;
* every runner call made from the API server gets a CLIENT span (:func:`instrument_runner`),
  whose context travels to the runner worker in the frame header (``meta["trace"]``);
* the runner worker opens a SERVER span per call, child of that client span
  (:func:`trace_runner_call`).

Exporters: ``console``, ``otlp`` (``tracing.otlp.protocol: http``) and ``in_memory``. The
in-memory exporter keeps finished spans in this process (:func:`finished_spans`) and, when
the environment variable ``BENTOLITE_TRACE_FILE`` names a file, also appends each finished
span there as one JSON line, so a test can read the spans of every process
(:func:`read_span_file`).

With no exporter configured nothing is imported from opentelemetry: the hooks check the
module flag :data:`ACTIVE` and do nothing else.
"""
from __future__ import annotations

import json
import logging
import os
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable

if TYPE_CHECKING:  # pragma: no cover
    import asyncio

    from .config import AccessLogFormat, TracingConfig

__all__ = [
    "ACTIVE",
    "TRACE_FILE_ENV",
    "setup",
    "shutdown",
    "server_middleware",
    "instrument_runner",
    "outgoing_trace",
    "trace_runner_call",
    "finished_spans",
    "read_span_file",
]

logger = logging.getLogger("bentolite.tracing")

#: Environment variable naming a JSON-lines file the ``in_memory`` exporter appends spans to.
TRACE_FILE_ENV = "BENTOLITE_TRACE_FILE"

#: Whether tracing is set up in this process (hooks read only this when it is off).
ACTIVE = False

EXPORTER_TYPES = ("console", "otlp", "in_memory")


class _Tracing:
    """This process's tracer, propagator and log formats (exists only while tracing is on)."""

    def __init__(self, provider: Any, service_name: str, excluded_urls: list[str],
                 log_format: AccessLogFormat | None, memory: Any) -> None:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = provider
        self.tracer = provider.get_tracer("bentolite")
        self.propagator = TraceContextTextMapPropagator()
        self.trace_api = trace
        self.service_name = service_name
        self.excluded = [re.compile(pattern) for pattern in excluded_urls]
        self.trace_id_format = log_format.trace_id if log_format else "032x"
        self.span_id_format = log_format.span_id if log_format else "016x"
        self.memory = memory

    def is_excluded(self, url: str) -> bool:
        return any(pattern.search(url) for pattern in self.excluded)

    def log_suffix(self, span: Any) -> str:
        ctx = span.get_span_context()
        return (f" (trace={format(ctx.trace_id, self.trace_id_format)},"
                f"span={format(ctx.span_id, self.span_id_format)},"
                f"sampled={1 if ctx.trace_flags.sampled else 0},service.name={self.service_name})")


_state: _Tracing | None = None


def setup(config: TracingConfig, *, service_name: str, instance_id: int | str = 0,
          log_format: AccessLogFormat | None = None, namespace: str | None = None,
          version: str | None = None) -> bool:
    """Set up tracing in this process from ``config``; returns whether tracing is on.

    Args:
        config: the ``tracing`` section (``get_config().tracing``).
        service_name: ``service.name`` of the spans: the Service name in the API server,
            the runner name in a runner worker.
        instance_id: ``service.instance.id`` (the worker index).
        log_format: ``api_server.logging.access.format`` (id formats in the access log).
    """
    global ACTIVE, _state
    from .exceptions import BentoMLConfigException

    shutdown()
    exporter_type = config.exporter_type
    if not exporter_type:
        return False
    exporter_type = exporter_type.lower()
    if exporter_type not in EXPORTER_TYPES:
        raise BentoMLConfigException(
            f"tracing.exporter_type: {config.exporter_type!r} is not supported; use one of "
            f"{', '.join(EXPORTER_TYPES)} (zipkin and jaeger can be reached through an "
            "OpenTelemetry collector with exporter_type: otlp)")
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanLimits, TracerProvider
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as e:
        raise BentoMLConfigException(
            f"tracing.exporter_type is {exporter_type!r} but OpenTelemetry is not installed "
            f"({e}); pip install 'bentolite[tracing]'") from None

    sample_rate = float(config.sample_rate or 0.0)
    if not 0.0 <= sample_rate <= 1.0:
        raise BentoMLConfigException(
            f"tracing.sample_rate: {config.sample_rate!r} must be between 0 and 1")
    if sample_rate == 0.0:
        logger.warning("tracing.exporter_type is %r but tracing.sample_rate is 0: no span will "
                       "be recorded; set tracing.sample_rate (e.g. 1.0)", exporter_type)
    attributes: dict[str, Any] = {"service.name": service_name,
                                  "service.instance.id": str(instance_id)}
    if namespace:
        attributes["service.namespace"] = namespace
    if version:
        attributes["service.version"] = version
    limits = SpanLimits(max_attribute_length=config.max_tag_value_length)
    provider = TracerProvider(
        resource=Resource.create(attributes),
        sampler=ParentBased(TraceIdRatioBased(sample_rate)),
        span_limits=limits,
    )
    memory = _add_exporter(provider, exporter_type, config)
    excluded = config.excluded_urls or []
    if isinstance(excluded, str):
        excluded = [u.strip() for u in excluded.split(",") if u.strip()]
    _state = _Tracing(provider, service_name, list(excluded), log_format, memory)
    ACTIVE = True
    return True


def _add_exporter(provider: Any, exporter_type: str, config: TracingConfig) -> Any:
    """Attach the configured exporter; returns the in-memory exporter, if that is the one."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter_type == "in_memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
        path = os.environ.get(TRACE_FILE_ENV)
        if path:
            provider.add_span_processor(SimpleSpanProcessor(_json_lines_exporter(path)))
        return memory
    if exporter_type == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        return None
    otlp = config.otlp
    protocol = (otlp.protocol or "http").lower()
    if protocol != "http":
        from .exceptions import BentoMLConfigException

        raise BentoMLConfigException(
            f"tracing.otlp.protocol: {otlp.protocol!r} is not supported; use http "
            "(opentelemetry-exporter-otlp-proto-http)")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    kwargs: dict[str, Any] = dict(otlp.http or {})
    if otlp.endpoint:
        kwargs["endpoint"] = otlp.endpoint
    if config.timeout is not None:
        kwargs["timeout"] = config.timeout
    if otlp.compression:
        from opentelemetry.exporter.otlp.proto.http import Compression

        kwargs["compression"] = Compression(otlp.compression)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(**kwargs)))
    return None


def _json_lines_exporter(path: str) -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class JsonLinesSpanExporter(SpanExporter):
        """Appends each span as one JSON line (one write per batch: safe across processes)."""

        def export(self, spans: Any) -> Any:
            lines = "".join(json.dumps(_span_record(span)) + "\n" for span in spans)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, lines.encode())
            finally:
                os.close(fd)
            return SpanExportResult.SUCCESS

    return JsonLinesSpanExporter()


def _span_record(span: Any) -> dict[str, Any]:
    ctx = span.get_span_context()
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "service_name": span.resource.attributes.get("service.name"),
        "pid": os.getpid(),
        "attributes": dict(span.attributes or {}),
    }


def shutdown() -> None:
    """Flush and stop this process's tracing (``setup`` calls it before setting up again)."""
    global ACTIVE, _state
    state, _state = _state, None
    ACTIVE = False
    if state is not None:
        state.provider.shutdown()


def finished_spans() -> list[Any]:
    """Spans finished in this process so far (``in_memory`` exporter only)."""
    if _state is None or _state.memory is None:
        return []
    return list(_state.memory.get_finished_spans())


def read_span_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The span records in a ``BENTOLITE_TRACE_FILE`` (see the module docstring for fields)."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


# --- API server ------------------------------------------------------------------------

def server_middleware(api_routes: frozenset[str]) -> Any:
    """An aiohttp middleware opening a SERVER span per API request (needs :func:`setup`)."""
    from aiohttp import web

    from .server.middlewares import ACCESS_LOG_SUFFIX

    state = _state
    if state is None:
        raise RuntimeError("tracing.setup() must run before tracing.server_middleware()")
    trace_api = state.trace_api
    server_kind = trace_api.SpanKind.SERVER

    @web.middleware
    async def trace_request(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]
                            ) -> Any:
        path = request.path
        if path not in api_routes or state.is_excluded(str(request.url)):
            return await handler(request)
        parent = state.propagator.extract(request.headers)
        attributes = {"http.method": request.method, "http.route": path,
                      "http.target": request.path_qs, "http.scheme": request.scheme}
        with state.tracer.start_as_current_span(f"{request.method} {path}", context=parent,
                                                kind=server_kind, attributes=attributes) as span:
            request[ACCESS_LOG_SUFFIX] = state.log_suffix(span)
            response = await handler(request)
            span.set_attribute("http.status_code", response.status)
            if response.status >= 500:
                span.set_status(trace_api.Status(trace_api.StatusCode.ERROR))
            return response

    return trace_request


class _TracedRunnerHandle:
    """Wraps a runner handle: a CLIENT span around every call made from this process."""

    __slots__ = ("_inner", "_runner_name")

    def __init__(self, inner: Any, runner_name: str) -> None:
        self._inner = inner
        self._runner_name = runner_name

    def _span(self, method: Any) -> Any:
        state = _state
        if state is None:  # tracing was shut down: behave like the plain handle
            import contextlib

            return contextlib.nullcontext()
        return state.tracer.start_as_current_span(
            f"{self._runner_name}.{method.name}", kind=state.trace_api.SpanKind.CLIENT,
            attributes={"bentolite.runner": self._runner_name, "bentolite.method": method.name})

    def run_method(self, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self._span(method):
            return self._inner.run_method(method, args, kwargs)

    async def async_run_method(self, method: Any, args: tuple[Any, ...],
                               kwargs: dict[str, Any]) -> Any:
        with self._span(method):
            return await self._inner.async_run_method(method, args, kwargs)

    async def async_stream_method(self, method: Any, args: tuple[Any, ...],
                                  kwargs: dict[str, Any]) -> Any:
        """A CLIENT span from the call to the last item. It is current only while the first
        item is awaited (when the call, with its trace context, is sent): a span kept current
        across yields could not be detached if the caller stopped early."""
        stream = self._inner.async_stream_method(method, args, kwargs)
        state = _state
        if state is None:
            async for item in stream:
                yield item
            return
        from opentelemetry import context

        trace_api = state.trace_api
        span = state.tracer.start_span(
            f"{self._runner_name}.{method.name}", kind=trace_api.SpanKind.CLIENT,
            attributes={"bentolite.runner": self._runner_name, "bentolite.method": method.name,
                        "bentolite.stream": True})
        items = 0
        try:
            token = context.attach(trace_api.set_span_in_context(span))
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                return
            finally:
                context.detach(token)
            items = 1
            yield first
            async for item in stream:
                items += 1
                yield item
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(trace_api.Status(trace_api.StatusCode.ERROR,
                                             f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            span.set_attribute("bentolite.stream_items", items)
            span.end()

    def __getattr__(self, name: str) -> Any:  # is_ready, close, ...
        return getattr(self._inner, name)


def instrument_runner(runner: Any) -> None:
    """Trace every call this process makes to ``runner`` (a CLIENT span per call)."""
    handle = getattr(runner, "_runner_handle", None)
    if handle is None or isinstance(handle, _TracedRunnerHandle):
        return
    runner._runner_handle = _TracedRunnerHandle(handle, runner.name)


def outgoing_trace() -> dict[str, str] | None:
    """The current span's W3C trace context for a runner call's frame header, if any."""
    state = _state
    if state is None:
        return None
    carrier: dict[str, str] = {}
    state.propagator.inject(carrier)
    return carrier or None


# --- runner worker ---------------------------------------------------------------------

def trace_runner_call(future: asyncio.Future[Any], runner_name: str, method_name: str,
                      trace: dict[str, str] | None) -> None:
    """A SERVER span for one call in a runner worker, ended when ``future`` is done."""
    state = _state
    if state is None:
        return
    parent = state.propagator.extract(trace) if isinstance(trace, dict) else None
    span = state.tracer.start_span(
        f"{runner_name}.{method_name}", context=parent, kind=state.trace_api.SpanKind.SERVER,
        attributes={"bentolite.runner": runner_name, "bentolite.method": method_name})

    def end(done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            span.set_attribute("bentolite.cancelled", True)
        elif done.exception() is not None:
            exc = done.exception()
            span.record_exception(exc)
            span.set_status(state.trace_api.Status(state.trace_api.StatusCode.ERROR,
                                                   f"{type(exc).__name__}: {exc}"))
        span.end()

    future.add_done_callback(end)
