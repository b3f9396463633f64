"""Runner faults with real worker processes (RunnerWorkerGroup + init_client).

Complements tests/runner/test_worker.py (one crash, one timeout, one withdrawn call) with:
repeated SIGKILL under load (restarts with growing backoff, only calls in flight fail, no call
hangs), a raising method that leaves its worker alive, a hang bounded by the configured
``runners.traffic.timeout``, and cancelled batched calls that leave the queue cleanly.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import bentolite
from bentolite.config import load_config
from bentolite.exceptions import GatewayTimeout, RemoteException, ServiceUnavailable
from bentolite.runner.process import RunnerWorkerGroup
from bentolite.runner.protocol import ping_worker

from tests.runner import runner_targets as targets

__all__: list[str] = []

TARGET = "tests.runner.runner_targets:svc"
ROOT = str(Path(__file__).resolve().parents[2])
CALL_BOUND_S = 30.0  # a call taking longer than this is a hang
LOAD_CONCURRENCY = 4
KILLS = 4


@pytest.fixture(autouse=True)
def default_config() -> Iterator[None]:
    load_config(None, "")
    yield
    load_config(None, "")


def group(runner: bentolite.Runner, tmp_path: Path, **kw: Any) -> RunnerWorkerGroup:
    kw.setdefault("worker_count", 1)
    return RunnerWorkerGroup(runner, TARGET, tmp_path / "run", working_dir=ROOT, **kw)


async def wait_restarted(workers: RunnerWorkerGroup, index: int, old_pid: int) -> None:
    for _ in range(400):
        proc = workers.processes[index]
        if proc.running and proc.pid != old_pid and await ping_worker(workers.addresses[index], 0.5):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"worker {index} was not restarted:\n{workers.processes[index].output_tail()}")


def test_repeated_sigkill_under_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = targets.row_runner
    calls: list[tuple[float, float, BaseException | None]] = []  # (start, end, error)
    outages: list[tuple[float, float]] = []  # (kill, replacement ready)

    async def load(stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            start = time.monotonic()
            error: BaseException | None = None
            try:
                out = await asyncio.wait_for(runner.nap.async_run(0.02), CALL_BOUND_S)
                assert out == 0.02
            except ServiceUnavailable as exc:
                error = exc
            calls.append((start, time.monotonic(), error))

    async def main() -> None:
        async with group(runner, tmp_path, worker_count=2, restart_backoff_s=0.1) as workers:
            runner.init_client(workers.addresses)
            stop = asyncio.Event()
            loaders = [asyncio.ensure_future(load(stop)) for _ in range(LOAD_CONCURRENCY)]
            try:
                for _ in range(KILLS):
                    done_before = len(calls)
                    while len(calls) < done_before + 20:  # load is flowing to both workers
                        await asyncio.sleep(0.02)
                    pid = workers.processes[0].pid
                    assert pid is not None
                    killed_at = time.monotonic()
                    os.kill(pid, signal.SIGKILL)  # our own child, by PID
                    await wait_restarted(workers, 0, pid)
                    outages.append((killed_at, time.monotonic()))
                done_before = len(calls)
                while len(calls) < done_before + 20:
                    await asyncio.sleep(0.02)
            finally:
                stop.set()
                try:
                    await asyncio.gather(*loaders)  # every loader ends: no call hung
                finally:
                    runner.destroy()  # even after a hung call: later tests reuse the runner
            assert workers.processes[0].restarts == KILLS
            assert workers.processes[1].restarts == 0
            # both workers serve again after the last restart
            assert [await ping_worker(a, 2.0) for a in workers.addresses] == [True, True]

    asyncio.run(main())

    failures = [(s, e, err) for s, e, err in calls if err is not None]
    assert failures, "no call was in flight at any kill: the test proves nothing"
    for start, end, error in failures:
        # only calls in flight on the killed worker fail, with the runner named
        assert any(start <= ready and end >= killed for killed, ready in outages), (start, end, error)
        assert "'rows'" in str(error) and "disconnected before answering" in str(error), error
    assert len(failures) <= KILLS * LOAD_CONCURRENCY
    assert sum(err is None for _, _, err in calls) > 5 * len(failures)
    # restarted with backoff that doubles on each consecutive crash
    delays = [float(d) for d in re.findall(r"restarting runner:rows:0 in ([0-9.]+) s", caplog.text)]
    assert delays == [0.1, 0.2, 0.4, 0.8], caplog.text[-3000:]
    assert caplog.text.count("signal SIGKILL") == KILLS


def test_raising_method_gives_its_error_and_the_worker_lives_on(tmp_path: Path) -> None:
    runner = targets.row_runner

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client(workers.addresses)
            try:
                pid = workers.processes[0].pid
                for _ in range(3):
                    with pytest.raises(RemoteException) as info:
                        await runner.fail.async_run("value")
                    message = str(info.value)
                    assert message == "runner 'rows' raised ValueError: x must be positive"
                    assert "Traceback" not in message
                    assert info.value.error_code == 500
                assert (await runner.single.async_run(7)) ["pid"] == pid
                assert workers.processes[0].restarts == 0 and workers.processes[0].running
                assert "Traceback" in workers.processes[0].output_tail()  # details in the worker log
            finally:
                runner.destroy()

    asyncio.run(main())


def test_hanging_method_times_out_after_the_configured_runner_timeout(tmp_path: Path) -> None:
    load_config(None, "runners.traffic.timeout=0.5")
    runner = targets.row_runner
    assert runner.config.traffic.timeout == 0.5

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client(workers.addresses)  # the timeout comes from the configuration
            try:
                with pytest.raises(GatewayTimeout) as info:
                    await asyncio.wait_for(runner.nap.async_run(2.0), CALL_BOUND_S)
                assert "within 0.5 s" in info.value.message
                assert "runners.traffic.timeout" in info.value.message
                assert info.value.error_code == 504
            finally:
                runner.destroy()
            # the worker finishes the hung call, then serves again
            load_config(None, "")
            runner.init_client(workers.addresses)
            try:
                out = await asyncio.wait_for(runner.nap.async_run(0.0), CALL_BOUND_S)
                assert out == 0.0
                assert workers.processes[0].restarts == 0
            finally:
                runner.destroy()

    asyncio.run(main())


def test_cancelled_batched_calls_leave_the_queue(tmp_path: Path) -> None:
    runner = targets.row_runner

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client(workers.addresses)
            try:
                # hold the model thread, queue batched calls behind it, withdraw half of them
                busy = asyncio.ensure_future(runner.nap.async_run(0.5))
                await asyncio.sleep(0.05)
                # one loop turn apart, so they are not coalesced into one call (a coalesced
                # call runs all its rows unless every one of its callers is cancelled)
                queued = {}
                for i in range(100, 110):
                    queued[i] = asyncio.ensure_future(
                        runner.predict.async_run(np.full((1, 1), float(i))))
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0.05)
                withdrawn = [i for i in queued if i % 2]
                for i in withdrawn:
                    queued[i].cancel()
                assert await busy == 0.5
                for i, fut in queued.items():
                    if i in withdrawn:
                        with pytest.raises(asyncio.CancelledError):
                            await fut
                    else:
                        out = await asyncio.wait_for(fut, CALL_BOUND_S)
                        assert out[0, 0] == i
                # later calls run, after the queue drained: the withdrawn rows never ran
                out = await runner.predict.async_run(np.full((2, 1), 7.0))
                assert out.shape == (2, 2)
                seen = (await runner.history.async_run())["seen"]
                assert sorted(v for v in seen if v >= 100) == [float(i) for i in queued if i not in withdrawn]
                assert seen[-2:] == [7.0, 7.0]
                assert workers.processes[0].restarts == 0
            finally:
                runner.destroy()

    asyncio.run(main())


def test_a_worker_that_dies_while_we_connect_fails_the_call_instead_of_hanging(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault injection at the socket: every connection dies (its close fully processed) just
    # before the client gets it, as when a worker is killed right after accepting. Such a
    # call used to be registered on the dead connection and wait for the runner timeout.
    from bentolite.runner import remote

    runner = targets.row_runner
    path = str(tmp_path / "dying.sock")
    real_open = remote._open

    async def open_then_die(address: str, label: str) -> Any:
        conn = await real_open(address, label)
        conn.transport.abort()
        while not conn.closed:  # let connection_lost run before the caller sees it
            await asyncio.sleep(0)
        return conn

    async def main() -> None:
        server = await asyncio.start_unix_server(lambda _, writer: writer.close(), path)
        monkeypatch.setattr(remote, "_open", open_then_die)
        runner.init_client([path], timeout_s=30)
        try:
            with pytest.raises(ServiceUnavailable, match="disconnected before answering"):
                await asyncio.wait_for(runner.single.async_run(1), 5)
            with pytest.raises(ServiceUnavailable, match="disconnected before answering"):
                await asyncio.wait_for(anext(aiter(runner.words.async_stream("a"))), 5)
        finally:
            runner.destroy()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
