"""Client handle: calls a runner's worker processes over their Unix sockets (framed protocol).

Each worker gets one multiplexed connection, opened lazily and re-opened after the worker
restarts. Calls go to the worker with the fewest outstanding requests.

Calls of a batchable method with one numpy array, made in the same event-loop turn, are
coalesced: their arrays travel as one call (joined along batch_dim) and its result is split
back into each caller's rows, so 64 concurrent requests cost the hop one frame, not 64.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from .. import tracing
from ..exceptions import BentoMLException, GatewayTimeout, ServiceUnavailable, StateException
from .container import (
    array_layout, concat_batches, decode_payload, encode_payload, join_batches,
    single_array_rows, split_batch,
)
from .handle import RunnerHandle, on_event_loop
from .protocol import (
    CALL, CANCEL, CHUNK, RESULT, Frame, FrameProtocol, error_from_meta, pack_frame, ping_worker,
    socket_path,
)

if TYPE_CHECKING:  # pragma: no cover
    from .runner import Runner, RunnerMethod

__all__ = ["RemoteRunnerHandle", "HttpRunnerHandle", "handle_class_for"]


class _Connection(FrameProtocol):
    def __init__(self, label: str) -> None:
        super().__init__(self._on_frame)
        self.label = label
        self.pending: dict[int, asyncio.Future[Frame]] = {}
        #: streamed calls: request id -> the queue their CHUNK/RESULT/ERROR frames go to
        self.streams: dict[int, asyncio.Queue[Frame | BaseException]] = {}
        #: coalesced calls: request id -> what takes their partial results (CHUNK frames)
        self.partials: dict[int, Callable[[Frame], None]] = {}
        self.closed = False
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)

    def _on_frame(self, frame: Frame) -> None:
        if frame.kind == CHUNK and self.partials:
            on_chunk = self.partials.get(frame.request_id)
            if on_chunk is not None:
                on_chunk(frame)
                return
        if self.streams:
            queue = self.streams.get(frame.request_id)
            if queue is not None:
                queue.put_nowait(frame)
                return
        fut = self.pending.pop(frame.request_id, None)
        if fut is not None and not fut.done():
            fut.set_result(frame)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.closed = True
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(self.lost_error())
        streams, self.streams = self.streams, {}
        for queue in streams.values():
            queue.put_nowait(self.lost_error())

    def lost_error(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"{self.label} disconnected before answering (the worker exited or was "
            "restarted); retry the request")


class _Worker:
    __slots__ = ("address", "index", "conn", "connecting", "waiting")

    def __init__(self, address: str, index: int) -> None:
        self.address = address
        self.index = index
        self.conn: _Connection | None = None
        self.connecting: asyncio.Future[_Connection] | None = None
        self.waiting = 0  # calls waiting for this worker's connection to open

    @property
    def outstanding(self) -> int:
        conn = self.conn
        pending = len(conn.pending) + len(conn.streams) if conn is not None and not conn.closed else 0
        return pending + self.waiting


def _outstanding(worker: _Worker) -> int:
    return worker.outstanding


def _time_out(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(asyncio.TimeoutError())


async def _open(address: str, label: str) -> _Connection:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_unix_connection(lambda: _Connection(label), socket_path(address))
    return conn


class _Group:
    """Single-array calls to one method coalesced in one loop turn: one CALL on the wire.

    The worker may split it by rows to fill a batch: the first rows' result then comes in a
    CHUNK frame (meta ``n``: its rows) before the RESULT of the rest. Each caller gets its
    result as soon as all its rows have come back.
    """

    __slots__ = ("method", "arrays", "sizes", "callers", "rows", "conn", "rid", "timer",
                 "delivered", "next", "carry")

    def __init__(self, method: RunnerMethod) -> None:
        self.method = method
        self.arrays: list[Any] = []
        self.sizes: list[int] = []
        self.callers: list[asyncio.Future[Any]] = []
        self.rows = 0
        self.conn: _Connection | None = None
        self.rid = 0
        self.timer: asyncio.TimerHandle | None = None
        self.delivered = 0  # rows whose results came back
        self.next = 0  # the first caller not answered yet
        self.carry: tuple[Any, int] | None = None  # that caller's rows so far, and how many

    def add(self, loop: asyncio.AbstractEventLoop, array: Any, rows: int) -> None:
        self.arrays.append(array)
        self.sizes.append(rows)
        self.callers.append(loop.create_future())
        self.rows += rows

    def sent(self, conn: _Connection, rid: int, timer: asyncio.TimerHandle) -> None:
        self.conn, self.rid, self.timer = conn, rid, timer

    def deliver(self, result: Any, rows: int) -> None:
        """Answer the callers whose rows ``result`` (the next ``rows`` rows) completes."""
        method = self.method
        dim = method.config.batch_dim[1]
        pieces: list[int] = []
        carried = self.carry[1] if self.carry is not None else 0
        left, i = rows, self.next
        while left > 0 and i < len(self.sizes):
            take = min(self.sizes[i] - carried, left)
            pieces.append(take)
            left -= take
            carried = 0
            i += 1
        if left or not pieces:
            raise BentoMLException(
                f"runner {method.runner.name!r} method {method.name!r} sent {rows} rows "
                f"for callers waiting on {self.rows} in all")
        parts = [result] if len(pieces) == 1 else split_batch(result, pieces, dim, method.name)
        self.delivered += rows
        for part, size in zip(parts, pieces):
            if self.carry is not None:
                part = join_batches([self.carry[0], part], dim)
                size += self.carry[1]
                self.carry = None
            if size < self.sizes[self.next]:  # the rest of its rows come in the next part
                self.carry = (part, size)
                return
            caller = self.callers[self.next]
            self.next += 1
            if not caller.done():
                caller.set_result(part)

    def on_chunk(self, frame: Frame) -> None:
        try:
            self.deliver(decode_payload(frame.buffers), int(frame.meta["n"]))
        except Exception as e:  # noqa: BLE001 - every caller not yet answered gets it
            self.fail(e)

    def fail(self, error: BaseException) -> None:
        for caller in self.callers:
            if not caller.done():
                caller.set_exception(error)

    def abandoned(self) -> None:
        """A caller was cancelled: once all were, the call is cancelled on the worker too."""
        if self.conn is None or not all(c.done() for c in self.callers):
            return
        if self.conn.pending.pop(self.rid, None) is not None:
            self.conn.partials.pop(self.rid, None)
            self.timer.cancel()  # type: ignore[union-attr]
            self.conn.send(CANCEL, self.rid)


class RemoteRunnerHandle(RunnerHandle):
    """Calls runner workers at ``addresses`` (Unix socket paths).

    Bound to the event loop running when it is created (the API worker's loop); created with
    no loop running, it starts a private loop thread. Sync ``run`` works from any thread
    other than the loop's own.
    """

    #: whether single-array calls to a batchable method made in one loop turn travel as one
    COALESCE = True

    def __init__(self, runner: Runner, addresses: list[str], *,
                 timeout_s: float | None = None) -> None:
        self._runner = runner
        self._workers = [_Worker(a, i) for i, a in enumerate(addresses)]
        self._timeout_s = float(timeout_s if timeout_s is not None
                                else runner.config.traffic.timeout)
        #: calls being coalesced this loop turn: (method, dtype, other dims) -> their group
        self._groups: dict[tuple[Any, ...], _Group] = {}
        self._flush_scheduled = False
        self._thread: threading.Thread | None = None
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name=f"runner-client-{runner.name}", daemon=True)
            self._thread.start()

    # --- calls ----------------------------------------------------------------------

    async def _connection(self, worker: _Worker) -> _Connection:
        if worker.conn is not None and not worker.conn.closed:
            return worker.conn
        if worker.connecting is None:
            label = f"runner {self._runner.name!r} worker {worker.index}"
            worker.connecting = asyncio.ensure_future(_open(worker.address, label))
        worker.waiting += 1
        try:
            worker.conn = await asyncio.shield(worker.connecting)
        finally:
            worker.waiting -= 1
            if worker.connecting is not None and worker.connecting.done():
                worker.connecting = None
        return worker.conn

    async def _pick(self) -> _Connection:
        errors = []
        for worker in sorted(self._workers, key=lambda w: w.outstanding):
            try:
                return await self._connection(worker)
            except OSError as e:
                errors.append(f"worker {worker.index}: {e.strerror or e}")
        raise ServiceUnavailable(
            f"runner {self._runner.name!r} has no reachable worker ({'; '.join(errors)}); "
            "it may be restarting, retry shortly")

    def _open_least_busy(self) -> _Connection | None:
        """``_pick``'s choice without a coroutine, when that worker's connection is open."""
        workers = self._workers
        worker = workers[0] if len(workers) == 1 else min(workers, key=_outstanding)
        conn = worker.conn
        return conn if conn is not None and not conn.closed else None

    def _start(self, conn: _Connection, method_name: str, args: tuple[Any, ...],
               kwargs: dict[str, Any], trace: dict[str, str] | None = None,
               on_chunk: Callable[[Frame], None] | None = None
               ) -> tuple[int, asyncio.Future[Frame]]:
        """Send one CALL frame on ``conn``: its request id and the future of its reply
        (its last frame; ``on_chunk`` takes partial results before it)."""
        buffers = encode_payload((args, kwargs))  # unpicklable arguments fail here, not later
        rid = conn.next_id()
        fut: asyncio.Future[Frame] = self._loop.create_future()
        meta: dict[str, Any] = {"m": method_name}
        if trace:
            meta["trace"] = trace
        if on_chunk is not None:
            meta["p"] = 1
            conn.partials[rid] = on_chunk
        conn.pending[rid] = fut
        try:
            conn.send(CALL, rid, meta, buffers)
        except BaseException:  # e.g. past the frame limit: nothing was sent, nothing waits
            conn.pending.pop(rid, None)
            conn.partials.pop(rid, None)
            raise
        return rid, fut

    def _timeout_error(self, method_name: str) -> GatewayTimeout:
        name = self._runner.name
        return GatewayTimeout(
            f"runner {name!r} did not answer {method_name} within {self._timeout_s:g} s; "
            f"raise runners.traffic.timeout (or runners.{name}.traffic.timeout)")

    async def call(self, method_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                   trace: dict[str, str] | None = None) -> Any:
        """Call ``method_name`` on a worker; ``trace`` is an optional W3C trace-context dict."""
        conn = self._open_least_busy() or await self._pick()
        if conn.closed:  # its worker died while we connected: nothing would ever answer
            raise conn.lost_error()
        rid, fut = self._start(conn, method_name, args, kwargs, trace)
        # a bare timer, not asyncio.wait_for: that costs a second future and callbacks per call
        timer = self._loop.call_later(self._timeout_s, _time_out, fut)
        try:
            frame = await fut
        except asyncio.TimeoutError:
            conn.pending.pop(rid, None)
            conn.send(CANCEL, rid)
            raise self._timeout_error(method_name) from None
        except asyncio.CancelledError:
            if conn.pending.pop(rid, None) is not None:
                conn.send(CANCEL, rid)
            raise
        finally:
            timer.cancel()
        if frame.kind == RESULT:
            return decode_payload(frame.buffers)
        raise error_from_meta(frame.meta, self._runner.name)

    # --- coalescing -----------------------------------------------------------------

    def _coalesce(self, method: RunnerMethod, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> _Group | None:
        """Join this call to the loop turn's group for its method and array layout; None when
        the call is not one numpy array to a batchable method (it goes on its own)."""
        if not method.config.batchable or not self.COALESCE:
            return None
        dim = method.config.batch_dim[0]
        rows = single_array_rows(args, kwargs, dim)
        if rows is None:
            return None
        array = args[0]
        key = (method.name, *array_layout(array, dim))
        group = self._groups.get(key)
        if group is None or group.rows + rows > method.max_batch_size:
            if group is not None:  # full: it goes now, a new group takes this call
                self._send_group(self._groups.pop(key))
            group = self._groups[key] = _Group(method)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush_groups)
        group.add(self._loop, array, rows)
        return group

    def _flush_groups(self) -> None:
        self._flush_scheduled = False
        groups, self._groups = self._groups, {}
        for group in groups.values():
            self._send_group(group)

    def _send_group(self, group: _Group, conn: _Connection | None = None) -> None:
        if all(caller.cancelled() for caller in group.callers):
            return
        conn = conn or self._open_least_busy()
        if conn is None:  # no open connection yet: open one, then send on it
            asyncio.ensure_future(self._send_group_when_connected(group))
            return
        dim = group.method.config.batch_dim[0]
        arrays = group.arrays
        try:
            joined = arrays[0] if len(arrays) == 1 else concat_batches(arrays, dim)
            group.arrays = []  # the joined copy is what travels
            rid, fut = self._start(conn, group.method.name, (joined,), {},
                                   on_chunk=group.on_chunk)
        except Exception as e:  # noqa: BLE001 - e.g. past the frame limit: every caller gets it
            group.fail(e)
            return
        timer = self._loop.call_later(self._timeout_s, _time_out, fut)
        group.sent(conn, rid, timer)
        fut.add_done_callback(functools.partial(self._group_done, group))

    async def _send_group_when_connected(self, group: _Group) -> None:
        try:
            conn = await self._pick()
            if conn.closed:
                raise conn.lost_error()
        except BaseException as e:  # noqa: BLE001 - every caller gets the error
            group.fail(e)
            return
        self._send_group(group, conn)

    def _group_done(self, group: _Group, fut: asyncio.Future[Frame]) -> None:
        group.timer.cancel()  # type: ignore[union-attr]
        conn = group.conn
        conn.pending.pop(group.rid, None)  # type: ignore[union-attr]
        conn.partials.pop(group.rid, None)  # type: ignore[union-attr]
        try:
            frame = fut.result()
            if frame.kind != RESULT:
                raise error_from_meta(frame.meta, self._runner.name)
            group.deliver(decode_payload(frame.buffers), group.rows - group.delivered)
        except asyncio.TimeoutError:
            conn.send(CANCEL, group.rid)  # type: ignore[union-attr]
            group.fail(self._timeout_error(group.method.name))
        except BaseException as e:  # noqa: BLE001 - every caller not yet answered gets it
            group.fail(e)

    async def async_run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                               kwargs: dict[str, Any]) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - async_run always runs in a loop
            running = None
        if running is self._loop and not tracing.ACTIVE:
            group = self._coalesce(method, args, kwargs)
            if group is not None:
                caller = group.callers[-1]
                try:
                    return await caller
                except asyncio.CancelledError:
                    group.abandoned()
                    raise
        coro = self.call(method.name, args, kwargs,
                         tracing.outgoing_trace() if tracing.ACTIVE else None)
        if running is self._loop:
            return await coro
        self._check_loop(coro)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def async_stream_method(self, method: RunnerMethod, args: tuple[Any, ...],
                                  kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        if asyncio.get_running_loop() is not self._loop:
            raise StateException(
                f"{self._runner.name}.{method.name}.async_stream() must run on the event loop "
                "that serves requests (the one the runner client was created on)")
        name = self._runner.name
        conn = self._open_least_busy() or await self._pick()
        if conn.closed:
            raise conn.lost_error()
        buffers = encode_payload((args, kwargs))
        rid = conn.next_id()
        meta: dict[str, Any] = {"m": method.name, "stream": 1}
        trace = tracing.outgoing_trace() if tracing.ACTIVE else None
        if trace:
            meta["trace"] = trace
        conn.send(CALL, rid, meta, buffers)
        queue: asyncio.Queue[Frame | BaseException] = asyncio.Queue()
        conn.streams[rid] = queue
        ended = False
        try:
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), self._timeout_s)
                except asyncio.TimeoutError:
                    raise GatewayTimeout(
                        f"runner {name!r} sent nothing from {method.name} for "
                        f"{self._timeout_s:g} s; raise runners.traffic.timeout (or "
                        f"runners.{name}.traffic.timeout)") from None
                if isinstance(frame, BaseException):
                    ended = True
                    raise frame
                if frame.kind == CHUNK:
                    yield decode_payload(frame.buffers)
                    continue
                ended = True
                if frame.kind == RESULT:
                    return
                raise error_from_meta(frame.meta, name)
        finally:
            conn.streams.pop(rid, None)
            if not ended and not conn.closed:  # the caller stopped early: stop the generator
                conn.send(CANCEL, rid)

    def run_method(self, method: RunnerMethod, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        if on_event_loop():
            raise StateException(
                f"{self._runner.name}.{method.name}.run() was called inside a running event "
                f"loop, where it would block it; use `await runner.async_run(...)` (or "
                f"`await {self._runner.name}.{method.name}.async_run(...)`) instead")
        coro = self.call(method.name, args, kwargs,
                         tracing.outgoing_trace() if tracing.ACTIVE else None)
        self._check_loop(coro)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _check_loop(self, coro: Any) -> None:
        if self._loop.is_closed() or not self._loop.is_running():
            coro.close()
            raise StateException(
                f"runner {self._runner.name!r}: the event loop its client was created on is "
                "no longer running; call init_client() again from the loop that serves requests")

    async def is_ready(self, timeout: float) -> bool:
        async def probe() -> bool:
            results = await asyncio.gather(
                *(ping_worker(w.address, timeout) for w in self._workers))
            return any(results)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover
            running = None
        if running is self._loop or self._thread is None:
            return await probe()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(probe(), self._loop))

    async def aclose(self) -> None:
        """Close every connection (on the handle's loop) and let the transports finish."""
        for worker in self._workers:
            conn, worker.conn = worker.conn, None
            if conn is not None and conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0)  # transports close in a callback of the next loop iteration

    def close(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop.is_closed():
            return
        if running is self._loop:
            running.create_task(self.aclose())
        elif self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self.aclose(), self._loop)
            try:
                future.result(timeout=5)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        else:
            self._loop.run_until_complete(self.aclose())
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._loop.close()


class HttpRunnerHandle(RemoteRunnerHandle):
    """Calls runner servers over HTTP (``tcp://host:port`` addresses, split deployments).

    Sends the shared secret ``runners.auth_token`` as ``Authorization: Bearer <token>``.
    """

    COALESCE = False  # one HTTP request per call

    def __init__(self, runner: Runner, addresses: list[str], *,
                 timeout_s: float | None = None) -> None:
        super().__init__(runner, addresses, timeout_s=timeout_s)
        self._urls = [_http_url(a) for a in addresses]
        self._outstanding = [0] * len(addresses)
        self._session: Any = None
        token = runner.config.auth_token
        self._headers = {"Content-Type": "application/vnd.bentolite.frame"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def async_stream_method(self, method: RunnerMethod, args: tuple[Any, ...],
                            kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        raise BentoMLException(
            f"{self._runner.name}.{method.name}.async_stream(): streaming is not supported "
            "through runner servers (tcp://); run this runner's workers with the API server")

    def _client(self) -> Any:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout_s))
        return self._session

    async def call(self, method_name: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                   trace: dict[str, str] | None = None) -> Any:
        import aiohttp

        from .protocol import parse_frame

        index = min(range(len(self._urls)), key=self._outstanding.__getitem__)
        meta: dict[str, Any] = {"m": method_name}
        if trace:
            meta["trace"] = trace
        body = b"".join(bytes(p) for p in pack_frame(CALL, 1, meta,
                                                      encode_payload((args, kwargs))))
        name = self._runner.name
        self._outstanding[index] += 1
        try:
            async with self._client().post(f"{self._urls[index]}/call/{method_name}",
                                           data=body, headers=self._headers) as response:
                data = bytearray(await response.read())
                status = response.status
        except asyncio.TimeoutError:
            raise GatewayTimeout(
                f"runner {name!r} did not answer {method_name} within {self._timeout_s:g} s; "
                f"raise runners.traffic.timeout (or runners.{name}.traffic.timeout)") from None
        except aiohttp.ClientError as e:
            raise ServiceUnavailable(
                f"runner {name!r} server {self._urls[index]} is unreachable: {e}") from None
        finally:
            self._outstanding[index] -= 1
        if status == 401:
            from ..exceptions import Unauthorized

            raise Unauthorized(
                f"runner {name!r} server refused the call: missing or wrong auth token "
                f"(set the same runners.auth_token on both sides)")
        frame = parse_frame(data)
        if frame.kind == RESULT:
            return decode_payload(frame.buffers)
        raise error_from_meta(frame.meta, name)

    async def is_ready(self, timeout: float) -> bool:
        async def probe() -> bool:
            import aiohttp

            for url in self._urls:
                try:
                    async with self._client().get(
                            f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                        if r.status == 200:
                            return True
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    continue
            return False

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover
            running = None
        if running is self._loop:
            return await probe()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(probe(), self._loop))

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


def _http_url(address: str) -> str:
    for prefix in ("tcp://", "http://"):
        if address.startswith(prefix):
            return "http://" + address[len(prefix):].rstrip("/")
    raise ValueError(f"runner server address {address!r} must look like tcp://host:port")


def handle_class_for(addresses: list[str]) -> type[RemoteRunnerHandle]:
    """HTTP for ``tcp://``/``http://`` addresses, the framed Unix-socket protocol otherwise."""
    remote = [a.startswith(("tcp://", "http://")) for a in addresses]
    if any(remote) and not all(remote):
        raise ValueError(f"runner addresses mix TCP and Unix sockets: {addresses}")
    return HttpRunnerHandle if all(remote) else RemoteRunnerHandle
