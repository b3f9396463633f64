"""runner.<method>.async_stream: generator methods streamed in-process and from a real worker."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bentolite.exceptions import RemoteException, StateException

from tests.runner import runner_targets as targets
from tests.runner.test_worker import group


async def _collect(stream: Any, limit: int | None = None) -> list[Any]:
    items = []
    async for item in stream:
        items.append(item)
        if limit is not None and len(items) == limit:
            break
    return items


async def _check_streams(runner: Any, remote: bool) -> None:
    words = await _collect(runner.words.async_stream("to be or not"))
    assert [w["word"] for w in words] == ["to", "be", "or", "not"]
    assert all(w["thread"].startswith("runner-rows") for w in words)  # the model's thread
    assert await _collect(runner.countdown.async_stream(3)) == [3, 2, 1]
    # an error mid-stream: the items before it arrive, then the error
    got: list[Any] = []
    error = RemoteException if remote else ValueError
    with pytest.raises(error, match="no word 2"):
        async for item in runner.words.async_stream("a b c d", fail_at=2):
            got.append(item["word"])
    assert got == ["a", "b"]
    # a caller that stops early closes the generator where it runs
    first = await _collect(runner.words.async_stream("x y z w v", delay_s=0.2), limit=1)
    assert [w["word"] for w in first] == ["x"]
    for _ in range(50):
        state = await runner.stream_state.async_run()
        if state["closed"]:
            break
        await asyncio.sleep(0.02)
    assert state["closed"] and len(state["streamed"]) < 5, state
    # other calls still work between and during streams
    stream = runner.words.async_stream("p q", delay_s=0.05)
    both = await asyncio.gather(_collect(stream), runner.single.async_run(7))
    assert [w["word"] for w in both[0]] == ["p", "q"] and both[1]["x"] == 7
    with pytest.raises((TypeError, RemoteException), match="not a generator"):
        await _collect(runner.single.async_stream(1))


def test_async_stream_in_process() -> None:
    runner = targets.row_runner
    runner.init_local(quiet=True)
    try:
        asyncio.run(_check_streams(runner, remote=False))
    finally:
        runner.destroy()


def test_async_stream_from_a_worker(tmp_path: Path) -> None:
    runner = targets.row_runner

    async def main() -> None:
        async with group(runner, tmp_path) as workers:
            runner.init_client(workers.addresses)
            try:
                await _check_streams(runner, remote=True)
                # from another event loop (a thread's): refused with the reason
                with pytest.raises(StateException, match="must run on the event loop"):
                    await asyncio.to_thread(asyncio.run, _collect(runner.words.async_stream("a")))
            finally:
                runner.destroy()

    asyncio.run(main())
