"""Large frame buffers through shared-memory rings: over a socket pair, then over real
runner workers (10,000 calls, a cancelled caller, a killed worker)."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bentolite.exceptions import ServiceUnavailable
from bentolite.runner import shm
from bentolite.runner.container import decode_payload, encode_payload
from bentolite.runner import protocol
from bentolite.runner.protocol import CALL, SHM, Frame, FrameProtocol
from bentolite.runner.remote import RemoteRunnerHandle

from tests.runner import runner_targets as targets
from tests.runner.test_worker import group

BIG = shm.MIN_BUFFER_BYTES  # the smallest buffer that goes through a ring


def ring_maps(pid: int | str = "self") -> int:
    """How many rings ``pid`` has mapped."""
    return Path(f"/proc/{pid}/maps").read_text().count("memfd:bentolite-frames")


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _pair(on_frame: Any) -> tuple[FrameProtocol, FrameProtocol]:
    loop = asyncio.get_running_loop()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    _, sender = await loop.connect_accepted_socket(lambda: FrameProtocol(lambda f: None), a)
    _, receiver = await loop.connect_accepted_socket(lambda: FrameProtocol(on_frame), b)
    return sender, receiver


def test_large_buffers_cross_through_the_ring_in_order_with_the_socket_as_fallback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MiB ring: the first large frame goes by socket while the ring is offered, then
    large buffers take the ring, wrapping around it many times; a burst that overfills it
    and a buffer bigger than the ring go by socket, and every frame arrives whole, in order,
    writable; in the end the receiver has consumed all that was written."""
    monkeypatch.setattr(shm, "RING_BYTES", 1 << 20)
    sizes = [BIG, 10, 300_000, 0, 2 << 20, *[150_000 + 4 * i for i in range(40)], BIG - 4]
    arrays = [np.arange(n // 4, dtype=np.float32) + i for i, n in enumerate(sizes)]

    async def main() -> tuple[list[Frame], FrameProtocol, list[bool]]:
        received: list[Frame] = []
        in_ring: list[bool] = []
        done = asyncio.get_running_loop().create_future()

        def on_frame(frame: Frame) -> None:
            in_ring.append("shm" in frame.meta)
            received.append(frame)
            if len(received) == len(arrays):
                done.set_result(None)

        sender, receiver = await _pair(on_frame)
        sender.send(CALL, 0, {"m": "first"}, encode_payload(arrays[0]))
        for _ in range(100):
            if sender.ring_stats()["state"] == "ready":
                break
            await asyncio.sleep(0.01)
        assert sender.ring_stats()["state"] == "ready" and receiver.ring_stats()["peer_ring"]
        meta = {"m": "shared"}  # one dict for every call, as callers reuse theirs
        for i, array in enumerate(arrays[1:], 1):
            sender.send(CALL, i, meta, encode_payload(array))
            if i % 7:  # every 7th frame is sent in the same burst as the next ones
                await asyncio.sleep(0)
        await asyncio.wait_for(done, 30)
        assert meta == {"m": "shared"}  # ring positions went into a copy
        assert all(f.meta["m"] == "shared" for f in received[1:])
        stats = sender.ring_stats()
        assert stats["written"] > 3 * (1 << 20)  # went round the ring, lap after lap
        assert stats["consumed"] == stats["written"]
        sender.transport.close()  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
        return received, sender, in_ring

    frames, sender, in_ring = asyncio.run(main())
    assert [f.request_id for f in frames] == list(range(len(arrays)))
    for frame, array in zip(frames, arrays):
        out = decode_payload(frame.buffers)
        assert np.array_equal(out, array)
        if out.size:
            out[0] = -1  # a private, writable copy
    assert not in_ring[0] and not in_ring[4]  # before the answer; bigger than the ring
    assert in_ring[2] and sum(in_ring) >= 30  # most large ones; some of a burst may not fit
    assert not in_ring[1] and not in_ring[-1]  # small buffers stay in the socket
    assert sender.ring_stats()["state"] == "off" and ring_maps() == 0  # both sides closed


def test_a_frame_past_the_limit_is_refused_before_it_touches_the_ring(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A frame still past the limit after the ring took what fits is refused; the buffers the
    ring took for it would stay there unread for good, and the ring would never free again."""
    monkeypatch.setattr(shm, "RING_BYTES", 1 << 20)

    async def main() -> None:
        got: list[Frame] = []
        sender, receiver = await _pair(got.append)
        sender.send(CALL, 0, None, encode_payload(np.ones(BIG, np.uint8)))  # offers the ring
        for _ in range(100):
            if sender.ring_stats()["state"] == "ready":
                break
            await asyncio.sleep(0.01)
        written = sender.ring_stats()["written"]
        with monkeypatch.context() as limit:
            limit.setattr(protocol, "MAX_FRAME_BYTES", 3 << 19)  # 1.5 MiB
            # two buffers the ring could take, one bigger than the ring itself
            parts = encode_payload([np.ones(BIG, np.uint8), np.ones(BIG, np.uint8),
                                    np.ones(2 << 20, np.uint8)])
            with pytest.raises(ValueError, match="frame limit"):
                sender.send(CALL, 1, None, parts)
        assert sender.ring_stats()["written"] == written
        sender.send(CALL, 2, None, encode_payload(np.full(BIG, 2, np.uint8)))
        for _ in range(100):
            if len(got) == 2:
                break
            await asyncio.sleep(0.01)
        assert [f.request_id for f in got] == [0, 2] and "shm" in got[1].meta
        sender.transport.close()  # type: ignore[union-attr]
        await asyncio.sleep(0.05)

    asyncio.run(main())


def test_a_peer_that_cannot_map_the_ring_keeps_getting_frames_by_socket(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> tuple[list[np.ndarray], dict[str, Any]]:
        got: list[np.ndarray] = []
        sender, receiver = await _pair(lambda f: got.append(decode_payload(f.buffers)))
        monkeypatch.setattr(shm, "InRing", _refuse)
        for i in range(5):
            sender.send(CALL, i, None, encode_payload(np.full(BIG, i, np.uint8)))
            await asyncio.sleep(0.02)
        stats = sender.ring_stats()
        sender.transport.close()  # type: ignore[union-attr]
        return got, stats

    got, stats = asyncio.run(main())
    assert [int(a[0]) for a in got] == list(range(5))
    assert stats["state"] == "off" and stats["written"] == 0


def _refuse(*args: Any) -> Any:
    raise OSError("not here")


def run_echo(tmp_path: Path, body: Any, runner: Any = targets.echo_runner, **kw: Any) -> None:
    async def main() -> None:
        async with group(runner, tmp_path, **kw) as workers:
            runner.init_client(workers.addresses)
            try:
                assert await runner.runner_handle_is_ready(1.0)
                await body(runner, workers)
            finally:
                runner.destroy()

    asyncio.run(main())


def connection(runner: Any) -> Any:
    handle = runner._runner_handle
    assert isinstance(handle, RemoteRunnerHandle)
    (worker,) = handle._workers
    assert worker.conn is not None
    return worker.conn


def test_10000_large_calls_each_way_leave_nothing_behind(tmp_path: Path) -> None:
    """Arrays go to the worker and come back through the two rings; after 10,000 calls
    both are fully consumed, and neither process holds more files or rings than after
    the first hundred."""
    async def body(runner: Any, workers: Any) -> None:
        worker_pid = workers.processes[0].pid

        async def calls(first: int) -> None:
            xs = [np.full(BIG // 8 + 8 * (i % 5), float(i)) for i in range(first, first + 100)]
            outs = await asyncio.gather(*(runner.async_run(x) for x in xs))
            for x, out in zip(xs, outs):
                assert np.array_equal(out, x)

        await calls(0)
        fds, worker_fds = open_fds(), open_fds(worker_pid)
        assert ring_maps() == 2 and ring_maps(worker_pid) == 2  # its ring and ours, each side
        for first in range(100, 10_000, 100):
            await calls(first)
        stats = connection(runner).ring_stats()
        assert stats["state"] == "ready" and stats["written"] >= 5_000 * BIG
        assert stats["consumed"] == stats["written"]
        assert open_fds() == fds and open_fds(worker_pid) == worker_fds
        assert ring_maps() == 2 and ring_maps(worker_pid) == 2
        runner.destroy()
        for _ in range(100):  # the worker lets go of our ring when we hang up
            if ring_maps(worker_pid) == 0:
                break
            await asyncio.sleep(0.02)
        assert ring_maps() == 0 and ring_maps(worker_pid) == 0

    run_echo(tmp_path, body)


def test_a_cancelled_callers_buffer_is_released(tmp_path: Path) -> None:
    async def body(runner: Any, workers: Any) -> None:
        x = np.ones(BIG, np.uint8)
        await runner.single.async_run(x)  # the ring is offered and answered
        for delay in (0.0, 0.1):  # cancelled before it was written out; while it runs
            call = asyncio.ensure_future(runner.single.async_run(x))
            await asyncio.sleep(delay)
            call.cancel()
            assert (await runner.history.async_run())["batch_sizes"]
            stats = connection(runner).ring_stats()
            assert stats["state"] == "ready" and stats["consumed"] == stats["written"]
        assert (await runner.single.async_run(x))["x"].sum() == BIG

    run_echo(tmp_path, body, targets.slow_runner)


def test_a_killed_workers_rings_are_closed_and_its_successor_gets_new_ones(
        tmp_path: Path) -> None:
    async def body(runner: Any, workers: Any) -> None:
        x = np.ones(BIG, np.uint8)
        await runner.single.async_run(x)
        await runner.single.async_run(x)
        assert connection(runner).ring_stats()["state"] == "ready" and ring_maps() == 2
        first_pid = workers.processes[0].pid
        call = asyncio.ensure_future(runner.single.async_run(x))
        await asyncio.sleep(0.1)
        os.kill(first_pid, signal.SIGKILL)
        with pytest.raises(ServiceUnavailable):
            await call
        assert ring_maps() == 0
        for _ in range(200):
            if workers.processes[0].pid != first_pid and await workers.is_ready(0.5):
                break
            await asyncio.sleep(0.05)
        for _ in range(3):
            assert (await runner.single.async_run(x))["x"].sum() == BIG
        assert connection(runner).ring_stats()["state"] == "ready" and ring_maps() == 2

    run_echo(tmp_path, body, targets.slow_runner, restart_backoff_s=0.05)


def test_a_ring_wraps_refuses_what_does_not_fit_and_restarts_when_empty() -> None:
    out = shm.OutRing(1 << 20)
    peer = shm.InRing(os.getpid(), out.fd, out.size)
    try:
        cap = out.capacity
        chunk = np.arange(100_000, dtype=np.float32)  # 400 KB: two fit, a third does not
        first, second = out.put(chunk), out.put(chunk + 1)
        assert (first, second) == (0, chunk.nbytes) and out.put(chunk) is None
        assert np.array_equal(np.frombuffer(peer.take(first, chunk.nbytes), np.float32), chunk)
        third = out.put(chunk + 2)  # would cross the end: starts the next lap
        assert third == cap
        assert out.put(chunk) is None  # the second is still unread
        peer.take(second, chunk.nbytes)
        back = peer.take(third, chunk.nbytes)
        assert np.array_equal(np.frombuffer(back, np.float32), chunk + 2)
        assert out.consumed == out.written == cap + chunk.nbytes
        assert out.put(chunk[:10_000]) == 2 * cap  # empty: back to the start of a lap
        with pytest.raises(ValueError):
            peer.take(cap, 10)  # behind the consumed mark: a corrupt reference
    finally:
        peer.close()
        out.close()
    assert ring_maps() == 0


def test_a_malformed_offer_is_refused_and_the_connection_carries_on() -> None:
    async def main() -> list[Frame]:
        got: list[Frame] = []
        sender, _ = await _pair(got.append)
        for offer in ({"fd": 1}, {"fd": "x", "size": 1}, {"fd": 10**6, "size": 1 << 20}):
            sender.send(SHM, 0, offer)
        sender.send(CALL, 7, None, encode_payload(np.ones(BIG, np.uint8)))
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        sender.transport.close()  # type: ignore[union-attr]
        return got

    got = asyncio.run(main())
    assert [f.request_id for f in got] == [7]
