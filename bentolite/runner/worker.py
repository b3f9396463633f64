"""Runner worker process: load one Runnable, serve its methods on a Unix socket with batching.

``python -m bentolite.runner.worker --target MODULE:ATTR --runner-name NAME --socket PATH
--worker-index I [--working-dir DIR]``. ``MODULE:ATTR`` names a Service (anything with a
``runners`` list) or a Runner. The parent sets this process's env (strategy env) before it
starts. The socket is bound only once the Runnable is built, so "connectable" means ready.
If the Runnable's ``__init__`` raises, the traceback goes to stderr and the process exits 3.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import concurrent.futures
import functools
import importlib
import inspect
import json
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any, AsyncIterator, Sequence

from .. import tracing
from ..allocator import tune_allocator
from ..exceptions import BentoMLException
from ..logs import configure_logging
from .batching import AdaptiveBatcher
from .container import (
    array_layout, check_batch_length, concat_batches, single_array_rows, decode_payload, encode_payload, is_batch_value,
    split_batch, split_rows,
)
from .handle import batch_items, iterate_in
from .process import PARENT_PID_ENV, RUNNER_MAP_ENV
from .protocol import (
    CALL, CANCEL, CHUNK, ERROR, PING, PONG, RESULT, Frame, FrameProtocol, error_meta,
)
from .runner import Runner, RunnerMethod

__all__ = ["RunnerWorker", "load_runner", "main"]

logger = logging.getLogger("bentolite.runner.worker")

EXIT_INIT_FAILED = 3
#: name of a Runnable method run when its worker stops (new-style ``@on_shutdown`` hooks)
SHUTDOWN_METHOD = "_bentolite_shutdown"
#: Longest estimated call that an idle worker runs on its event loop thread (see
#: ``RunnerWorker._can_run_inline``); longer calls always go to the model thread.
INLINE_MAX_S = 0.02
#: A call (a batch, or a direct unbatched sync call of a new-style ``def`` API) measured under
#: this runs on the loop thread whenever the model thread is idle, queued calls or not: a
#: thread hand-off costs more than such a call (echo_runner c=32: 4,100-4,500 -> 6,800-7,000
#: req/s, runner CPU 200 -> 57 us per request)
DIRECT_INLINE_MAX_S = 0.001
#: Calls expected to arrive during a call above which it runs in the model thread, so the loop
#: receives and decodes them meanwhile. Fewer, and the hand-off and the GIL traffic of a
#: thread cost more than that overlap saves; the blocked loop also lets them queue into one
#: fuller next batch (measured on 2 cores, batching bench: c=8 480 req/s inline vs 380 in the
#: thread; c=32 1,210 in the thread vs 1,020 inline).
INLINE_MAX_ARRIVALS = 8


def load_runner(target: str, runner_name: str, working_dir: str | None = None) -> Runner:
    """Find runner ``runner_name`` in ``target``: a Runner (``MODULE:ATTR``), or a Service in any
    form ``bentolite serve`` takes (``module``, ``module:attr``, ``file.py[:attr]``)."""
    module_name, _, attr = target.partition(":")
    obj: Any
    if not attr or module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        from ..services.loader import import_service

        obj = import_service(target, working_dir)
    else:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        as_service = getattr(obj, "as_service", None)  # a new-style service class
        if as_service is not None:
            obj = as_service()
    if isinstance(obj, Runner):
        if obj.name != runner_name:
            raise BentoMLException(f"{target} is runner {obj.name!r}, not {runner_name!r}")
        return obj
    runners = getattr(obj, "runners", None)
    if runners is None:
        raise BentoMLException(f"{target} is neither a Service nor a Runner")
    for runner in runners:
        if runner.name == runner_name:
            return runner
    names = [r.name for r in runners]
    raise BentoMLException(f"{target} has no runner named {runner_name!r} (it has {names})")


def _concat_calls(payloads: list[tuple[Any, Any, int]], dim: int
                  ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of one call made of queued calls ``(args, kwargs, items)``: batch
    values joined along ``dim``, other arguments (equal by the batch key) from the first."""
    first_args, first_kwargs, _ = payloads[0]
    if len(payloads) == 1:
        return first_args, first_kwargs
    args = tuple(
        concat_batches([p[0][i] for p in payloads], dim) if is_batch_value(a) else a
        for i, a in enumerate(first_args))
    kwargs = {k: concat_batches([p[1][k] for p in payloads], dim) if is_batch_value(v) else v
              for k, v in first_kwargs.items()}
    return args, kwargs


def _batch_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Calls batch together only with the same layout and equal non-batch arguments."""
    return (
        tuple(None if is_batch_value(a) else ("v", a) for a in args),
        tuple((k, None if is_batch_value(v) else ("v", v)) for k, v in sorted(kwargs.items())),
    )


def _row_splitter(method: RunnerMethod) -> Any:
    """The batcher's ``split`` for a batchable method: a single-array call that accepts
    partial results (coalesced calls from an API worker) is split by rows to fill a batch."""
    if not method.config.batchable:
        return None
    in_dim = method.config.batch_dim[0]

    def split(payload: tuple[Any, Any, int], rows: int) -> Any:
        args, kwargs, items = payload
        if single_array_rows(args, kwargs, in_dim) is None:
            return None
        head, tail = split_rows(args[0], rows, in_dim)
        return ((head,), kwargs, rows), ((tail,), kwargs, items - rows)

    return split


#: the two histograms, made once per process (several runners may run in one process:
#: development mode, new-style services embedded in an API worker)
_HISTOGRAMS: list[Any] = []


class _Metrics:
    def __init__(self, runner_name: str, worker_index: int, max_batch_size: int) -> None:
        from prometheus_client import Histogram

        if not _HISTOGRAMS:
            buckets: list[float] = []
            size = 1
            while size < max_batch_size:
                buckets.append(size)
                size *= 2
            buckets.append(max(max_batch_size, 1))
            labels = ["runner_name", "method_name", "worker_index"]
            _HISTOGRAMS.append(Histogram(
                "bentoml_runner_adaptive_batch_size", "Items per adaptive batch",
                labels, buckets=buckets))
            _HISTOGRAMS.append(Histogram(
                "bentoml_runner_queue_wait_seconds",
                "Time a request waited in the batch queue", labels,
                buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)))
        self.batch_size, self.queue_wait = _HISTOGRAMS
        self.runner_name = runner_name
        self.worker_index = str(worker_index)

    def observer(self, method_name: str) -> Any:
        size = self.batch_size.labels(self.runner_name, method_name, self.worker_index)
        wait = self.queue_wait.labels(self.runner_name, method_name, self.worker_index)

        def on_batch(items: int, waits: Sequence[float]) -> None:
            size.observe(items)
            _observe_many(wait, waits)

        return on_batch


def _observe_many(histogram: Any, values: Sequence[float]) -> None:
    """``observe`` each value, with one update per bucket instead of one per value.

    In multiprocess mode every ``observe`` writes two mmap'd values under a lock (measured:
    about 16 us, a quarter of the worker's per-call CPU at concurrency 64).
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(values) < 2:
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    for value in values:
        counts[bisect.bisect_left(bounds, value)] += 1  # first bound >= value, as observe
    for bucket, count in zip(buckets, counts):
        if count:
            bucket.inc(count)
    total.inc(sum(values))


class RunnerWorker:
    """One runner worker: the Runnable instance, a model thread, one batcher per method."""

    def __init__(self, runner: Runner, worker_index: int = 0) -> None:
        self.runner = runner
        self.worker_index = worker_index
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"runner-{runner.name}")
        self._instance: Any = None
        self._batchers: dict[str, AdaptiveBatcher] = {}
        self._methods = {m.name: m for m in runner.runner_methods}
        self._inflight: set[asyncio.Future[Any]] = set()
        self._model_jobs = 0  # model calls running (inline or in the model thread)
        self._streams = 0  # streamed calls under way (their steps run in the model thread)
        # a runnable that calls other runners (a new-style service's dependencies) may
        # block on them: never on the loop thread
        self._may_inline = not getattr(runner, "dependencies", ())
        # unbatched sync calls skip the batch queue and its per-call deadline (new-style
        # services, as in BentoML 1.2+); v1 runners queue them (max_latency_ms applies)
        self._direct = getattr(runner, "direct_calls", False)
        self._direct_s: dict[str, float] = {}  # recent duration of each method's direct calls

    def load(self) -> None:
        """Build the Runnable (in the model thread that will call it)."""
        runner = self.runner
        self._instance = self._executor.submit(
            lambda: runner.runnable_class(**runner.runnable_init_params)).result()

    def make_batchers(self) -> None:
        """One batcher per method, bound to the running loop (the one that will serve calls)."""
        metrics = None
        if self.runner.config.metrics.enabled:
            biggest = max(m.limits.max_batch_size for m in self.runner.runner_methods)
            metrics = _Metrics(self.runner.name, self.worker_index, biggest)
        model_lock = asyncio.Lock()  # every method runs in the one model thread
        for method in self.runner.runner_methods:
            self._batchers[method.name] = AdaptiveBatcher(
                self._batch_runner(method), runner_name=self.runner.name,
                method_name=method.name, limits=method.limits,
                on_batch=metrics.observer(method.name) if metrics else None,
                model_lock=model_lock, split=_row_splitter(method))

    async def _run_direct(self, method_name: str, args: tuple[Any, ...],
                          kwargs: dict[str, Any]) -> Any:
        """A sync call straight to the model thread, without the batch queue."""
        func = functools.partial(getattr(self._instance, method_name), *args, **kwargs)
        self._model_jobs += 1
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, func)
        finally:
            self._model_jobs -= 1
            self._note_direct(method_name, time.perf_counter() - started)

    def _note_direct(self, method_name: str, seconds: float) -> None:
        last = self._direct_s.get(method_name)
        self._direct_s[method_name] = seconds if last is None else 0.8 * last + 0.2 * seconds

    def _direct_inline(self, method_name: str) -> bool:
        """Whether a direct call runs on the loop thread: measured (in the model thread)
        under DIRECT_INLINE_MAX_S, and nothing else in the model thread meanwhile."""
        estimate = self._direct_s.get(method_name)
        return (estimate is not None and estimate < DIRECT_INLINE_MAX_S and self._may_inline
                and self._model_jobs == 0 and self._streams == 0)

    def _call_inline(self, method_name: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        started = time.perf_counter()
        try:
            future.set_result(getattr(self._instance, method_name)(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - the caller gets it, as from the thread
            future.set_exception(exc)
        self._note_direct(method_name, time.perf_counter() - started)
        return future

    def run_now(self, method_name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call a method at once, unbatched, from a thread with no event loop (scripts)."""
        func = getattr(self._instance, method_name)
        if self._methods[method_name].config.is_async:
            return asyncio.run(func(*args, **kwargs))
        return self._executor.submit(func, *args, **kwargs).result()

    def shutdown_now(self) -> None:
        """Run the shutdown hooks and stop the model thread (an in-process worker's end)."""
        shutdown = getattr(self._instance, SHUTDOWN_METHOD, None)
        if shutdown is not None:
            try:
                self._executor.submit(shutdown).result()
            except Exception:  # noqa: BLE001 - stopping anyway
                logger.exception("runner %s: a shutdown hook failed", self.runner.name)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def close_instance(self) -> None:
        """Run the instance's shutdown hooks (new-style services' ``@on_shutdown``), if any,
        in the model thread; a failing hook is logged."""
        shutdown = getattr(self._instance, SHUTDOWN_METHOD, None)
        if shutdown is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, shutdown)
        except Exception:  # noqa: BLE001 - stopping anyway
            logger.exception("runner %s: a shutdown hook failed", self.runner.name)

    def _batch_runner(self, method: RunnerMethod) -> Any:
        func = getattr(self._instance, method.name)
        loop = asyncio.get_running_loop()
        executor = self._executor
        in_dim, out_dim = method.config.batch_dim

        def call_one(payload: tuple[Any, Any, int]) -> list[Any]:
            args, kwargs, _ = payload
            return [func(*args, **kwargs)]

        def call_batch(payloads: list[tuple[Any, Any, int]]) -> list[Any]:
            sizes = [p[2] for p in payloads]
            args, kwargs = _concat_calls(payloads, in_dim)
            result = func(*args, **kwargs)
            if len(payloads) == 1:  # nothing to split: just check the result's length
                check_batch_length(result, sizes[0], out_dim, method.name)
                return [result]
            return split_batch(result, sizes, out_dim, method.name)

        batchable = method.config.batchable
        if method.config.is_async:  # awaited on this loop: no model thread, no inline check
            async def run_async(payloads: list[Any]) -> list[Any]:
                if not batchable:
                    args, kwargs, _ = payloads[0]
                    return [await func(*args, **kwargs)]
                sizes = [p[2] for p in payloads]
                args, kwargs = _concat_calls(payloads, in_dim)
                return split_batch(await func(*args, **kwargs), sizes, out_dim, method.name)

            return run_async
        func_for_job: Any = call_batch if batchable else call_one

        async def run_batch(payloads: list[Any]) -> list[Any]:
            job = payloads if batchable else payloads[0]
            if self._can_run_inline(method.name, sum(p[2] for p in payloads)):
                if len(self._inflight) > len(payloads):
                    # let the replies of the previous batch go out first (two loop
                    # iterations: reply callbacks, then the coalesced write)
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                if self._model_jobs == 0:
                    self._model_jobs += 1
                    try:
                        return func_for_job(job)
                    finally:
                        self._model_jobs -= 1
            self._model_jobs += 1
            try:
                return await loop.run_in_executor(executor, func_for_job, job)
            finally:
                self._model_jobs -= 1

        return run_batch

    def _can_run_inline(self, method_name: str, items: int) -> bool:
        """Run on the loop thread when idle and short: no thread hand-offs at low load.

        Always for a batch estimated under DIRECT_INLINE_MAX_S with the model thread idle.
        Otherwise only when nothing else waits (no other call or stream), few calls are
        expected to arrive while it runs (INLINE_MAX_ARRIVALS; under more load the loop keeps
        receiving and decoding the next batch's calls meanwhile), and the call is estimated
        under INLINE_MAX_S, so probes and deadline checks are held back at most that long.
        BentoML 1.1 also built Runnables in one thread and called them in another, so
        Runnables do not depend on thread-local state across calls.
        """
        batcher = self._batchers[method_name]
        if not self._may_inline or self._model_jobs or self._streams or not batcher.cost.fitted:
            return False
        estimate_s = batcher.cost.estimate_s(items)
        if estimate_s < DIRECT_INLINE_MAX_S:
            return True
        return (estimate_s <= INLINE_MAX_S and not batcher.queue_length
                and batcher.arrivals_within(estimate_s) < INLINE_MAX_ARRIVALS)

    def call(self, method_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
             trace: dict[str, str] | None = None, on_part: Any = None) -> asyncio.Future[Any]:
        """Queue a call; the future resolves to its result (cancel it to withdraw the call).

        ``trace`` is the caller's W3C trace context (frame header), used when tracing is on.
        ``on_part(result, rows)``: the call accepts partial results, so a single-array call
        to a batchable method may be split by rows to fill a batch (see the batcher).
        """
        method = self._methods.get(method_name)
        if method is None:
            raise BentoMLException(
                f"runner {self.runner.name!r} has no method {method_name!r}")
        if not method.config.batchable and (method.config.is_async or self._direct):
            if method.config.is_async:  # concurrent calls overlap on the loop, as in BentoML
                future = asyncio.ensure_future(
                    getattr(self._instance, method_name)(*args, **kwargs))
            elif self._direct_inline(method_name):
                future = self._call_inline(method_name, args, kwargs)
            else:
                future = asyncio.ensure_future(self._run_direct(method_name, args, kwargs))
            if tracing.ACTIVE:
                tracing.trace_runner_call(future, self.runner.name, method_name, trace)
            return future
        batcher = self._batchers[method_name]
        if method.config.batchable:
            dim = method.config.batch_dim[0]
            items = single_array_rows(args, kwargs, dim)
            if items is not None:  # the common call: skip the general inspection; arrays
                # that cannot be joined never share a batch (one's error stays its own)
                return batcher.enqueue((args, kwargs, items), items,
                                       array_layout(args[0], dim), on_part)
            items = batch_items(method, args, kwargs)
            future = batcher.enqueue((args, kwargs, items), items, _batch_key(args, kwargs))
        else:
            future = batcher.enqueue((args, kwargs, 1), 1)
        if tracing.ACTIVE:
            tracing.trace_runner_call(future, self.runner.name, method_name, trace)
        return future

    async def stream(self, method_name: str, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """What generator method ``method_name`` yields; its code runs in the model thread."""
        method = self._methods.get(method_name)
        if method is None:
            raise BentoMLException(
                f"runner {self.runner.name!r} has no method {method_name!r}")
        func = getattr(self._instance, method_name)
        loop = asyncio.get_running_loop()
        self._streams += 1
        try:
            items = await loop.run_in_executor(self._executor,
                                               functools.partial(func, *args, **kwargs))
            async for item in iterate_in(self._executor, items, method):
                yield item
        finally:
            self._streams -= 1

    def error_meta(self, exc: BaseException) -> dict[str, Any]:
        """What the caller gets of a failed call (type, message); a user error is logged."""
        if not isinstance(exc, BentoMLException):
            logger.error("runner %s call failed:\n%s", self.runner.name, "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip())
        return error_meta(exc)

    async def close(self) -> None:
        """Fail what is still queued, run the shutdown hooks, release the model thread."""
        for batcher in self._batchers.values():
            await batcher.close()
        await self.close_instance()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- serving --------------------------------------------------------------------

    def _connection(self) -> FrameProtocol:
        calls: dict[int, asyncio.Future[Any]] = {}
        inflight = self._inflight

        def reply(rid: int, future: asyncio.Future[Any]) -> None:
            calls.pop(rid, None)
            inflight.discard(future)
            if future.cancelled():
                return
            exc = future.exception()
            if exc is not None:
                send_error(rid, exc)
                return
            try:
                proto.send(RESULT, rid, None, encode_payload(future.result()))
            except Exception as e:  # noqa: BLE001 - e.g. unpicklable, or past the frame limit
                send_error(rid, e)

        def send_error(rid: int, exc: BaseException) -> None:
            proto.send(ERROR, rid, self.error_meta(exc))

        def send_part(rid: int, result: Any, rows: int) -> None:
            """The first ``rows`` rows' result of a split call: a CHUNK before its RESULT."""
            try:
                proto.send(CHUNK, rid, {"n": rows}, encode_payload(result))
            except Exception as e:  # noqa: BLE001 - e.g. an unpicklable result
                future = calls.get(rid)
                if future is not None and not future.done():
                    future.set_exception(e)

        async def stream_to(rid: int, frame: Frame) -> None:
            try:
                args, kwargs = decode_payload(frame.buffers)
                async for item in self.stream(frame.meta.get("m", ""), args, kwargs):
                    proto.send(CHUNK, rid, None, encode_payload(item))
                proto.send(RESULT, rid, None, encode_payload(None))
            except Exception as e:  # noqa: BLE001 - the caller gets the error as its last frame
                send_error(rid, e)

        def start_stream(rid: int, frame: Frame) -> None:
            task = asyncio.ensure_future(stream_to(rid, frame))
            calls[rid] = task
            inflight.add(task)
            if tracing.ACTIVE:
                tracing.trace_runner_call(task, self.runner.name, frame.meta.get("m", ""),
                                          frame.meta.get("trace"))

            def done(_: Any) -> None:
                calls.pop(rid, None)
                inflight.discard(task)

            task.add_done_callback(done)

        def on_frame(frame: Frame) -> None:
            rid = frame.request_id
            if frame.kind == CALL:
                if frame.meta.get("stream"):
                    start_stream(rid, frame)
                    return
                try:
                    args, kwargs = decode_payload(frame.buffers)
                    meta = frame.meta
                    future = self.call(meta.get("m", ""), args, kwargs, meta.get("trace"),
                                       functools.partial(send_part, rid) if "p" in meta else None)
                except Exception as e:  # noqa: BLE001 - refused calls get their error back
                    send_error(rid, e)
                    return
                calls[rid] = future
                inflight.add(future)
                future.add_done_callback(functools.partial(reply, rid))
            elif frame.kind == CANCEL:
                future = calls.get(rid)
                if future is not None:
                    future.cancel()
            elif frame.kind == PING:
                proto.send(PONG, rid, {"worker_index": self.worker_index})

        class _Conn(FrameProtocol):
            def connection_lost(self, exc: Exception | None) -> None:
                super().connection_lost(exc)
                for future in list(calls.values()):
                    future.cancel()

        proto = _Conn(on_frame)
        return proto

    async def serve(self, socket_path: str | None, stop: asyncio.Event, drain_s: float = 30.0,
                    *, tcp: tuple[str, int] | None = None) -> None:
        """Serve on the Unix socket (and/or HTTP on ``tcp``) until ``stop``; then drain."""
        self.make_batchers()
        loop = asyncio.get_running_loop()
        server = http = None
        if socket_path is not None:
            if os.path.exists(socket_path):
                os.unlink(socket_path)
            server = await loop.create_unix_server(self._connection, socket_path)
        if tcp is not None:
            from .http_server import start_http_server

            http = await start_http_server(self, tcp[0], tcp[1], self.runner.config.auth_token)
        logger.info("runner %s worker %d ready on %s (pid %d)", self.runner.name,
                    self.worker_index, socket_path or f"{tcp[0]}:{tcp[1]}", os.getpid())
        try:
            await stop.wait()
        finally:
            if server is not None:
                server.close()
            if self._inflight:
                await asyncio.wait(list(self._inflight), timeout=drain_s)
            if http is not None:
                await http.cleanup()
            await self.close()
            if socket_path is not None:
                try:
                    os.unlink(socket_path)
                except OSError:
                    pass


def _load(args: argparse.Namespace) -> RunnerWorker:
    """Import the target and build the Runnable; exit 3 with the traceback if that fails."""
    runner = load_runner(args.target, args.runner_name, args.working_dir)
    worker = RunnerWorker(runner, args.worker_index)
    try:
        worker.load()
    except BaseException:  # noqa: BLE001 - report and exit fast so start-up fails visibly
        print(f"runner {runner.name!r} worker {args.worker_index}: the Runnable "
              f"{runner.runnable_class.__name__} failed to initialise:", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(EXIT_INIT_FAILED)
    return worker


async def connect_dependencies(runner: Runner) -> None:
    """Give the runners this one calls (a new-style service's ``depends``) their clients, from
    the addresses the supervisor passed in ``RUNNER_MAP_ENV``; those not there run here."""
    dependencies = getattr(runner, "dependencies", ())
    if not dependencies:
        return
    from ..server.api_worker import remote_runner_init

    init = remote_runner_init(json.loads(os.environ.get(RUNNER_MAP_ENV) or "{}"))
    for dependency in dependencies:
        started = init(dependency)
        if inspect.isawaitable(started):
            await started


async def _serve(worker: RunnerWorker, args: argparse.Namespace) -> int:
    runner = worker.runner
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # the supervisor names itself: it may have died before this process could ask getppid()
    parent = int(os.environ.get(PARENT_PID_ENV) or os.getppid())

    async def watch_parent() -> None:  # never outlive the supervisor
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        logger.warning("runner %s worker %d: parent exited; stopping", runner.name,
                       args.worker_index)
        stop.set()

    watcher = loop.create_task(watch_parent())
    await connect_dependencies(runner)
    try:
        tcp = (args.host, args.port) if args.port is not None else None
        await worker.serve(args.socket, stop, drain_s=args.drain_s, tcp=tcp)
    finally:
        watcher.cancel()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bentolite.runner.worker")
    parser.add_argument("--target", required=True, help="MODULE:ATTR of a Service or Runner")
    parser.add_argument("--runner-name", required=True)
    parser.add_argument("--socket", help="Unix socket path to serve on")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (with --port)")
    parser.add_argument("--port", type=int, help="also serve HTTP on this TCP port "
                        "(needs runners.auth_token)")
    parser.add_argument("--worker-index", type=int, default=0)
    parser.add_argument("--working-dir", default=os.getcwd())
    parser.add_argument("--drain-s", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.socket is None and args.port is None:
        parser.error("give --socket PATH and/or --port PORT")
    tune_allocator()
    sys.path.insert(0, os.path.abspath(args.working_dir))
    configure_logging(f"%(asctime)s %(levelname)s [runner:{args.runner_name}:{args.worker_index}] "
                      "%(message)s")
    started = time.monotonic()
    # The loop thread (frames, pickling) and the model thread share the GIL; a short switch
    # interval hands it back to the model sooner after each numpy call (measured: about +40%
    # rows/s at concurrency 64 in bench/runner_batching.py on 2 busy cores).
    sys.setswitchinterval(float(os.environ.get("BENTOLITE_WORKER_SWITCH_INTERVAL_S", "0.0005")))
    worker = _load(args)  # outside any event loop, like a plain import of the service
    from ..config import get_config

    tracing.setup(get_config().tracing, service_name=args.runner_name,
                  instance_id=args.worker_index)
    try:
        import uvloop
    except ImportError:
        code = asyncio.run(_serve(worker, args))
    else:
        code = uvloop.run(_serve(worker, args))
    logger.info("exiting after %.1f s", time.monotonic() - started)
    sys.exit(code)


if __name__ == "__main__":
    main()
