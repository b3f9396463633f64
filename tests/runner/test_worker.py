"""Runner workers as real processes: batching over the socket, errors, limits, restarts."""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from blockbuster import blockbuster_ctx

import bentolite
from bentolite.exceptions import (
    BadInput, BentoMLException, GatewayTimeout, RemoteException, ServiceUnavailable, StateException,
)
from bentolite.runner.process import RunnerStartError, RunnerWorkerGroup, describe_exit

from tests.runner import runner_targets as targets

TARGET = "tests.runner.runner_targets:svc"
ROOT = str(Path(__file__).resolve().parents[2])


def group(runner: bentolite.Runner, tmp_path: Path, **kw: Any) -> RunnerWorkerGroup:
    kw.setdefault("worker_count", 1)
    return RunnerWorkerGroup(runner, TARGET, tmp_path / "run", working_dir=ROOT, **kw)


def batch_size_metrics(metrics_dir: Path, method: str) -> tuple[float, float]:
    """(sum, count) of bentoml_runner_adaptive_batch_size for ``method``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    total = count = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.labels.get("method_name") != method:
                continue
            if sample.name == "bentoml_runner_adaptive_batch_size_sum":
                total += sample.value
            elif sample.name == "bentoml_runner_adaptive_batch_size_count":
                count += sample.value
    return total, count


def test_batches_over_the_socket(tmp_path: Path) -> None:
    runner = targets.row_runner
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()

    async def main() -> None:
        async with group(runner, tmp_path,
                         extra_env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}) as workers:
            runner.init_client(workers.addresses)
            try:
                assert await runner.runner_handle_is_ready(1.0)
                # 200 concurrent calls of mixed sizes each get exactly their own rows back
                sizes = [1 + (i * 7) % 5 for i in range(200)]
                calls = [runner.predict.async_run(np.full((n, 1), float(i)))
                         for i, n in enumerate(sizes)]
                results = await asyncio.gather(*calls)
                for i, (n, out) in enumerate(zip(sizes, results)):
                    assert out.shape == (n, 2) and (out[:, 0] == i).all()
                history = await runner.history.async_run()
                assert max(history["batch_sizes"]) > 1
                assert max(history["batch_sizes"]) <= runner.predict.max_batch_size
                assert history["seen"] == [i for i, n in enumerate(sizes) for _ in range(n)]

                # at concurrency 1 every call runs alone
                before = len(history["batch_sizes"])
                for i in range(20):
                    await runner.predict.async_run(np.full((1, 1), float(i)))
                after = (await runner.history.async_run())["batch_sizes"]
                assert after[before:] == [1] * 20

                # multi-output batchable methods split element-wise
                pairs = await asyncio.gather(*(runner.pair.async_run([i, i]) for i in range(10)))
                assert [p[0] for p in pairs] == [[2 * i, 2 * i] for i in range(10)]

                # a non-batchable method never batches, even when called concurrently
                out = await asyncio.gather(*(runner.single.async_run(i) for i in range(30)))
                assert [o["x"] for o in out] == list(range(30))
                total, count = batch_size_metrics(metrics_dir, "single")
                assert count == 30 and total == 30
                total, count = batch_size_metrics(metrics_dir, "predict")
                assert total == sum(sizes) + 20 and count < 200 + 20

                # a wrong result length is reported with the method and the sizes
                with pytest.raises(BentoMLException) as info:
                    await runner.broken.async_run([1, 2, 3])
                assert "'broken'" in str(info.value) and "expected 3" in str(info.value)

                # errors cross back with their type and message
                with pytest.raises(BadInput) as bad:
                    await runner.fail.async_run("bad_input")
                assert bad.value.message == "field x must be positive" and bad.value.field == "x"
                with pytest.raises(RemoteException) as remote:
                    await runner.fail.async_run("value")
                assert remote.value.remote_type == "ValueError"
                assert "ValueError" in str(remote.value)
                assert "x must be positive" in str(remote.value)
                # a result that cannot travel back is the caller's error, not a hang
                with pytest.raises(RemoteException) as unsent:
                    await runner.fail.async_run("unpicklable")
                assert unsent.value.remote_type == "TypeError" and "pickle" in str(unsent.value)
                assert (await runner.single.async_run(7))["x"] == 7
                # arguments that cannot travel fail at once and leave no call waiting (a
                # phantom would count against its worker in the least-busy choice)
                for _ in range(3):
                    with pytest.raises(TypeError, match="pickle"):
                        await runner.single.async_run(threading.Lock())
                handle = runner._runner_handle
                assert sum(worker.outstanding for worker in handle._workers) == 0

                # sync run from a worker thread while the loop runs here
                assert (await asyncio.to_thread(runner.single.run, 5))["x"] == 5
                with pytest.raises(StateException, match="async_run"):
                    runner.single.run(1)

                # the worker got the strategy's environment
                names = ["OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "MKL_NUM_THREADS"]
                env = await runner.env.async_run(names)
                expected = runner.scheduled_worker_env_map[0]
                assert env == {n: expected[n] for n in names}

                # a plain script thread (no event loop) with its own client
                def script() -> Any:
                    other = bentolite.Runner(targets.RowModel, name="rows")
                    other.init_client(workers.addresses)
                    try:
                        return other.predict.run(np.ones((2, 1)))
                    finally:
                        other.destroy()

                assert (await asyncio.to_thread(script)).shape == (2, 2)
            finally:
                runner.destroy()

    asyncio.run(main())


def test_a_cold_first_call_sheds_nothing(tmp_path: Path) -> None:
    """Issue 13: 16 concurrent calls right after start, behind a 1 s first call (20 ms
    later), with max_latency_ms=500: every one succeeds."""
    runner = targets.cold_runner

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client(workers.addresses)
            try:
                results = await asyncio.gather(
                    *(runner.predict.async_run([i]) for i in range(16)), return_exceptions=True)
                assert results == [[i] for i in range(16)]
            finally:
                runner.destroy()

    asyncio.run(main())


def test_a_model_too_slow_for_its_deadline_gets_fast_503s(tmp_path: Path) -> None:
    """Every call takes 800 ms, the deadline is 500 ms: once the worker's cost model is
    trusted, the calls queued behind a running one fail at once (the model never runs them),
    naming every term; the one that found the model idle runs."""
    runner = targets.too_slow_runner

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client(workers.addresses)
            try:
                for i in range(4):  # the cold first call, then three warm ones: trusted
                    assert await runner.predict.async_run([i]) == [i]
                ran = await runner.calls_so_far.async_run()
                first = asyncio.ensure_future(runner.predict.async_run(["first"]))
                await asyncio.sleep(0.1)  # it has the model
                results = await asyncio.gather(
                    *(runner.predict.async_run([i]) for i in range(4)), return_exceptions=True)
                assert all(isinstance(r, ServiceUnavailable) for r in results), results
                assert not first.done()  # failed fast: before the running call ended
                assert await first == ["first"]
                message = results[0].message
                for term in ("max_latency_ms=500", "queued", "waiting for the model to free",
                             "estimated run 8", "> 500 ms", "runners.tooslow.batching"):
                    assert term in message, message
                assert await runner.calls_so_far.async_run() == ran + 1  # only "first" ran
            finally:
                runner.destroy()

    asyncio.run(main())


def test_withdrawn_calls_and_timeout(tmp_path: Path) -> None:
    runner = targets.slow_runner

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client(workers.addresses)
            try:
                # a caller that gives up leaves the worker's queue: its call never runs
                running = asyncio.ensure_future(runner.nap.async_run(0.2))
                await asyncio.sleep(0.02)
                withdrawn = asyncio.ensure_future(runner.nap.async_run(0.0))
                await asyncio.sleep(0.02)
                withdrawn.cancel()
                assert await running == 0.2
                history = await runner.history.async_run()
                assert history["batch_sizes"].count(-2) == 1
            finally:
                runner.destroy()
            runner.init_client(workers.addresses, timeout_s=0.05)
            try:
                with pytest.raises(GatewayTimeout) as timeout:
                    await runner.nap.async_run(0.3)
                assert "'slow'" in timeout.value.message
                assert "runners.traffic.timeout" in timeout.value.message
            finally:
                runner.destroy()

    asyncio.run(main())


def test_exit_descriptions() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9) == "signal SIGKILL"


def test_crashed_worker_fails_in_flight_calls_and_restarts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = targets.row_runner

    async def main() -> None:
        with blockbuster_ctx():  # supervision and calls never block the event loop
            await run()

    async def run() -> None:
        async with group(runner, tmp_path, restart_backoff_s=0.05) as workers:
            runner.init_client(workers.addresses)
            try:
                first_pid = workers.processes[0].pid
                with pytest.raises(ServiceUnavailable) as info:
                    await runner.fail.async_run("exit")
                assert "'rows'" in info.value.message
                assert info.value.error_code == 503
                for _ in range(200):
                    if workers.processes[0].pid != first_pid and await workers.is_ready(0.5):
                        break
                    await asyncio.sleep(0.05)
                assert workers.processes[0].restarts == 1
                assert workers.processes[0].last_returncode == 17
                assert "runner:rows:0" in caplog.text and "exit code 17" in caplog.text
                assert (await runner.single.async_run(1))["pid"] == workers.processes[0].pid
            finally:
                runner.destroy()
        assert not workers.processes[0].running

    asyncio.run(main())


def test_failing_runnable_init_fails_start_with_its_traceback(tmp_path: Path) -> None:
    async def main() -> None:
        workers = group(targets.broken_runner, tmp_path)
        with pytest.raises(RunnerStartError) as info:
            await workers.start()
        message = str(info.value)
        assert "exit code 3" in message and "Traceback" in message
        assert "model weights are missing: /nowhere/weights.bin" in message
        assert not any(p.running for p in workers.processes)

    asyncio.run(main())


def test_calls_spread_over_workers_with_their_own_env(tmp_path: Path) -> None:
    runner = targets.row_runner  # not multi-threaded: one worker per CPU, one thread each

    async def main() -> None:
        env_map = {i: {"BENTOLITE_TEST_WORKER": str(i)} for i in range(2)}
        async with group(runner, tmp_path, worker_count=2, env_map=env_map) as workers:
            assert len(workers.addresses) == 2
            runner.init_client(workers.addresses)
            try:
                out = await asyncio.gather(*(runner.nap.async_run(0.05) for _ in range(6)))
                assert out == [0.05] * 6
                pids = {(await runner.single.async_run(0))["pid"] for _ in range(1)}
                outs = await asyncio.gather(*(runner.single.async_run(i) for i in range(8)))
                pids |= {o["pid"] for o in outs}
                assert pids == {p.pid for p in workers.processes}
                envs = await asyncio.gather(
                    *(runner.env.async_run(["BENTOLITE_TEST_WORKER"]) for _ in range(8)))
                assert {e["BENTOLITE_TEST_WORKER"] for e in envs} == {"0", "1"}
            finally:
                runner.destroy()

    asyncio.run(main())


def test_calls_measured_under_a_millisecond_run_on_the_loop_even_when_queued(
        tmp_path: Path) -> None:
    """A thread hand-off costs more than such a call: once the cost model has three
    batches, short calls run on the worker's event loop thread, a burst of them too; a
    5 ms method's queued calls go to the model thread, so the loop stays free meanwhile."""
    async def burst(runner: bentolite.Runner) -> list[str]:
        async with group(runner, tmp_path / runner.name) as workers:
            runner.init_client(workers.addresses)
            try:
                for i in range(4):
                    await runner.single.async_run(i)
                outs = await asyncio.gather(*(runner.single.async_run(i) for i in range(30)))
                assert [out["x"] for out in outs] == list(range(30))
                return [out["thread"] for out in outs]
            finally:
                runner.destroy()

    assert asyncio.run(burst(targets.row_runner)) == ["MainThread"] * 30
    threads = asyncio.run(burst(targets.napping_runner))
    assert sum(name.startswith("runner-napping") for name in threads) >= 25, threads
