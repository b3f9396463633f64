"""Coalesced runner calls over a real worker: single-array calls to a batchable method made in
one event-loop turn travel as one call, are split by rows to fill batches, and each caller
still gets exactly its own rows, its own errors and its own cancellation."""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bentolite.exceptions import RemoteException, ServiceUnavailable
from bentolite.runner import protocol
from bentolite.runner.remote import RemoteRunnerHandle

from tests.runner import runner_targets as targets
from tests.runner.test_worker import group


def run_with_worker(tmp_path: Path, body: Any) -> None:
    runner = targets.small_runner  # max_batch_size=5

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client(workers.addresses)
            try:
                assert await runner.runner_handle_is_ready(1.0)
                await body(runner)
            finally:
                runner.destroy()

    asyncio.run(main())


def rows_of(caller: int, n: int) -> np.ndarray:
    return np.full((n, 1), float(caller))


def test_each_caller_gets_its_own_rows_and_calls_split_to_fill_batches(tmp_path: Path) -> None:
    async def body(runner: Any) -> None:
        sizes = [3 + i % 2 for i in range(60)]  # 3 or 4 rows: no two fit one batch of 5
        results = await asyncio.gather(
            *(runner.predict.async_run(rows_of(i, n)) for i, n in enumerate(sizes)))
        for i, (n, out) in enumerate(zip(sizes, results)):
            assert out.shape == (n, 2) and (out[:, 0] == i).all()
        history = await runner.history.async_run()
        batches = [b for b in history["batch_sizes"] if b > 0]
        assert max(batches) <= 5 and sum(batches) == sum(sizes)
        assert history["seen"] == [i for i, n in enumerate(sizes) for _ in range(n)]
        # a caller whose rows ran in two batches: coalesced calls were split to fill them
        ends = np.cumsum(batches)[:-1]
        seen = history["seen"]
        assert any(seen[end - 1] == seen[end] for end in ends)

    run_with_worker(tmp_path, body)


def test_a_bad_call_fails_alone_among_coalesced_calls(tmp_path: Path) -> None:
    async def body(runner: Any) -> None:
        calls = [runner.predict.async_run(rows_of(i, 2)) for i in range(10)]
        calls.insert(4, runner.predict.async_run(np.ones(3)))  # 1-D: the model cannot take it
        results = await asyncio.gather(*calls, return_exceptions=True)
        bad = results.pop(4)
        assert isinstance(bad, RemoteException) and bad.remote_type == "IndexError"
        for i, out in enumerate(results):
            assert not isinstance(out, BaseException), out
            assert (out[:, 0] == i).all()

    run_with_worker(tmp_path, body)


def test_cancelled_callers_leave_the_others_alone_and_a_fully_cancelled_call_never_runs(
        tmp_path: Path) -> None:
    async def body(runner: Any) -> None:
        tasks = [asyncio.ensure_future(runner.predict.async_run(rows_of(i, 1)))
                 for i in range(20)]
        await asyncio.sleep(0)  # every task has joined this turn's group
        for i in range(0, 20, 4):
            tasks[i].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for i, out in enumerate(results):
            if i % 4 == 0:
                assert isinstance(out, asyncio.CancelledError)
            else:
                assert out[0, 0] == i

        # a coalesced call queued behind a busy model, all its callers cancelled: withdrawn
        busy = asyncio.ensure_future(runner.nap.async_run(0.4))
        await asyncio.sleep(0.1)
        doomed = [asyncio.ensure_future(runner.predict.async_run(rows_of(100 + i, 1)))
                  for i in range(4)]
        await asyncio.sleep(0.05)  # sent, and queued in the worker
        for task in doomed:
            task.cancel()
        await busy
        await asyncio.gather(*doomed, return_exceptions=True)
        assert (await runner.predict.async_run(rows_of(200, 1)))[0, 0] == 200
        seen = (await runner.history.async_run())["seen"]
        assert 200.0 in seen and not {100.0, 101.0, 102.0, 103.0} & set(seen)

    run_with_worker(tmp_path, body)


def test_coalesced_calls_too_big_for_a_frame_fail_every_caller(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(runner: Any) -> None:
        monkeypatch.setattr(protocol, "MAX_FRAME_BYTES", 4096)  # 600 rows of 8 bytes do not fit
        calls = [runner.predict.async_run(rows_of(i, 600)) for i in range(6)]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        assert all(isinstance(r, ValueError) and "frame limit" in str(r) for r in results), results
        monkeypatch.undo()
        out = await runner.predict.async_run(rows_of(7, 3))  # the next calls go through
        assert (out[:, 0] == 7).all()

    run_with_worker(tmp_path, body)


def test_nothing_is_left_behind_after_10000_coalesced_calls(tmp_path: Path) -> None:
    async def body(runner: Any) -> None:
        x = rows_of(7, 1)
        for _ in range(100):
            results = await asyncio.gather(*(runner.predict.async_run(x) for _ in range(100)))
            assert all(out[0, 0] == 7 for out in results)
        handle = runner._runner_handle
        assert isinstance(handle, RemoteRunnerHandle)
        assert handle._groups == {}
        for worker in handle._workers:
            conn = worker.conn
            assert conn is not None and not conn.closed
            assert conn.pending == {} and conn.partials == {} and conn.streams == {}
        batches = [b for b in (await runner.history.async_run())["batch_sizes"] if b > 0]
        assert sum(batches) == 10_000 and len(batches) < 10_000 / 4

    run_with_worker(tmp_path, body)


def test_a_worker_killed_mid_call_fails_every_caller_and_is_restarted(tmp_path: Path) -> None:
    runner = targets.small_runner

    async def main() -> None:
        async with group(runner, tmp_path, restart_backoff_s=0.05) as workers:
            runner.init_client(workers.addresses)
            try:
                assert await runner.runner_handle_is_ready(1.0)
                busy = asyncio.ensure_future(runner.nap.async_run(5.0))
                await asyncio.sleep(0.2)
                calls = [asyncio.ensure_future(runner.predict.async_run(rows_of(i, 1)))
                         for i in range(6)]
                await asyncio.sleep(0.1)  # sent, queued behind the nap
                first_pid = workers.processes[0].pid
                os.kill(first_pid, signal.SIGKILL)
                results = await asyncio.gather(busy, *calls, return_exceptions=True)
                for out in results:
                    assert isinstance(out, ServiceUnavailable), out
                for _ in range(200):
                    if workers.processes[0].pid != first_pid and await workers.is_ready(0.5):
                        break
                    await asyncio.sleep(0.05)
                out = await asyncio.gather(*(runner.predict.async_run(rows_of(i, 1))
                                             for i in range(6)))
                assert [o[0, 0] for o in out] == list(range(6))
            finally:
                runner.destroy()

    asyncio.run(main())


def test_a_first_coalesced_call_finds_the_reachable_worker(tmp_path: Path) -> None:
    """No connection open yet and the first worker unreachable: the group is sent on the
    connection that could be opened (it once waited forever for the unreachable one)."""
    runner = targets.small_runner

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client([str(tmp_path / "nobody.sock"), *workers.addresses])
            try:
                out = await asyncio.wait_for(asyncio.gather(
                    *(runner.predict.async_run(rows_of(i, 1)) for i in range(4))), 10)
                assert [o[0, 0] for o in out] == [0, 1, 2, 3]
            finally:
                runner.destroy()

    asyncio.run(main())
