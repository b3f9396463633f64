"""Tracing: spans in the API server, around runner calls, and in real runner worker processes."""
from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiohttp import ClientSession, web

import bentolite
from bentolite import config as config_module
from bentolite import tracing
from bentolite.config import build_config, set_config
from bentolite.exceptions import BentoMLConfigException
from bentolite.io import JSON
from bentolite.runner.process import RunnerWorkerGroup
from bentolite.server.app import build_app
from bentolite.server.middlewares import AccessLogger

from tests.runner import runner_targets as targets

pytest.importorskip("opentelemetry.sdk")

ROOT = str(Path(__file__).resolve().parents[1])
TRACING_ON = {"tracing": {"exporter_type": "in_memory", "sample_rate": 1.0}}
CLIENT_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN_ID = "b7ad6b7169203331"


@pytest.fixture(autouse=True)
def _reset_tracing() -> Iterator[None]:
    previous = config_module._current
    yield
    tracing.shutdown()
    set_config(previous)  # type: ignore[arg-type]


class Double(bentolite.Runnable):
    SUPPORTED_RESOURCES = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING = False

    @bentolite.Runnable.method(batchable=False)
    def double(self, values: list[int]) -> list[int]:
        return [2 * v for v in values]


def _service() -> bentolite.Service:
    runner = bentolite.Runner(Double, name="double_traced")
    svc = bentolite.Service("traced", runners=[runner])

    @svc.api(input=JSON(), output=JSON())
    async def doubles(values: list[int]) -> list[int]:
        return await runner.double.async_run(values)

    return svc


async def _serve_and_call(app: web.Application, headers: dict[str, str]) -> tuple[int, Any]:
    app_runner = web.AppRunner(app, access_log_class=AccessLogger,
                               access_log=logging.getLogger("bentoml.access"))
    await app_runner.setup()
    site = web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the ephemeral port
    base = f"http://127.0.0.1:{port}"
    try:
        async with ClientSession() as session:
            for _ in range(200):
                async with session.get(base + "/readyz") as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.05)
            async with session.post(base + "/doubles", json=[1, 2], headers=headers) as r:
                return r.status, await r.json()
    finally:
        await app_runner.cleanup()


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _access_lines() -> tuple[_Lines, logging.Logger]:
    handler = _Lines()
    log = logging.getLogger("bentoml.access")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler, log


def test_server_span_continues_the_client_trace_and_wraps_runner_calls() -> None:
    app = build_app(_service(), config=build_config(TRACING_ON))
    handler, log = _access_lines()
    try:
        status, body = asyncio.run(_serve_and_call(
            app, {"traceparent": f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"}))
    finally:
        log.removeHandler(handler)
    assert (status, body) == (200, [2, 4])
    spans = {span.name: span for span in tracing.finished_spans()}
    assert set(spans) == {"POST /doubles", "double_traced.double"}, spans
    server, client = spans["POST /doubles"], spans["double_traced.double"]
    assert format(server.context.trace_id, "032x") == CLIENT_TRACE_ID
    assert format(server.parent.span_id, "016x") == CLIENT_SPAN_ID
    assert server.kind.name == "SERVER" and client.kind.name == "CLIENT"
    assert client.parent.span_id == server.context.span_id
    assert server.start_time <= client.start_time <= client.end_time <= server.end_time
    assert server.attributes["http.status_code"] == 200
    assert server.resource.attributes["service.name"] == "traced"

    [line] = [line for line in handler.lines if "path=/doubles" in line]
    server_span_id = format(server.context.span_id, "016x")
    assert line.endswith(f" (trace={CLIENT_TRACE_ID},span={server_span_id},sampled=1,"
                         "service.name=traced)"), line
    # probes are not traced and their log lines carry no trace suffix
    assert all("trace=" not in line for line in handler.lines if "/readyz" in line)


def test_sample_rate_zero_records_nothing_but_logs_ids() -> None:
    config = build_config({"tracing": {"exporter_type": "in_memory", "sample_rate": 0}})
    app = build_app(_service(), config=config)
    handler, log = _access_lines()
    try:
        status, _ = asyncio.run(_serve_and_call(app, {}))
    finally:
        log.removeHandler(handler)
    assert status == 200
    assert tracing.finished_spans() == []
    [line] = [line for line in handler.lines if "path=/doubles" in line]
    assert ",sampled=0,service.name=traced)" in line


@pytest.mark.parametrize("section, message", [
    ({"exporter_type": "zipkin"}, "tracing.exporter_type: 'zipkin' is not supported"),
    ({"exporter_type": "in_memory", "sample_rate": 2}, "tracing.sample_rate: 2"),
    ({"exporter_type": "otlp", "otlp": {"protocol": "grpc"}}, "tracing.otlp.protocol: 'grpc'"),
])
def test_bad_tracing_settings_are_refused(section: dict[str, Any], message: str) -> None:
    with pytest.raises(BentoMLConfigException, match=message.replace("(", r"\(")):
        tracing.setup(build_config({"tracing": section}).tracing, service_name="svc")
    assert not tracing.ACTIVE


def _traced_in_worker(runner: bentolite.Runner, tmp_path: Path, body: Any) -> Path:
    """Trace this process, start one worker of ``runner`` tracing to a span file, run
    ``await body()`` against it, stop it; the worker's span file."""
    span_file = tmp_path / "spans.jsonl"
    set_config(build_config(TRACING_ON))  # the worker group hands this config to its workers
    assert tracing.setup(build_config(TRACING_ON).tracing, service_name="caller")

    async def main() -> None:
        async with RunnerWorkerGroup(runner, "tests.runner.runner_targets:svc", tmp_path / "run",
                                     working_dir=ROOT, worker_count=1,
                                     extra_env={tracing.TRACE_FILE_ENV: str(span_file)}) as group:
            runner.init_client(group.addresses)
            tracing.instrument_runner(runner)
            try:
                await body()
            finally:
                runner.destroy()

    asyncio.run(main())
    return span_file


def test_trace_context_crosses_to_a_runner_worker_process(tmp_path: Path) -> None:
    """The worker's SERVER span is a child of the caller's CLIENT span (frame header)."""
    runner = targets.echo_runner

    async def body() -> None:
        assert await runner.async_run({"x": 1}) == {"x": 1}
        assert tracing.outgoing_trace() is None  # no current span: nothing to send

    span_file = _traced_in_worker(runner, tmp_path, body)
    [client] = [s for s in tracing.finished_spans() if s.name == "echo.__call__"]
    [worker] = tracing.read_span_file(span_file)
    assert worker["name"] == "echo.__call__" and worker["kind"] == "SERVER"
    assert worker["trace_id"] == format(client.context.trace_id, "032x")
    assert worker["parent_span_id"] == format(client.context.span_id, "016x")
    assert worker["service_name"] == "echo" and worker["pid"] != os.getpid()
    assert client.start_time <= worker["start_ns"] <= worker["end_ns"] <= client.end_time


def test_tracing_off_imports_no_opentelemetry(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import bentolite\n"
        "from bentolite import tracing\n"
        "from bentolite.config import build_config\n"
        "from bentolite.server.app import build_app\n"
        "from bentolite.io import JSON\n"
        "class Echo(bentolite.Runnable):\n"
        "    @bentolite.Runnable.method(batchable=False)\n"
        "    def echo(self, x):\n"
        "        return x\n"
        "svc = bentolite.Service('untraced', runners=[bentolite.Runner(Echo, name='echo')])\n"
        "svc.api(input=JSON(), output=JSON(), name='echo')(lambda x: x)\n"
        "build_app(svc, config=build_config({}))\n"
        "import bentolite.runner.worker, bentolite.runner.remote\n"
        "assert not tracing.ACTIVE\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "BENTOLITE_HOME": str(tmp_path)}
    env.pop("BENTOLITE_CONFIG", None)
    env.pop("BENTOLITE_CONFIG_OPTIONS", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_streamed_runner_call_is_one_client_span_continued_in_the_worker(tmp_path: Path) -> None:
    runner = targets.row_runner

    async def body() -> None:
        words = [w["word"] async for w in runner.words.async_stream("a b c")]
        assert words == ["a", "b", "c"]
        assert tracing.outgoing_trace() is None  # the span was not left current

    span_file = _traced_in_worker(runner, tmp_path, body)
    [client] = [s for s in tracing.finished_spans() if s.name == "rows.words"]
    assert client.attributes["bentolite.stream_items"] == 3
    [worker] = tracing.read_span_file(span_file)  # written by the time the worker stopped
    assert worker["name"] == "rows.words" and worker["kind"] == "SERVER"
    assert worker["parent_span_id"] == format(client.context.span_id, "016x")
